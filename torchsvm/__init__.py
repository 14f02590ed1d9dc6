"""torchsvm: GPU support vector machines and hand-derived neural-network gradients in PyTorch."""

from __future__ import annotations

import importlib
from typing import Any

from torchsvm import functional, nn

__version__ = "0.1.0"

_ESTIMATORS = ("LinearSVC", "LinearSVR", "NuSVC", "NuSVR", "OneClassSVM", "SVC", "SVR")

__all__ = [*_ESTIMATORS, "functional", "nn", "__version__"]


def __getattr__(name: str) -> Any:
    """The estimators load with scikit-learn on first use (``from torchsvm import SVC``), not at ``import torchsvm``."""
    if name in _ESTIMATORS:
        return getattr(importlib.import_module("torchsvm.svm"), name)
    raise AttributeError(f"module 'torchsvm' has no attribute {name!r}")
