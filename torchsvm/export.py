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

__all__ = ["as_module", "example_input", "to_onnx", "to_pt2"]


def as_module(model: Any, output: str = "decision_function") -> nn.Module:
    """``model`` itself if it is a module, else the fitted estimator's ``to_module(output)``."""
    if isinstance(model, nn.Module):
        return model
    if not hasattr(model, "to_module"):
        raise TypeError(f"Expected a fitted torchsvm estimator or a torch module, got {type(model).__name__}")
    return model.to_module(output=output)


def example_input(module: nn.Module, n_features: int | None = None) -> torch.Tensor:
    """Two rows of zeros as ``module`` takes them: ``n_features`` wide (default: the width of its first
    ``support_vectors`` or 2-D ``weight``, also inside a Sequential), in its floating dtype, on its device."""
    tensors = [*module.named_buffers(), *module.named_parameters()]
    weights = next((t for name, t in tensors if name.rsplit(".", 1)[-1] in ("support_vectors", "weight") and t.ndim == 2),
                   None)
    if n_features is None:
        if weights is None:
            raise ValueError("Expected n_features for a module that is not a torchsvm model (its input width)")
        n_features = int(weights.shape[1])
    like = weights if weights is not None else next((t for _, t in tensors if t.is_floating_point()), torch.zeros(()))
    return torch.zeros(2, n_features, dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device)


_BATCH = ({0: torch.export.Dim("batch")},)  # the input's first dimension is dynamic (by position: any argument name)


def to_pt2(model: Any, path: str | Path, *, output: str = "decision_function", n_features: int | None = None) -> Path:
    """Write ``model`` (a fitted estimator or a module taking ``X`` ``(n, n_features)``) as a ``torch.export``
    program with a dynamic batch dimension; returns the path."""
    module = as_module(model, output).eval()
    program = torch.export.export(module, (example_input(module, n_features),), dynamic_shapes=_BATCH)
    torch.export.save(program, str(path))
    return Path(path)


def to_onnx(model: Any, path: str | Path, *, output: str = "decision_function", n_features: int | None = None) -> Path:
    """Write ``model`` as an ONNX file (``torch.onnx.export(..., dynamo=True)``: input ``X`` with a dynamic
    batch dimension, standard operators), checked with ``onnx.checker``; returns the path."""
    onnx = require("onnx", "export", "ONNX export")
    require("onnxscript", "export", "ONNX export")
    module = as_module(model, output).eval()
    program = torch.onnx.export(module, (example_input(module, n_features),), dynamo=True, dynamic_shapes=_BATCH,
                                input_names=["X"], output_names=[output], verbose=False)
    assert program is not None  # dynamo=True returns the program
    program.save(str(path))
    onnx.checker.check_model(str(path))
    return Path(path)
