"""The convergence warning every solver and estimator raises, written once."""

from __future__ import annotations

import warnings

__all__ = ["warn_convergence"]


def warn_convergence(message: str, stacklevel: int = 2) -> None:
    """Warn with scikit-learn's ``ConvergenceWarning`` (what users filter on). scikit-learn is imported
    here, on the first warning, so that ``import torchsvm`` and its solvers do not load it."""
    from sklearn.exceptions import ConvergenceWarning

    warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel + 1)
