"""The kernel estimators' decision values for a few rows as compiled CPU code (numba).

A fitted model's ``predict`` on one row is ~30 torch operations (the kernel against the support
vectors, the one-vs-one sums per class, the pairs), each costing more than the arithmetic, which costs microseconds.
Here the kernel values and the problems' expansions are one compiled loop over NumPy arrays, for the
built-in kernels (scikit-learn's formulas, as :mod:`torchsvm.kernels`); tests compare the two paths.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from torchsvm import _jit  # noqa: F401  (registers the first-build notice before a loop here compiles)
from torchsvm.kernels import BUILTIN_KERNELS

__all__ = ["KERNEL_CODES", "host_decision_values"]

KERNEL_CODES = {name: code for code, name in enumerate(BUILTIN_KERNELS)}  # as _decision reads them


@numba.njit(inline="always")
def _kernel(kind, dot, xx, zz, gamma, coef0, degree):
    if kind == 0:
        return dot
    if kind == 1:
        return (gamma * dot + coef0) ** degree
    if kind == 2:
        return math.exp(-gamma * max(xx + zz - 2.0 * dot, 0.0))
    return math.tanh(gamma * dot + coef0)

@numba.njit(cache=True)
def _decision(X, SV, kind, gamma, coef0, degree, coef, b, ends, pairs, out):
    """``out`` ``(n, P)``: each row's kernel values against the support vectors times their coefficients,
    plus b. Without ``pairs`` (empty) problem p reads ``coef[:, p]``; with them (one-vs-one over k classes,
    the support vectors grouped by class, class c's ending at ``ends[c]``) pair (i, j) sums class i's
    vectors times their column j - 1 and class j's times their column i (LIBSVM's layout)."""
    n, D = X.shape
    n_sv, m = coef.shape
    zz = np.empty(n_sv)
    for s in range(n_sv):
        zz[s] = np.sum(SV[s] * SV[s])
    k_row = np.empty(n_sv)
    for r in range(n):
        x = X[r]
        xx = np.sum(x * x)
        for s in range(n_sv):
            dot = 0.0
            for d in range(D):
                dot += x[d] * SV[s, d]
            k_row[s] = _kernel(kind, dot, xx, zz[s], gamma, coef0, degree)
        if pairs.shape[0] == 0:
            for p in range(m):
                acc = b[p]
                for s in range(n_sv):
                    acc += k_row[s] * coef[s, p]
                out[r, p] = acc
            continue
        for p in range(pairs.shape[0]):
            i, j = pairs[p, 0], pairs[p, 1]
            acc = b[p]
            for s in range(ends[i - 1] if i > 0 else 0, ends[i]):
                acc += k_row[s] * coef[s, j - 1]
            for s in range(ends[j - 1], ends[j]):
                acc += k_row[s] * coef[s, i]
            out[r, p] = acc


def host_decision_values(X: np.ndarray, SV: np.ndarray, kernel: str, gamma: float, coef0: float, degree: int,
                    coef: np.ndarray, b: np.ndarray, class_ends: np.ndarray | None = None,
                    pairs: np.ndarray | None = None) -> np.ndarray:
    """The decision values ``(n, P)`` of dense float64 rows ``X`` ``(n, D)`` against the support vectors ``SV``
    ``(n_SV, D)`` with coefficients ``coef`` ``(n_SV, m)`` and intercepts ``b`` ``(P,)``; one-vs-one models pass
    ``class_ends`` (the end of each class's support vectors) and ``pairs`` ``(P, 2)``."""
    P = b.shape[0]
    out = np.empty((X.shape[0], P))
    ends = np.zeros(0, np.int64) if class_ends is None else class_ends.astype(np.int64)
    pairs = np.zeros((0, 2), np.int64) if pairs is None else pairs.astype(np.int64)
    _decision(X, SV, KERNEL_CODES[kernel], float(gamma), float(coef0), int(degree), coef, b, ends, pairs, out)
    return out
