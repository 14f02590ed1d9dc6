"""When the hinge is solved: a certified duality gap per class, and exact-partition candidates.

The primal solver minimizes a smoothed hinge whose width shrinks; every iterate yields a
dual-feasible point, and so does the exact solution of the KKT equations for the partition the
iterate suggests. :class:`HingeStopping` keeps the best primal iterate and the best dual bound per
class, and closes a class once its relative gap is within tol.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from torchsvm._sparse import Matrix, SparseRows, addmm, inner, mm, xt_mm
from torchsvm.distributed import LOCAL, Collectives, gather_rows

__all__ = ["HingeStopping", "GradientStopping"]

_MAX_SPARSE_FREE = 4097

# Once h <= 1, exact-partition candidates are tried at every stage end and every
# _POLISH_EVERY-th Newton step, each time _POLISH_ROUNDS active-set rounds.
_POLISH_EVERY = 5
_POLISH_ROUNDS = 3


def _duality_gap(X: Matrix, Y: Tensor, C: Tensor, O: Tensor, W: Tensor, b: Tensor, F: Tensor, alpha: Tensor,
                 shards: Collectives = LOCAL, bias_penalty: float = 0.0) -> tuple[Tensor, Tensor]:
    """Hinge primal objective P at (W, b), from its decision values F = X W + b, and a lower bound from a
    dual-feasible rescaling of alpha.

    With the loss max(0, o_i - y_i f(x_i)) (o = 1: the SVM) and the bias penalty lam/2 b^2, the dual is
        max sum alpha o - 1/2 ||X^T (alpha y)||^2 - (sum alpha y)^2 / (2 lam),   0 <= alpha <= C.
    A free bias (lam = 0) turns the last term into the constraint sum alpha y = 0, met by scaling
    down the larger side of alpha (which keeps it in the box); no bias (lam = inf) drops it.
    Weak duality: D(alpha) <= P* <= P(W, b). Sharded rows: two sums across the ranks, (2, K) and (D + 2, K).
    """
    pos, neg = shards.sum(torch.stack([(alpha * (Y > 0)).sum(0), (alpha * (Y < 0)).sum(0)]))
    a = alpha
    if bias_penalty == 0:
        scale_pos = torch.where(pos > neg, neg / pos.clamp_min(1e-300), torch.ones_like(pos))
        scale_neg = torch.where(neg > pos, pos / neg.clamp_min(1e-300), torch.ones_like(neg))
        a = alpha * torch.where(Y > 0, scale_pos, scale_neg)
    # Sums over the samples: v = X^T (a y) (D, K), sum a o, and the hinge losses (reusing F: no product with X).
    sums = shards.sum(torch.cat([xt_mm(X, a * Y), (a * O).sum(0, keepdim=True),
                                 (C * (O - Y * F).clamp_min(0)).sum(0, keepdim=True)]))
    v, ao, losses = sums[:-2], sums[-2], sums[-1]
    primal = 0.5 * (W * W).sum(0) + losses
    dual = ao - 0.5 * (v * v).sum(0)
    if bias_penalty and not math.isinf(bias_penalty):
        primal, dual = primal + 0.5 * bias_penalty * b * b, dual - (pos - neg) ** 2 / (2 * bias_penalty)
    return primal, dual


def _solve_partition(
    X: Matrix, Y: Tensor, C: Tensor, at_c: Tensor, free: Tensor, max_free: int, O: Tensor | None = None,
    shards: Collectives = LOCAL, bias_penalty: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """The hinge optimum if the partition were right: alpha = C on ``at_c``, free on ``free``, 0 elsewhere.

    With L = at_c and B = free, the KKT conditions of the dual are linear:
        y_i (x_i . w + b) = o_i on B,  w = X_L^T (C_L y_L) + X_B^T (alpha_B y_B),  lam b = sum_i alpha_i y_i,
    i.e. per class the (n_B + 1)-system (o = 1 unless ``O`` says otherwise; lam the bias penalty, 0 for a free bias)
        [[Q_BB, y_B], [y_B^T, -lam]] [alpha_B; b] = [o_B - y_B (X_B w_L); -C_L^T y_L],  Q_BB = diag(y_B) X_B X_B^T diag(y_B),
    and without a bias (lam = inf) the n_B-system Q_BB alpha_B = o_B - y_B (X_B w_L).
    n_B is about the number of margin support vectors, at most about D + 1 for a linear SVM, so
    this costs n_B^2 D + n_B^3 / 3 per class. Only classes with n_B <= ``max_free`` are solved
    (the others come back as w_L: a free set much larger than D + 1 is a wrong guess).
    Over sharded rows the free rows of every rank are gathered (at most D + 1 of them) and each
    rank solves the same system. Returns ``(W, b, alpha)``; alpha_B leaves [0, C] where the
    partition is wrong.
    """
    K = Y.shape[1]
    no_bias = math.isinf(bias_penalty)
    A_L = C * at_c * Y
    sums = shards.sum(torch.cat([xt_mm(X, A_L), A_L.sum(0, keepdim=True)]).to(torch.float64))
    W, sum_L = sums[:-1], sums[-1]  # w_L (D, K) and C_L^T y_L (K,), over all rows
    b = W.new_zeros(K)
    alpha = (C * at_c).to(torch.float64)
    o = torch.ones_like(Y) if O is None else O
    for k in range(K):
        idx = free[:, k].nonzero().squeeze(1)
        mine: Tensor | slice  # the free rows of this process among those solved
        if isinstance(X, SparseRows):  # one process; the free rows stay sparse (no n_B x D dense block)
            n = idx.numel()
            if n == 0 or n > max_free:
                continue
            XB, yB, o_B = X[idx].to(torch.float64), Y[idx, k].to(torch.float64), o[idx, k].to(torch.float64)
            mine = torch.arange(n, device=idx.device)
            gram = inner(XB, XB) * yB.unsqueeze(1) * yB
            margin_L = yB * mm(XB, W[:, k : k + 1]).squeeze(1)

            def back(s: Tensor) -> Tensor:  # X_B^T (y_B s)
                return xt_mm(XB, (yB * s).unsqueeze(1)).squeeze(1)  # noqa: B023 (called in this iteration)
        else:
            # (y_i x_i, y_i, o_i) of the free rows, every rank's in rank order; ours at `mine`.
            local = torch.cat([X[idx] * Y[idx, k : k + 1], Y[idx, k : k + 1], o[idx, k : k + 1]], 1).to(torch.float64)
            rows, mine = gather_rows(shards, local)
            n = rows.shape[0]
            if n == 0 or n > max_free:
                continue
            yXB, yB, o_B = rows[:, :-2], rows[:, -2], rows[:, -1]
            gram, margin_L, back = yXB @ yXB.t(), yXB.mv(W[:, k]), yXB.t().mv  # type: ignore[assignment]
        bordered = not no_bias
        A = W.new_zeros(n + bordered, n + bordered)
        A[:n, :n] = gram
        # A tiny ridge keeps the system solvable when B holds more than D + 1 samples or duplicates.
        A[:n, :n].diagonal().add_(1e-10 * float(A[:n, :n].diagonal().max()) + 1e-12)
        rhs = o_B - margin_L
        if bordered:
            A[:n, n] = yB
            A[n, :n] = yB
            A[n, n] = -bias_penalty
            rhs = torch.cat([rhs, -sum_L[k : k + 1]])
        sol = torch.linalg.solve(A, rhs)
        alpha[idx, k] = sol[mine]
        W[:, k] += back(sol[:n])
        if bordered:
            b[k] = sol[n]
    return W.to(X.dtype), b.to(X.dtype), alpha.to(X.dtype)


def _active_set_candidates(X: Matrix, Y: Tensor, C: Tensor, O: Tensor, F: Tensor, h: float, rounds: int,
                           shards: Collectives = LOCAL, bias_penalty: float = 0.0):
    """Exact-partition candidates from a smoothed-hinge iterate, refined by primal-dual active sets.

    Starts from the partition of the smoothed iterate (alpha = C clamp(z / h, 0, 1), z = o - y f)
    and re-partitions by v = alpha / C + z: at C where v >= 1, at 0 where v <= 0, free between
    (Hintermueller, Ito and Kunisch's primal-dual active set rule). Not guaranteed to settle, so
    each round yields ``(W, b, F, alpha clipped to [0, C])`` for the caller's certified gap to judge.
    """
    z = O - Y * F
    v = (z / h).clamp(0, 1) + z
    # At most D + 1 free rows (more is a wrong guess); for sparse X with many features, at most the direct
    # route's size: a dense n_B x n_B system beyond it costs more than the Newton steps it saves.
    max_free = X.shape[1] + 1 if not isinstance(X, SparseRows) else min(X.shape[1] + 1, _MAX_SPARSE_FREE)
    for _ in range(rounds):
        W, b, alpha = _solve_partition(X, Y, C, v >= 1, (v > 0) & (v < 1), max_free, O, shards, bias_penalty)
        F = addmm(b, X, W)
        yield W, b, F, torch.minimum(alpha.clamp_min(0), C)
        v = alpha / C + (O - Y * F)


class _Certificate:
    """Best primal iterate and best dual bound seen so far, per class (hinge only)."""

    def __init__(self, X: Matrix, Y: Tensor, C: Tensor, O: Tensor, W: Tensor, b: Tensor, shards: Collectives = LOCAL,
                 bias_penalty: float = 0.0) -> None:
        self.X, self.Y, self.C, self.O, self.shards, self.bias_penalty = X, Y, C, O, shards, bias_penalty
        self.W, self.b = W, b
        K = Y.shape[1]
        self.P = torch.full((K,), math.inf, dtype=X.dtype, device=X.device)
        self.D = torch.full((K,), -math.inf, dtype=X.dtype, device=X.device)

    def offer(self, cols: Tensor, W: Tensor, b: Tensor, F: Tensor, alpha: Tensor) -> None:
        """A primal point ``(W, b)`` with decision values ``F`` and a dual point ``alpha`` for classes ``cols``."""
        P, D = _duality_gap(self.X, self.Y[:, cols], self.C[:, cols], self.O[:, cols], W, b, F, alpha, self.shards,
                            self.bias_penalty)
        better = P < self.P[cols]
        self.W = self.W.index_copy(1, cols, torch.where(better, W, self.W[:, cols]))
        self.b = self.b.index_copy(0, cols, torch.where(better, b, self.b[cols]))
        self.P = self.P.index_copy(0, cols, torch.minimum(P, self.P[cols]))
        self.D = self.D.index_copy(0, cols, torch.maximum(D, self.D[cols]))

    def gaps(self) -> Tensor:
        return (self.P - self.D) / self.P.abs().clamp_min(1e-30)


class HingeStopping:
    """Stopping rule of the hinge: each class closes on its certified relative gap (P - max D) / P <= tol.

    ``check`` offers the iterate and its dual point alpha = -C L_h'(m), and (h <= ``polish_below``) exact-partition
    candidates at stage ends and every ``_POLISH_EVERY``-th step; ``active`` marks the classes
    still open, and the solution is the best certified iterate of each class.
    """

    def __init__(self, X: Matrix, Y: Tensor, C: Tensor, O: Tensor, W: Tensor, b: Tensor, tol: float,
                 polish_below: float = 1.0, shards: Collectives = LOCAL, bias_penalty: float = 0.0) -> None:
        self.cert = _Certificate(X, Y, C, O, W, b, shards, bias_penalty)
        self.X, self.tol, self.polish_below, self.shards = X, tol, polish_below, shards
        self.bias_penalty = bias_penalty
        self.active = torch.ones(Y.shape[1], dtype=torch.bool, device=X.device)
        self.gap, self.converged = math.inf, False

    def check(self, cols: Tensor, Ya: Tensor, Ca: Tensor, Oa: Tensor, Wa: Tensor, ba: Tensor, Fa: Tensor,
              alpha: Tensor, h: float, polish: bool) -> bool:
        """Offer the open classes' iterate; True once every class is certified."""
        self.cert.offer(cols, Wa, ba, Fa, alpha)
        if h <= self.polish_below and polish:
            for candidate in _active_set_candidates(self.X, Ya, Ca, Oa, Fa, h, _POLISH_ROUNDS, self.shards,
                                                    self.bias_penalty):
                self.cert.offer(cols, *candidate)
        gaps = self.cert.gaps()
        self.active = gaps > self.tol
        self.gap = float(gaps.max())
        self.converged = not bool(self.active.any())
        return self.converged

    def polish_now(self, stage_done: bool, in_stage: int) -> bool:
        return stage_done or in_stage % _POLISH_EVERY == _POLISH_EVERY - 1

    def solution(self, W: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        return self.cert.W, self.cert.b


class GradientStopping:
    """Stopping rule of the smooth losses: ||g_k|| <= tol ||g_k at the start|| for every class."""

    def __init__(self, K: int, tol: float, device: torch.device) -> None:
        self.tol = tol
        self.active = torch.ones(K, dtype=torch.bool, device=device)  # classes never close early
        self.gap, self.converged = math.inf, False

    def check(self, rel: Tensor) -> bool:
        self.gap = float(rel.max())
        self.converged = self.gap <= self.tol
        return self.converged

    def solution(self, W: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        return W, b
