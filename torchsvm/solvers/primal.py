"""Primal linear-SVM solvers: batch subgradient descent and a batched Newton method.

Plain torch code without autograd. Every solver works on K one-vs-rest problems at once:
``X`` ``(N, D)``, labels ``Y`` ``(N, K)`` in {-1, +1}, costs ``C`` ``(N, K)``, weights ``W``
``(D, K)`` and biases ``b`` ``(K,)``; the data is used in place, never copied per class.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from torchsvm._sparse import Matrix, SparseRows, addmm, xt_mm
from torchsvm.distributed import LOCAL, Collectives
from torchsvm.solvers._hinge_stopping import GradientStopping, HingeStopping
from torchsvm.solvers._line_search import exact_line_search
from torchsvm.solvers._losses import loss_terms
from torchsvm.solvers._newton import NewtonDirections
from torchsvm.validation import check_finite, check_pm1_labels, per_sample_costs

__all__ = ["SolverInfo", "PrimalResult", "primal_gd", "primal_newton", "primal_newton_host", "primal_objective", "loss_terms"]

# Hinge: how far each smoothing stage is solved (relative gradient) before h shrinks; the
# certified duality gap, not this, decides when to stop. Of 1e-2, 1e-3 and 1e-4, 1e-3 took the
# fewest Newton steps to a 1e-3 gap on Fashion-MNIST.
_STAGE_TOL = 1e-3
Loss = Literal["hinge", "squared_hinge", "logistic"]


class SolverInfo(NamedTuple):
    """What a solver reports beside its solution."""

    converged: bool
    n_iter: int
    gap: float  # relative duality gap (hinge) or relative gradient norm (smooth losses); max over K
    objective: Tensor  # (K,) final primal objective
    gaps: Tensor | None = None  # (K,) each problem's gap, where the solver tells them apart (coordinate descent)


class PrimalResult(NamedTuple):
    w: Tensor
    b: Tensor
    info: SolverInfo


def primal_objective(
    X: Matrix, Y: Tensor, C: Tensor, W: Tensor, b: Tensor, loss: str = "hinge", offset: Tensor | None = None,
    shards: Collectives = LOCAL, bias_penalty: float = 0.0,
) -> Tensor:
    """``1/2 ||w_k||^2 + lam/2 b_k^2 + sum_i C_ik L(y_ik f_k(x_i) + 1 - o_ik)`` for each column k, ``(K,)``
    (o = 1 by default; lam = ``bias_penalty``, whose 0 and inf add nothing; the sum over i runs across the
    ranks where ``shards`` holds the rows)."""
    margins = Y * addmm(b, X, W)
    value, _, _ = loss_terms(margins if offset is None else margins + (1 - offset), loss)
    return 0.5 * (W * W).sum(0) + 0.5 * _finite(bias_penalty) * b * b + shards.sum((C * value).sum(0))


def _finite(bias_penalty: float) -> float:
    """The bias penalty's weight in the objective: inf means no bias (b = 0), which adds nothing."""
    return 0.0 if math.isinf(bias_penalty) else float(bias_penalty)


def primal_gd(
    X: Tensor, y: Tensor, C: float | Tensor = 5.0, lr: float = 1e-3, epochs: int = 100
) -> tuple[Tensor, Tensor, list[float]]:
    """Batch (sub)gradient descent on the hinge objective, the textbook algorithm.

    w = 0, b = 0; each epoch computes both gradients at the current (w, b),
        grad_w = w - sum_i C_i 1[y_i f(x_i) < 1] y_i x_i,  dE/db = -sum_i C_i 1[y_i f(x_i) < 1] y_i,
    then updates both simultaneously with the constant learning rate lr.

    Args:
        X: ``(N, D)``.
        y: ``(N,)`` labels in {-1, +1} (or ``(N, K)`` for K problems at once).
        C: scalar or per-sample costs ``(N,)``.
        lr: constant learning rate.
        epochs: number of full-batch steps.

    Returns:
        ``(w, b, objectives)``: ``w`` ``(D,)`` (or ``(D, K)``), ``b`` 0-d (or ``(K,)``) in X's dtype,
        and the objective before each step and after the last (length epochs + 1; sums over K).
    """
    if epochs < 0:
        raise ValueError(f"Expected epochs >= 0, got {epochs}")
    if lr <= 0:
        raise ValueError(f"Expected lr > 0, got {lr}")
    Y, single = (y.unsqueeze(1), True) if y.ndim == 1 else (y, False)
    _check_problem(X, Y)
    Y = Y.to(X.dtype)
    Cs = per_sample_costs(C, Y).to(X.dtype)
    W = X.new_zeros(X.shape[1], Y.shape[1])
    b = X.new_zeros(Y.shape[1])
    objectives = []
    for _ in range(epochs):
        margins = Y * addmm(b, X, W)
        objectives.append(float((0.5 * (W * W).sum(0) + (Cs * (1 - margins).clamp_min(0)).sum(0)).sum()))
        r = Cs * (margins < 1).to(X.dtype) * Y  # C_i 1[y_i f(x_i) < 1] y_i, (N, K)
        grad_W = W - xt_mm(X, r)
        grad_b = -r.sum(0)
        W, b = W - lr * grad_W, b - lr * grad_b  # simultaneous update
    objectives.append(float(primal_objective(X, Y, Cs, W, b).sum()))
    return (W[:, 0], b[0], objectives) if single else (W, b, objectives)


def _check_problem(X: Matrix, Y: Tensor) -> None:
    if X.ndim != 2:
        raise ValueError(f"Expected X of shape (N, D), got shape {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ValueError("Expected at least one sample, got X with 0 rows")
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"Expected Y of shape ({X.shape[0]}, K) matching X {tuple(X.shape)}, got shape {tuple(Y.shape)}")
    if not X.is_floating_point():
        raise TypeError(f"Expected X to have a floating-point dtype, got {X.dtype}")
    check_pm1_labels(Y)
    check_finite("X", X.values if isinstance(X, SparseRows) else X)


def primal_newton(
    X: Matrix,
    Y: Tensor,
    C: Tensor,
    loss: Loss = "hinge",
    tol: float = 1e-4,
    max_iter: int = 200,
    W0: Tensor | None = None,
    b0: Tensor | None = None,
    direct_max_features: int = 4096,
    offset: Tensor | None = None,
    shards: Collectives = LOCAL,
    bias_penalty: float = 0.0,
) -> PrimalResult:
    """Batched Newton on the primal, K one-vs-rest problems at once.

    minimize_k  1/2 ||w_k||^2 + lam/2 b_k^2 + sum_i C_ik L(y_ik (x_i . w_k + b_k)),

    with lam = ``bias_penalty``: 0 leaves the bias free (the textbook SVM), inf removes it (b = 0),
    and 1 / B^2 is LIBLINEAR's bias: a feature of constant value B (scikit-learn's
    ``intercept_scaling``) whose weight b / B is penalized with the others.

    Each Newton step solves H p = -g for all K problems: exactly, by a batched Cholesky of the
    (D + 1) x (D + 1) Hessians built from the rows with curvature when D <= ``direct_max_features``
    (their Gram parts kept between steps and updated by the rows whose curvature changed; through
    n x n systems by the Woodbury identity when every class has n < D curved rows);
    otherwise by conjugate gradients (two products with X per CG step); see
    :class:`torchsvm.solvers._newton.NewtonDirections`. The step length is the exact minimizer
    along p, found on the (N, K) margins without touching X again.

    With ``offset`` O the loss of sample i in problem k is L(y_ik f_k(x_i) + 1 - o_ik): the hinge
    max(0, o - y f) has its kink where y f = o instead of 1. Epsilon-insensitive regression is
    this on two copies of each sample (y = +1 with o = t - epsilon, y = -1 with o = -t - epsilon;
    see :class:`torchsvm.LinearSVR`).

    ``squared_hinge`` and ``logistic`` are smooth: stop when ||g_k|| <= tol ||g_k at the start||.
    ``hinge`` is solved through the smoothed hinge (see :func:`loss_terms`) with width h
    shrinking 4x per stage, each stage warm-started. Every iterate gives a dual-feasible point
    alpha = -C L_h'(m), and once h <= 1 exact-partition candidates are offered too
    (:class:`torchsvm.solvers._hinge_stopping.HingeStopping`). A class is done when its certified
    relative gap (P(w, b) - max D(alpha)) / P is <= tol, and done classes leave the iteration; it
    stops when every class is done, so each returned objective is within tol (relative) of its
    optimum.

    Args:
        X: ``(N, D)``, floating.
        Y: ``(N, K)`` in {-1, +1}.
        C: ``(N, K)`` positive costs.
        loss: ``"hinge"``, ``"squared_hinge"`` or ``"logistic"``.
        tol: relative duality gap (hinge) or relative gradient norm (smooth losses).
        max_iter: Newton iterations in all, across stages.
        W0, b0: warm start (default zeros).
        direct_max_features: largest D solved by Cholesky rather than conjugate gradients.
        offset: ``(N, K)`` margins each sample must reach (default 1).
        shards: :class:`torchsvm.distributed.Shards` when each rank of a process group holds its own
            rows of X, Y, C (data-parallel Newton: the gradient, the Hessians' Gram parts and the line
            search's sums are summed across the ranks; every rank ends with the same w, b). Default:
            all rows here.
        bias_penalty: lam >= 0 above (``math.inf``: no bias).

    Returns:
        ``PrimalResult(w (D, K), b (K,), info)``; ``info.converged`` is False when max_iter ran out.

    Raises:
        ValueError: shapes that disagree (``Y`` and ``C`` must be ``(N, K)``), labels outside
            {-1, +1}, costs <= 0, NaN/inf in X, an unknown loss.
    """
    _check_problem(X, Y)
    if loss not in ("hinge", "squared_hinge", "logistic"):
        raise ValueError(f"Expected loss to be 'hinge', 'squared_hinge' or 'logistic', got {loss!r}")
    if not isinstance(C, Tensor) or tuple(C.shape) != tuple(Y.shape):
        raise ValueError(f"Expected C of shape {tuple(Y.shape)} matching Y, got {getattr(C, 'shape', C)!r}")
    if offset is not None and tuple(offset.shape) != tuple(Y.shape):
        raise ValueError(f"Expected offset of shape {tuple(Y.shape)} matching Y, got {tuple(offset.shape)}")
    if not (isinstance(bias_penalty, (int, float)) and bias_penalty >= 0):
        raise ValueError(f"Expected bias_penalty >= 0 (inf: no bias), got {bias_penalty!r}")
    no_bias, lam = math.isinf(bias_penalty), _finite(bias_penalty)
    Y = Y.to(X.dtype)
    C = per_sample_costs(C.to(X.dtype), Y)
    O = torch.ones_like(Y) if offset is None else offset.to(X.dtype)
    S = 1 - O  # margins are y f + S: the loss's kink at margin 1 sits at y f = o
    N, D = X.shape
    K = Y.shape[1]
    W = X.new_zeros(D, K) if W0 is None else W0.clone()
    b = X.new_zeros(K) if b0 is None or no_bias else b0.clone()
    damping = 1e-10 * float(shards.sum(C.sum(0)).max())  # keeps the bias direction positive definite
    hinge = loss == "hinge"
    # h starts above every margin's distance from 1 at w = 0, so the first model has curvature.
    # Shrinking h 4x per stage took fewer Newton steps to a 1e-3 gap than 3x, 10x or 30x.
    h_scale = 1.0 if offset is None else max(1.0, float(shards.max(O.abs().max())))
    stages = [10.0 * h_scale * 4.0**-s for s in range(17)] if hinge else [0.0]  # h: 10 .. 2.3e-9 (x h_scale)
    stop = (HingeStopping(X, Y, C, O, W, b, tol, h_scale, shards, bias_penalty) if hinge
            else GradientStopping(K, tol, X.device))
    directions = NewtonDirections(X, K, damping, direct_max_features, loss != "logistic", shards, bias_penalty)
    n_iter, g0_norm = 0, None
    for h in stages:
        F = addmm(b, X, W)  # (N, K) decision values
        for in_stage in itertools.count():
            # Only the K' open classes (columns cols) are worked on: every product with X and
            # every (N, K') array shrinks as classes finish; done ones keep their certified iterate.
            cols = stop.active.nonzero().squeeze(1)
            Ya, Ca, Sa, Fa, Wa, ba = Y[:, cols], C[:, cols], S[:, cols], F[:, cols], W[:, cols], b[cols]
            _, d1, d2 = loss_terms(Ya * Fa + Sa, loss, h)
            r = Ca * d1 * Ya  # (N, K')
            sums = shards.sum(torch.cat([xt_mm(X, r), r.sum(0, keepdim=True)]))  # (D + 1, K'): over all rows
            gW, gb = Wa + sums[:-1], sums[-1] + lam * ba
            if no_bias:
                gb = torch.zeros_like(gb)
            g_norm = torch.sqrt((gW * gW).sum(0) + gb * gb)
            g0_norm = g_norm.clamp_min(1e-30) if g0_norm is None else g0_norm  # all K open at the start
            rel = g_norm / g0_norm[cols]
            stage_done = bool((rel <= (_STAGE_TOL if hinge else tol)).all())
            if isinstance(stop, HingeStopping):
                done = stop.check(cols, Ya, Ca, O[:, cols], Wa, ba, Fa, -Ca * d1, h, stop.polish_now(stage_done, in_stage))
            else:
                done = stop.check(rel)
            # The last stage runs on to the certificate (or max_iter): its h is the smallest there is.
            if done or (stage_done and h != stages[-1]) or n_iter >= max_iter:
                break
            # The curvature is scale * weights; for the (smoothed) hinge and the squared hinge the
            # weights are C on the curved rows, exactly equal from step to step (the Gram cache's premise).
            if loss == "logistic":
                weights, scale = Ca * d2, 1.0
            else:
                weights, scale = Ca * (d2 > 0).to(X.dtype), (1.0 / h if hinge else 2.0)
            rhs = -torch.cat([gW, gb.unsqueeze(0)], 0)  # (D + 1, K')
            P = directions.solve(cols, weights, scale, rhs, precise=not (hinge and h >= 0.1 * h_scale))
            pW, pb = P[:-1], P[-1]
            XP = addmm(pb, X, pW)  # (N, K'), reused by the line search
            Wr, pWr = Wa, pW
            if lam:  # for the line search the penalized bias is one more regularized weight, sqrt(lam) b
                Wr, pWr = torch.cat([Wa, lam**0.5 * ba.unsqueeze(0)]), torch.cat([pW, lam**0.5 * pb.unsqueeze(0)])
            step = exact_line_search(Wr, pWr, Ya * Fa + Sa, Ya * XP, Ca, loss, h, shards)
            if not bool((step > 0).any()):
                break  # no class can move: the numerical floor of this stage
            n_iter += 1
            W = W.index_copy(1, cols, Wa + step * pW)
            b = b.index_copy(0, cols, ba + step * pb)
            F = F.index_copy(1, cols, Fa + step * XP)
        if stop.converged or n_iter >= max_iter:
            break
    W, b = stop.solution(W, b)
    objective = primal_objective(X, Y, C, W, b, loss, offset, shards, bias_penalty)
    return PrimalResult(W, b, SolverInfo(stop.converged, n_iter, stop.gap, objective))


def primal_newton_host(
    X: np.ndarray,
    Y: np.ndarray,
    C: np.ndarray,
    loss: Literal["hinge", "squared_hinge"] = "squared_hinge",
    tol: float = 1e-4,
    max_iter: int = 200,
    W0: np.ndarray | None = None,
    b0: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    bias_penalty: float = 0.0,
) -> PrimalResult:
    """:func:`primal_newton` for the hinge or the squared hinge on a small dense X, as compiled CPU code on NumPy
    arrays: each problem's steps in one loop, the problems shared out over torch's threads (no torch operation
    per step: on a few hundred rows those cost a hundred times the arithmetic). The same Hessian, line
    search, smoothing stages and stopping rule as :func:`primal_newton`, so the same iterates to rounding.

    Args:
        X: ``(N, D)``; Y: ``(N, K)`` in {-1, +1}; C: ``(N, K)`` positive costs; offset: ``(N, K)`` margins
            (default 1). loss, tol, max_iter, bias_penalty: as :func:`primal_newton`.
        W0, b0: warm start ``(D, K)``, ``(K,)`` (default zeros).

    Returns:
        ``PrimalResult(w (D, K), b (K,), info)`` of float64 CPU tensors.
    """
    from torchsvm.solvers._primal_numba import newton_hinge, newton_squared_hinge  # numba loads on first use

    if loss not in ("hinge", "squared_hinge"):
        raise ValueError(f"Expected loss to be 'hinge' or 'squared_hinge' for the host Newton method, got {loss!r}")
    N, D = X.shape
    K = Y.shape[1]
    no_bias = math.isinf(bias_penalty)
    rows = lambda A: np.ascontiguousarray(np.asarray(A, dtype=np.float64).T)  # noqa: E731 ((N, K) -> (K, N))
    O = np.ones((K, N)) if offset is None else rows(offset)
    W = np.zeros((K, D)) if W0 is None else rows(W0)
    b = np.zeros(K) if b0 is None or no_bias else np.array(b0, dtype=np.float64)
    solve = newton_hinge if loss == "hinge" else newton_squared_hinge
    steps, rel, objective = solve(np.ascontiguousarray(X, dtype=np.float64), rows(Y), rows(C), O,
                                  _finite(bias_penalty), no_bias, tol, max_iter, W, b)
    gap = float(rel.max())
    info = SolverInfo(bool(gap <= tol), int(steps.max()), gap, torch.from_numpy(objective))
    return PrimalResult(torch.from_numpy(W.T.copy()), torch.from_numpy(b), info)
