"""Reference solvers built on cvxpy, for tests and small problems."""

from __future__ import annotations

import numpy as np

__all__ = ["cvxpy_primal"]


def cvxpy_primal(X: np.ndarray, y: np.ndarray, C: float | np.ndarray, loss: str = "hinge") -> tuple[np.ndarray, float, float]:
    """Solve ``min 1/2 ||w||^2 + sum_i C_i L(y_i (w . x_i + b))`` with cvxpy (Clarabel/ECOS).

    Returns ``(w, b, objective)`` in float64. ``loss`` is ``hinge``, ``squared_hinge`` or ``logistic``.
    """
    import cvxpy as cp

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    N, D = X.shape
    Cv = np.broadcast_to(np.asarray(C, dtype=np.float64), (N,))
    w, b = cp.Variable(D), cp.Variable()
    m = cp.multiply(y, X @ w + b)
    if loss == "hinge":
        data = cp.sum(cp.multiply(Cv, cp.pos(1 - m)))
    elif loss == "squared_hinge":
        data = cp.sum(cp.multiply(Cv, cp.square(cp.pos(1 - m))))
    elif loss == "logistic":
        data = cp.sum(cp.multiply(Cv, cp.logistic(-m)))
    else:
        raise ValueError(f"Expected loss to be 'hinge', 'squared_hinge' or 'logistic', got {loss!r}")
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(w) + data))
    problem.solve()
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"cvxpy could not solve the primal: status {problem.status}")
    return np.asarray(w.value), float(b.value), float(problem.value)
