"""LIBSVM's probability estimates for SVC and NuSVC (``probability=True``): Platt scaling and pairwise coupling.

For each one-vs-one pair (i, j), held-out decision values f from an internal 5-fold
cross-validation are fitted by Platt's sigmoid, P(class i | f, pair) = 1 / (1 + exp(A f + B))
(:func:`sigmoid_train`: Newton's method with backtracking, Lin, Lin and Weng 2007, as LIBSVM's
``sigmoid_train``). At prediction, the pairwise probabilities r_ij are coupled into one distribution
over the classes by Wu, Lin and Weng's (2004) second method (:func:`couple`: LIBSVM's
``multiclass_probability``), for all samples at once.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["sigmoid_train", "sigmoid_predict", "couple", "class_probabilities", "libsvm_signed"]

_MIN_PROB = 1e-7  # LIBSVM's clamp of the pairwise probabilities


def sigmoid_train(dec: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Platt's ``(A, B)`` for decision values ``dec`` whose sample is of the positive class where
    ``positive``: minimizes the cross-entropy of 1 / (1 + exp(A f + B)) against Platt's smoothed
    targets, from A = 0, B = log((n_neg + 1) / (n_pos + 1)), by Newton steps with backtracking."""
    dec = np.asarray(dec, dtype=np.float64)
    prior1 = float(np.count_nonzero(positive))
    prior0 = float(len(dec) - prior1)
    t = np.where(positive, (prior1 + 1.0) / (prior1 + 2.0), 1.0 / (prior0 + 2.0))
    A, B = 0.0, math.log((prior0 + 1.0) / (prior1 + 1.0))

    def objective(a: float, b: float) -> float:
        z = dec * a + b  # log(1 + exp(-|z|)) keeps both branches finite
        return float(np.sum(np.where(z >= 0, t * z, (t - 1) * z) + np.log1p(np.exp(-np.abs(z)))))

    fval = objective(A, B)
    for _ in range(100):
        z = dec * A + B
        p = np.where(z >= 0, np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))), 1 / (1 + np.exp(-np.abs(z))))
        d2 = p * (1 - p)
        h11, h22, h21 = 1e-12 + np.sum(dec * dec * d2), 1e-12 + np.sum(d2), np.sum(dec * d2)
        d1 = t - p
        g1, g2 = np.sum(dec * d1), np.sum(d1)
        if abs(g1) < 1e-5 and abs(g2) < 1e-5:
            break
        det = h11 * h22 - h21 * h21
        dA, dB = -(h22 * g1 - h21 * g2) / det, -(-h21 * g1 + h11 * g2) / det
        gd = g1 * dA + g2 * dB
        step = 1.0
        while step >= 1e-10:  # backtracking: sufficient decrease
            new = objective(A + step * dA, B + step * dB)
            if new < fval + 1e-4 * step * gd:
                A, B, fval = A + step * dA, B + step * dB, new
                break
            step /= 2
        else:
            break  # the line search failed: LIBSVM stops here too
    return float(A), float(B)


def sigmoid_predict(dec: Tensor, A: Tensor, B: Tensor) -> Tensor:
    """``1 / (1 + exp(A f + B))`` elementwise (``dec`` ``(n, P)``, ``A``, ``B`` ``(P,)``), without overflow."""
    return torch.sigmoid(-(dec * A + B))


def class_probabilities(dec: Tensor, A: Tensor, B: Tensor, n_classes: int, pairs: Tensor | None) -> Tensor:
    """``predict_proba`` ``(n, k)`` from the problems' decision values ``dec`` ``(n, P)`` in scikit-learn's sign (a
    two-class model's one problem positive for the second class), Platt's ``A``, ``B`` ``(P,)`` and the pairs (None
    for two classes): the sigmoids of LIBSVM's signed values, coupled. The estimators' and the modules' one path."""
    return couple(sigmoid_predict(libsvm_signed(dec), A.to(dec), B.to(dec)), n_classes, pairs)


def libsvm_signed(dec: Tensor) -> Tensor:
    """The problems' decision values ``(n, P)`` with LIBSVM's sign, positive for a pair's first class: a two-class
    model's one problem negated (scikit-learn's public sign is positive for the second class)."""
    return -dec if dec.shape[1] == 1 else dec


def couple(r: Tensor, n_classes: int, pairs: Tensor | None) -> Tensor:
    """Class probabilities ``(n, k)`` from pairwise ones ``r`` ``(n, P)`` (r[:, p] = P(class i | i or j)
    for pair p = (i, j), ``pairs`` ``(P, 2)``; None for two classes): Wu, Lin and Weng's method 2,
    min_p p^T Q p subject to sum p = 1, by LIBSVM's coordinate iteration, every sample at once (a sample
    stops changing once it has converged).

    Traced (``torch.compile``, ``torch.export``: a fitted model's module) the iteration runs its
    ``max(100, k)`` sweeps whole, converged samples frozen, rather than stopping when all have converged (a
    data-dependent exit): the same probabilities, one graph."""
    n, k = r.shape[0], n_classes
    r = r.clamp(_MIN_PROB, 1 - _MIN_PROB)
    if k == 2:  # LIBSVM's svm_predict_probability: the one pair's probabilities as they are
        return torch.stack([r[:, 0], 1 - r[:, 0]], 1)
    assert pairs is not None  # more than two classes: one-vs-one pairs
    i, j = pairs[:, 0], pairs[:, 1]
    R = r.new_zeros(n, k, k)  # R[:, i, j] = P(i | i or j)
    R[:, i, j] = r
    R[:, j, i] = 1 - r
    # Q_tt = sum_{j != t} r_jt^2, Q_tj = -r_jt r_tj
    Q = -R.transpose(1, 2) * R
    Q.diagonal(dim1=1, dim2=2).copy_((R.transpose(1, 2) ** 2).sum(2) - (R.diagonal(dim1=1, dim2=2) ** 2))
    P = r.new_full((n, k), 1.0 / k)
    eps = 0.005 / k
    traced = torch.compiler.is_compiling() or torch.compiler.is_exporting()
    for _ in range(max(100, k)):
        Qp = (Q @ P.unsqueeze(2)).squeeze(2)
        pQp = (P * Qp).sum(1, keepdim=True)
        open_ = (Qp - pQp).abs().amax(1) >= eps
        if not traced and not bool(open_.any()):
            break
        for t in range(k):
            diff = torch.where(open_, (-Qp[:, t] + pQp[:, 0]) / Q[:, t, t], 0.0)
            P[:, t] += diff
            pQp = ((pQp[:, 0] + diff * (diff * Q[:, t, t] + 2 * Qp[:, t])) / (1 + diff) ** 2).unsqueeze(1)
            P /= (1 + diff).unsqueeze(1)
            Qp = (Qp + diff.unsqueeze(1) * Q[:, t, :]) / (1 + diff).unsqueeze(1)
    return P
