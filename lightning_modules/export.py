"""``torchsvm export``: a fitted model to a ``.pt2`` program or an ONNX file, from a Lightning checkpoint
(the kernel and linear SVM modules, the classifier), a pickled torchsvm estimator or a LIBSVM model file.

    torchsvm export --ckpt outputs/kernel_svm/version_0/checkpoints/last.ckpt --out svm.onnx --output predict
    torchsvm export --pickle svc.pkl --out svc.pt2
    torchsvm export --libsvm train.model --out svc.onnx

The file's input is ``X`` ``(batch, n_features)`` (images flattened: 784 columns for MNIST), its output
``decision_function`` (the estimators' shapes) or ``predict``; the command prints both.
"""

from __future__ import annotations

import argparse
import contextlib
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lightning_modules.classifier import ClassifierModule
from lightning_modules.kernel_svm import KernelSVMModule, KernelSVRModule
from lightning_modules.linear_svm import LinearSVMModule
from torchsvm.export import as_module, example_input, to_onnx, to_pt2
from torchsvm.libsvm_format import load_model

__all__ = ["module_from_pickle", "export_main", "module_from_checkpoint"]


def module_from_checkpoint(path: str | Path, output: str = "decision_function") -> nn.Module:
    """The plain module of a LightningModule checkpoint (its ``to_module(output)``); the module's kind is read
    from what the checkpoint holds. A malformed file raises ``ValueError`` naming it (a missing one ``OSError``)."""
    with open(path, "rb") as f:  # a missing or unreadable file: open's OSError
        try:  # the user's own file (weights_only=False: Lightning checkpoints hold their hyperparameters' objects)
            checkpoint = torch.load(f, map_location="cpu", weights_only=False)
        except Exception as err:  # a damaged file fails in the zip reader (an OSError too) or its pickle's constructors
            raise ValueError(f"{path}: expected a Lightning checkpoint, got a file torch.load cannot read "
                             f"({type(err).__name__}: {err})") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path}: expected a Lightning checkpoint (a dict with a state_dict), got {type(checkpoint).__name__}")
    hparams, state = checkpoint.get("hyper_parameters", {}), checkpoint["state_dict"]
    if "kernel_svm" in checkpoint:
        kind: Any = KernelSVRModule if "epsilon" in hparams else KernelSVMModule
    elif "num_features" in hparams and "weight" in state:
        kind = LinearSVMModule
    elif any(key.startswith("model.") for key in state):
        kind = ClassifierModule
    else:
        raise ValueError(f"{path}: expected a checkpoint of KernelSVMModule, KernelSVRModule, LinearSVMModule or "
                         f"ClassifierModule (a fitted model), found keys {sorted(checkpoint)}")
    with _named(path, "the checkpoint's model cannot be rebuilt"):
        return kind.load_from_checkpoint(str(path), map_location="cpu").to_module(output)


def module_from_pickle(path: str | Path, output: str = "decision_function") -> nn.Module:
    """The module (``to_module(output)``) of a pickled fitted torchsvm estimator. A malformed file raises
    ``ValueError`` naming it (a missing one ``OSError``). Pickle runs the code the file names, as always: load
    only files you trust."""
    with open(path, "rb") as f:  # a missing or unreadable file: open's OSError
        try:
            model = pickle.load(f)
        except Exception as err:  # a damaged pickle fails in any of its opcodes or of the constructors it calls
            raise ValueError(f"{path}: expected a pickled torchsvm estimator, got a file pickle cannot read "
                             f"({type(err).__name__}: {err})") from err
    if not hasattr(model, "to_module"):
        raise ValueError(f"{path}: expected a pickled torchsvm estimator, got {type(model).__name__}")
    with _named(path, "the pickled estimator cannot be made a module"):
        return as_module(model, output)


@contextlib.contextmanager
def _named(path: str | Path, what: str) -> Iterator[None]:
    """Any failure inside as a ``ValueError`` naming the file (a model read from a damaged file may be
    inconsistent in ways only its use shows)."""
    try:
        yield
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    except Exception as err:
        raise ValueError(f"{path}: {what} ({type(err).__name__}: {err})") from err


def _model(args: argparse.Namespace) -> Any:
    if args.ckpt:
        return module_from_checkpoint(args.ckpt, args.output)
    if args.pickle:
        return module_from_pickle(args.pickle, args.output)
    return load_model(args.libsvm, device="cpu", n_features=args.n_features)


def export_main(argv: list[str]) -> Path:
    """``torchsvm export ...`` (see the module docstring); returns the written path."""
    parser = argparse.ArgumentParser(prog="torchsvm export", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ckpt", help="a Lightning checkpoint of a kernel or linear SVM module or the classifier")
    source.add_argument("--pickle", help="a pickled fitted torchsvm estimator")
    source.add_argument("--libsvm", help="a LIBSVM model file")
    parser.add_argument("--out", required=True, help="the file to write: .pt2 or .onnx")
    parser.add_argument("--format", choices=["pt2", "onnx"], help="default: from --out's suffix")
    parser.add_argument("--output", default="decision_function",
                        choices=["decision_function", "predict", "predict_proba", "score_samples"])
    parser.add_argument("--n-features", type=int, help="the input's width where the model does not say (a LIBSVM file)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    fmt = args.format or out.suffix.lstrip(".")
    if fmt not in ("pt2", "onnx"):
        parser.error(f"expected --format pt2 or onnx, or --out ending in .pt2 or .onnx, got {args.out!r}")
    module = as_module(_model(args), args.output).eval()
    X = example_input(module, args.n_features)
    write = to_pt2 if fmt == "pt2" else to_onnx
    path = write(module, out, output=args.output, n_features=X.shape[1])
    with torch.no_grad():
        y = module(X)
    print(f"wrote {path} ({fmt}): input X {str(X.dtype).removeprefix('torch.')} (batch, {X.shape[1]}); output "
          f"{args.output} {str(y.dtype).removeprefix('torch.')} (batch{''.join(f', {d}' for d in y.shape[1:])})")
    return path
