"""Fitted models out of Python: a ``torch.export`` program (``.pt2``) or an ONNX file, with a dynamic batch
dimension, from a fitted estimator (through ``to_module``) or a module.

The ``.pt2`` file loads with ``torch.export.load`` in Python (AOTInductor compiles the loaded program into a
package a C++ program runs: ``torch._inductor.aoti_compile_and_package``; not tested here); the ONNX file holds
standard operators (matrix products, ``Exp``, ``ArgMax``...) and runs in ONNX Runtime. ONNX needs the
``export`` extra (onnx, onnxscript; onnxruntime to run it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchsvm.optional import require

__all__ = ["as_module", "to_onnx", "to_pt2"]


def as_module(model: Any, output: str = "decision_function") -> nn.Module:
    """``model`` itself if it is a module, else the fitted estimator's ``to_module(output)``."""
    if isinstance(model, nn.Module):
        return model
    if not hasattr(model, "to_module"):
        raise TypeError(f"Expected a fitted torchsvm estimator or a torch module, got {type(model).__name__}")
    return model.to_module(output=output)


def _example(module: nn.Module, n_features: int | None) -> tuple[torch.Tensor, tuple]:
    """A two-row input in the module's dtype and device, and its dynamic batch dimension (by position: any
    module's argument name)."""
    # A torchsvm model's width: its support vectors' or weights' (also inside a Sequential).
    weights = next((b for name, b in module.named_buffers() if name.rsplit(".", 1)[-1] in ("support_vectors", "weight")),
                   None)
    if n_features is None:
        if weights is None:
            raise ValueError("Expected n_features for a module that is not a torchsvm model (its input width)")
        n_features = int(weights.shape[1])
    like = weights if weights is not None else torch.zeros(())
    X = torch.zeros(2, n_features, dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device)
    return X, ({0: torch.export.Dim("batch")},)


def to_pt2(model: Any, path: str | Path, *, output: str = "decision_function", n_features: int | None = None) -> Path:
    """Write ``model`` (a fitted estimator or a module taking ``X`` ``(n, n_features)``) as a ``torch.export``
    program with a dynamic batch dimension; returns the path."""
    module = as_module(model, output).eval()
    X, dynamic = _example(module, n_features)
    program = torch.export.export(module, (X,), dynamic_shapes=dynamic)
    torch.export.save(program, str(path))
    return Path(path)


def to_onnx(model: Any, path: str | Path, *, output: str = "decision_function", n_features: int | None = None) -> Path:
    """Write ``model`` as an ONNX file (``torch.onnx.export(..., dynamo=True)``: input ``X`` with a dynamic
    batch dimension, standard operators), checked with ``onnx.checker``; returns the path."""
    onnx = require("onnx", "export", "ONNX export")
    require("onnxscript", "export", "ONNX export")
    module = as_module(model, output).eval()
    X, dynamic = _example(module, n_features)
    program = torch.onnx.export(module, (X,), dynamo=True, dynamic_shapes=dynamic, input_names=["X"],
                                output_names=[output], verbose=False)
    assert program is not None  # dynamo=True returns the program
    program.save(str(path))
    onnx.checker.check_model(str(path))
    return Path(path)
