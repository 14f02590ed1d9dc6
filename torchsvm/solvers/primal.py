"""Primal linear-SVM solvers: the seed's batch gradient descent and a batched Newton-CG.

Plain torch code without autograd. Every solver works on K one-vs-rest problems at once:
``X`` ``(N, D)``, labels ``Y`` ``(N, K)`` in {-1, +1}, costs ``C`` ``(N, K)``, weights ``W``
``(D, K)`` and biases ``b`` ``(K,)``; the data is used in place, never copied per class.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from torchsvm._validation import check_finite, check_pm1_labels, per_sample_costs

__all__ = ["SolverInfo", "PrimalResult", "primal_gd", "primal_newton", "primal_objective", "loss_terms"]

# Hinge: how far each smoothing stage is solved (relative gradient) before h shrinks; the
# certified duality gap, not this, decides when to stop. 1e-3 took the fewest Newton steps to a
# 1e-3 gap on Fashion-MNIST (5k x 10 classes: 124 steps, against 166 at 1e-2 and 129 at 1e-4).
_STAGE_TOL = 1e-3
# Hinge: once h <= 1, exact-partition candidates are tried at every stage end and every
# _POLISH_EVERY-th Newton step, each time _POLISH_ROUNDS active-set rounds.
_POLISH_EVERY = 5
_POLISH_ROUNDS = 3
Loss = Literal["hinge", "squared_hinge", "logistic"]


class SolverInfo(NamedTuple):
    """What a solver reports beside its solution."""

    converged: bool
    n_iter: int
    gap: float  # relative duality gap (hinge) or relative gradient norm (smooth losses); max over K
    objective: Tensor  # (K,) final primal objective


class PrimalResult(NamedTuple):
    w: Tensor
    b: Tensor
    info: SolverInfo


def loss_terms(margins: Tensor, loss: str, h: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """Loss value, first and second derivative with respect to the margin m = y f(x).

    ``hinge`` with ``h > 0`` is the quadratically smoothed hinge (0 for m >= 1, (1-m)^2 / 2h on
    1-h < m < 1, 1 - m - h/2 below), which differs from the hinge by at most h/2; with h = 0 it
    is the hinge itself with subgradient 0 at m = 1.
    """
    z = 1 - margins
    if loss == "hinge":
        if h <= 0:
            active = (z > 0).to(margins.dtype)
            return z.clamp_min(0), -active, torch.zeros_like(margins)
        t = (z / h).clamp(0, 1)
        value = torch.where(z >= h, z - h / 2, t * z / 2)
        return value, -t, ((z > 0) & (z < h)).to(margins.dtype) / h
    if loss == "squared_hinge":
        zp = z.clamp_min(0)
        return zp * zp, -2 * zp, 2 * (z > 0).to(margins.dtype)
    if loss == "logistic":
        s = torch.sigmoid(-margins)  # = -dL/dm
        return torch.nn.functional.softplus(-margins), -s, s * (1 - s)
    raise ValueError(f"Expected loss to be 'hinge', 'squared_hinge' or 'logistic', got {loss!r}")


def primal_objective(X: Tensor, Y: Tensor, C: Tensor, W: Tensor, b: Tensor, loss: str = "hinge") -> Tensor:
    """``1/2 ||w_k||^2 + sum_i C_ik L(y_ik f_k(x_i))`` for each column k, ``(K,)``."""
    value, _, _ = loss_terms(Y * torch.addmm(b, X, W), loss)
    return 0.5 * (W * W).sum(0) + (C * value).sum(0)


def primal_gd(
    X: Tensor, y: Tensor, C: float | Tensor = 5.0, lr: float = 1e-3, epochs: int = 100
) -> tuple[Tensor, Tensor, list[float]]:
    """Batch (sub)gradient descent on the hinge objective, exactly as the seed states it.

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
        margins = Y * torch.addmm(b, X, W)
        objectives.append(float((0.5 * (W * W).sum(0) + (Cs * (1 - margins).clamp_min(0)).sum(0)).sum()))
        r = Cs * (margins < 1).to(X.dtype) * Y  # C_i 1[y_i f(x_i) < 1] y_i, (N, K)
        grad_W = W - X.t().mm(r)
        grad_b = -r.sum(0)
        W, b = W - lr * grad_W, b - lr * grad_b  # simultaneous update
    objectives.append(float(primal_objective(X, Y, Cs, W, b).sum()))
    return (W[:, 0], b[0], objectives) if single else (W, b, objectives)


def _check_problem(X: Tensor, Y: Tensor) -> None:
    if X.ndim != 2:
        raise ValueError(f"Expected X of shape (N, D), got shape {tuple(X.shape)}")
    if X.shape[0] == 0:
        raise ValueError("Expected at least one sample, got X with 0 rows")
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"Expected y with {X.shape[0]} rows to match X, got shape {tuple(Y.shape)}")
    if not X.is_floating_point():
        raise TypeError(f"Expected X to have a floating-point dtype, got {X.dtype}")
    check_pm1_labels(Y)
    check_finite("X", X)


def _xt_mm(X: Tensor, R: Tensor) -> Tensor:
    """X^T R for a thin R, computed as (R^T X)^T: the same product, but CPU BLAS takes the
    transposed-X route 3x slower for 2-10 columns (60k x 784 float32, 10 columns: 65 ms vs 19 ms)."""
    return R.t().mm(X).t()


def _batched_cg(hvp, rhs: Tensor, tol: float, max_iter: int) -> tuple[Tensor, int]:
    """Solve H p = rhs column by column (K independent SPD systems, vectorized), from p = 0."""
    p = torch.zeros_like(rhs)
    r = rhs.clone()
    d = r.clone()
    rr = (r * r).sum(0)
    stop = (tol * rhs.norm(dim=0)) ** 2
    it = 0
    for it in range(1, max_iter + 1):
        Hd = hvp(d)
        dHd = (d * Hd).sum(0)
        alpha = torch.where(dHd > 0, rr / dHd.clamp_min(1e-300), torch.zeros_like(rr))
        p += alpha * d
        r -= alpha * Hd
        rr_new = (r * r).sum(0)
        if bool((rr_new <= stop).all()):
            break
        d = r + (rr_new / rr.clamp_min(1e-300)) * d
        rr = rr_new
    return p, it


def _duality_gap(X: Tensor, Y: Tensor, C: Tensor, W: Tensor, F: Tensor, alpha: Tensor) -> tuple[Tensor, Tensor]:
    """Hinge primal objective P at (W, b), from its decision values F = X W + b, and a lower bound from a dual-feasible rescaling of alpha.

    The hinge dual is max sum alpha - 1/2 ||X^T (alpha y)||^2 with 0 <= alpha <= C and
    sum alpha y = 0; alpha is made to satisfy the equality by scaling down the larger side,
    which keeps it in the box. Weak duality: D(alpha) <= P* <= P(W, b).
    """
    pos = (alpha * (Y > 0)).sum(0)
    neg = (alpha * (Y < 0)).sum(0)
    scale_pos = torch.where(pos > neg, neg / pos.clamp_min(1e-300), torch.ones_like(pos))
    scale_neg = torch.where(neg > pos, pos / neg.clamp_min(1e-300), torch.ones_like(neg))
    a = alpha * torch.where(Y > 0, scale_pos, scale_neg)
    v = _xt_mm(X, a * Y)  # (D, K)
    dual = a.sum(0) - 0.5 * (v * v).sum(0)
    primal = 0.5 * (W * W).sum(0) + (C * (1 - Y * F).clamp_min(0)).sum(0)  # reuses F: no product with X
    return primal, dual


class _CurvatureGram:
    """G_k = Z^T diag(weights_k) Z with Z = [X, 1], kept per class k between Newton steps.

    For the hinge and the squared hinge the weights are C_ik on the curved rows and 0 elsewhere,
    and from one step to the next few rows enter or leave the curved set (mnist-10k, 10 classes:
    75-250 of 500-1800 from the fourth step on), so G_k is updated by the changed rows,
    G_k += Z_c^T diag(new - old) Z_c, at |c| (D + 1)^2 instead of n_k (D + 1)^2, and rebuilt
    when more rows changed than it now holds (and when the product dtype changes). Rebuilds
    run in ``product_dtype``, updates in float64 (few rows), and both accumulate into float64.
    The K (D + 1)^2 float64 matrices are allocated at the first update.
    """

    def __init__(self, X: Tensor, K: int, chunk: int = 8192) -> None:
        self.X, self.K, self.chunk = X, K, chunk
        self.G: Tensor | None = None
        self.weights = X.new_zeros(X.shape[0], K)  # the weights each G_k holds
        self.product_dtype: torch.dtype | None = None
        self.rows_used = 0  # rows multiplied in all (tests check that updates save work)

    def _allocate(self) -> Tensor:
        if self.G is None:
            D = self.X.shape[1]
            self.G = torch.zeros(self.K, D + 1, D + 1, dtype=torch.float64, device=self.X.device)
        return self.G

    def _add(self, k: int, idx: Tensor, w: Tensor, product_dtype: torch.dtype) -> None:
        """G_k += Z_idx^T diag(w) Z_idx, a chunk of rows at a time."""
        for start in range(0, idx.numel(), self.chunk):
            rows, wc = idx[start : start + self.chunk], w[start : start + self.chunk]
            # Gather first, then convert and append the bias column: only the rows used.
            Z = torch.nn.functional.pad(self.X[rows].to(product_dtype), (0, 1), value=1.0)
            self.G[k] += (Z * wc.to(product_dtype).unsqueeze(1)).t().mm(Z).to(torch.float64)
            self.rows_used += rows.numel()

    def update(self, cols: Tensor, weights: Tensor, product_dtype: torch.dtype) -> Tensor:
        """Bring G_k to ``weights[:, j]`` for each class k = cols[j] and return G[cols], ``(K', D + 1, D + 1)``."""
        self._allocate()
        rebuild_all = product_dtype != self.product_dtype
        self.product_dtype = product_dtype
        for j, k in enumerate(cols.tolist()):
            new, old = weights[:, j], self.weights[:, k]
            changed = (new != old).nonzero().squeeze(1)
            held = (new != 0).nonzero().squeeze(1)
            if rebuild_all or changed.numel() >= held.numel():
                self.G[k].zero_()
                self._add(k, held, new[held], product_dtype)
            elif changed.numel():
                self._add(k, changed, new[changed] - old[changed], torch.float64)
            self.weights[:, k] = new
        return self.G[cols]

    def assign(self, cols: Tensor, G: Tensor, weights: Tensor, product_dtype: torch.dtype) -> None:
        """Set G_k = G (one Gram matrix for all of ``cols``) built from ``weights`` ``(N, K')``."""
        self._allocate()[cols] = G
        self.weights[:, cols] = weights
        self.product_dtype = product_dtype


def _newton_direction_direct(
    X: Tensor,
    weights: Tensor,
    rhs: Tensor,
    damping: float,
    product_dtype: torch.dtype,
    scale: float = 1.0,
    gram: _CurvatureGram | None = None,
    cols: Tensor | None = None,
) -> Tensor:
    """Solve H_k p_k = rhs_k exactly for every column k by a batched Cholesky in float64.

    H_k = [[I + X^T S_k X, X^T S_k 1], [1^T S_k X, 1^T S_k 1]] + damping I with
    S_k = diag(scale * weights_k). Only rows with nonzero weight enter, gathered a chunk at a time
    so memory stays bounded; cost sum_k n_k (D + 1)^2 + K (D + 1)^3 / 3. With ``gram`` (holding
    classes ``cols`` from an earlier call) the Gram part is updated by the rows whose weight
    changed instead (:class:`_CurvatureGram`). The products run in ``product_dtype`` (float32
    halves their cost where H is well conditioned) and accumulate into float64.
    """
    D = X.shape[1]
    # Classes with the same weights share H: the first step (w = 0, every sample on the band,
    # equal costs) builds and factors one Hessian for all K right-hand sides.
    shared = weights.shape[1] > 1 and bool((weights == weights[:, :1]).all())
    if shared:
        one = _CurvatureGram(X, 1)
        H = one.update(torch.zeros(1, dtype=torch.long, device=X.device), weights[:, :1], product_dtype)
        if gram is not None:
            gram.assign(cols, one.G[0], weights, product_dtype)
    else:
        if gram is None:
            gram, cols = _CurvatureGram(X, weights.shape[1]), torch.arange(weights.shape[1], device=X.device)
        H = gram.update(cols, weights, product_dtype)
    H = H * scale
    diag = torch.full((D + 1,), 1.0 + damping, dtype=torch.float64, device=X.device)
    diag[-1] = damping  # the bias is not regularized
    H.diagonal(dim1=1, dim2=2).add_(diag)
    L, info = torch.linalg.cholesky_ex(H)
    if bool((info > 0).any()):  # numerically singular: lean on the damping more
        H.diagonal(dim1=1, dim2=2).add_(1e-6 * float(H.diagonal(dim1=1, dim2=2).max()))
        L = torch.linalg.cholesky(H)
    # (1, D + 1, K) with one shared H, else (K, D + 1, 1).
    B = rhs.to(torch.float64).unsqueeze(0) if shared else rhs.t().to(torch.float64).unsqueeze(2)
    # Two triangular solves: L L^T p = rhs (cholesky_solve was 10x slower on CPU for K columns).
    P = torch.linalg.solve_triangular(L.mT, torch.linalg.solve_triangular(L, B, upper=False), upper=True)
    return (P[0] if shared else P.squeeze(2).t()).to(rhs.dtype)


def _newton_direction_woodbury(
    X: Tensor, curv: Tensor, rhs: Tensor, damping: float, product_dtype: torch.dtype
) -> Tensor:
    """The same solve as :func:`_newton_direction_direct` through n x n systems, for n_k < D.

    With Z = sqrt(S) X_B (the n curved rows), s = sqrt(S) 1, e = 1 + damping and G = e I + Z Z^T
    (n x n, eigenvalues >= 1), the push-through identity M^{-1} Z^T = Z^T G^{-1} for
    M = e I + Z^T Z eliminates the unregularized bias without ever dividing by the damping:
        a = G^{-1} Z r_w,  g = G^{-1} s,
        p_b = (r_b - s^T a) / (e s^T g + damping),
        p_w = (r_w - Z^T a) / e - p_b Z^T g.
    Cost n^2 D + n^3 / 3 per class instead of n D^2 + D^3 / 3. Classes are padded to the largest
    n with zero rows, which leave every formula unchanged.
    """
    N, D = X.shape
    K = curv.shape[1]
    rows = [(curv[:, k] > 0).nonzero().squeeze(1) for k in range(K)]
    n = max(1, max(len(r) for r in rows))
    Z = X.new_zeros(K, n, D, dtype=product_dtype)
    s = torch.zeros(K, n, dtype=torch.float64, device=X.device)
    for k, idx in enumerate(rows):
        root = curv[idx, k].to(torch.float64).sqrt()
        Z[k, : len(idx)] = X[idx].to(product_dtype) * root.to(product_dtype).unsqueeze(1)
        s[k, : len(idx)] = root
    e = 1.0 + damping
    G = torch.bmm(Z, Z.mT).to(torch.float64)
    G.diagonal(dim1=1, dim2=2).add_(e)
    L = torch.linalg.cholesky(G)
    Z = Z.to(torch.float64)
    r_w, r_b = rhs[:-1].t().to(torch.float64), rhs[-1].to(torch.float64)  # (K, D), (K,)
    a = torch.cholesky_solve(torch.bmm(Z, r_w.unsqueeze(2)), L).squeeze(2)  # (K, n)
    g = torch.cholesky_solve(s.unsqueeze(2), L).squeeze(2)
    p_b = (r_b - (s * a).sum(1)) / (e * (s * g).sum(1) + damping)
    p_w = (r_w - torch.bmm(Z.mT, a.unsqueeze(2)).squeeze(2)) / e - p_b.unsqueeze(1) * torch.bmm(Z.mT, g.unsqueeze(2)).squeeze(2)
    return torch.cat([p_w.t(), p_b.unsqueeze(0)], 0).to(rhs.dtype)


def _solve_partition(
    X: Tensor, Y: Tensor, C: Tensor, at_c: Tensor, free: Tensor, max_free: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The hinge optimum if the partition were right: alpha = C on ``at_c``, free on ``free``, 0 elsewhere.

    With L = at_c and B = free, the KKT conditions of the dual are linear:
        y_i (x_i . w + b) = 1 on B,  w = X_L^T (C_L y_L) + X_B^T (alpha_B y_B),  sum_i alpha_i y_i = 0,
    i.e. per class the (n_B + 1)-system
        [[Q_BB, y_B], [y_B^T, 0]] [alpha_B; b] = [1 - y_B (X_B w_L); -C_L^T y_L],  Q_BB = diag(y_B) X_B X_B^T diag(y_B).
    n_B is about the number of margin support vectors, at most about D + 1 for a linear SVM, so
    this costs n_B^2 D + n_B^3 / 3 per class. Only classes with n_B <= ``max_free`` are solved
    (the others come back as w_L: a free set much larger than D + 1 is a wrong guess).
    Returns ``(W, b, alpha)``; alpha_B leaves [0, C] where the partition is wrong.
    """
    K = Y.shape[1]
    A_L = C * at_c * Y
    W = _xt_mm(X, A_L).to(torch.float64)  # w_L, (D, K)
    b = W.new_zeros(K)
    alpha = (C * at_c).to(torch.float64)
    for k in range(K):
        idx = free[:, k].nonzero().squeeze(1)
        n = idx.numel()
        if n == 0 or n > max_free:
            continue
        yB = Y[idx, k].to(torch.float64)
        XB = X[idx].to(torch.float64) * yB.unsqueeze(1)  # rows y_i x_i
        A = W.new_zeros(n + 1, n + 1)
        torch.mm(XB, XB.t(), out=A[:n, :n])
        # A tiny ridge keeps the system solvable when B holds more than D + 1 samples or duplicates.
        A[:n, :n].diagonal().add_(1e-10 * float(A[:n, :n].diagonal().max()) + 1e-12)
        A[:n, n] = yB
        A[n, :n] = yB
        rhs = torch.cat([1 - XB.mv(W[:, k]), -A_L[:, k].sum(0, keepdim=True).to(torch.float64)])
        sol = torch.linalg.solve(A, rhs)
        alpha[idx, k] = sol[:n]
        W[:, k] += XB.t().mv(sol[:n])
        b[k] = sol[n]
    return W.to(X.dtype), b.to(X.dtype), alpha.to(X.dtype)


def _active_set_candidates(X: Tensor, Y: Tensor, C: Tensor, F: Tensor, h: float, rounds: int):
    """Exact-partition candidates from a smoothed-hinge iterate, refined by primal-dual active sets.

    Starts from the partition of the smoothed iterate (alpha = C clamp(z / h, 0, 1), z = 1 - y f)
    and re-partitions by v = alpha / C + z: at C where v >= 1, at 0 where v <= 0, free between
    (Hintermueller, Ito and Kunisch's primal-dual active set rule). Not guaranteed to settle, so
    each round yields ``(W, b, F, alpha clipped to [0, C])`` for the caller's certified gap to judge.
    """
    z = 1 - Y * F
    v = (z / h).clamp(0, 1) + z
    for _ in range(rounds):
        W, b, alpha = _solve_partition(X, Y, C, v >= 1, (v > 0) & (v < 1), X.shape[1] + 1)
        F = torch.addmm(b, X, W)
        yield W, b, F, torch.minimum(alpha.clamp_min(0), C)
        v = alpha / C + (1 - Y * F)


class _Certificate:
    """Best primal iterate and best dual bound seen so far, per class (hinge only)."""

    def __init__(self, X: Tensor, Y: Tensor, C: Tensor, W: Tensor, b: Tensor) -> None:
        self.X, self.Y, self.C = X, Y, C
        self.W, self.b = W, b
        K = Y.shape[1]
        self.P = torch.full((K,), math.inf, dtype=X.dtype, device=X.device)
        self.D = torch.full((K,), -math.inf, dtype=X.dtype, device=X.device)

    def offer(self, cols: Tensor, W: Tensor, b: Tensor, F: Tensor, alpha: Tensor) -> None:
        """A primal point ``(W, b)`` with decision values ``F`` and a dual point ``alpha`` for classes ``cols``."""
        P, D = _duality_gap(self.X, self.Y[:, cols], self.C[:, cols], W, F, alpha)
        better = P < self.P[cols]
        self.W = self.W.index_copy(1, cols, torch.where(better, W, self.W[:, cols]))
        self.b = self.b.index_copy(0, cols, torch.where(better, b, self.b[cols]))
        self.P = self.P.index_copy(0, cols, torch.minimum(P, self.P[cols]))
        self.D = self.D.index_copy(0, cols, torch.maximum(D, self.D[cols]))

    def gaps(self) -> Tensor:
        return (self.P - self.D) / self.P.abs().clamp_min(1e-30)


def _exact_line_search(W: Tensor, pW: Tensor, m0: Tensor, dm: Tensor, C: Tensor, loss: str, h: float) -> Tensor:
    """Per column, the t >= 0 minimizing phi(t) = 1/2 ||W + t pW||^2 + sum C L(m0 + t dm).

    phi is convex, so its derivative is monotone: bracket the root by doubling, then bisect.
    Only elementwise work on (N, K): the matrix products were done by the caller.
    """
    wp, pp = (W * pW).sum(0), (pW * pW).sum(0)

    def dphi(t: Tensor) -> Tensor:
        return wp + t * pp + (C * loss_terms(m0 + t * dm, loss, h)[1] * dm).sum(0)

    lo = torch.zeros_like(wp)
    hi = torch.ones_like(wp)
    descent = dphi(lo) < 0
    if not bool(descent.any()):
        return lo  # not a descent direction for any column
    for _ in range(60):  # bracket: phi'(hi) >= 0
        grow = dphi(hi) < 0
        if not bool(grow.any()):
            break
        lo = torch.where(grow, hi, lo)
        hi = torch.where(grow, hi * 2, hi)
    if loss == "hinge" and h > 0:
        dphi = _bracketed_hinge_derivative(wp, pp, m0, dm, C, lo, hi, h)
    for _ in range(40):  # bisection to ~1e-12 of the bracket
        mid = (lo + hi) / 2
        neg = dphi(mid) < 0
        lo, hi = torch.where(neg, mid, lo), torch.where(neg, hi, mid)
    return torch.where(descent, lo, torch.zeros_like(lo))


def _bracketed_hinge_derivative(
    wp: Tensor, pp: Tensor, m0: Tensor, dm: Tensor, C: Tensor, lo: Tensor, hi: Tensor, h: float
):
    """phi'(t) for t in [lo, hi] of the smoothed hinge, evaluated on the samples that need it.

    Over the bracket a sample whose margin stays >= 1 adds 0 to phi' and one whose margin stays
    <= 1 - h adds -C dm; only the samples crossing the band (a few percent once the iterate is
    near the optimum) are evaluated at each bisection step.
    """
    m_lo, m_hi = m0 + lo * dm, m0 + hi * dm
    m_min, m_max = torch.minimum(m_lo, m_hi), torch.maximum(m_lo, m_hi)
    below = m_max <= 1 - h
    const = wp - (C * dm * below).sum(0)
    rows, cols = (~below & (m_min < 1)).nonzero(as_tuple=True)
    m0c, dmc, cdm = m0[rows, cols], dm[rows, cols], C[rows, cols] * dm[rows, cols]

    def dphi(t: Tensor) -> Tensor:
        slope = ((1 - m0c - t[cols] * dmc) / h).clamp(0, 1)  # -L_h'(m)
        return (const + t * pp).index_add(0, cols, -cdm * slope)

    return dphi


def primal_newton(
    X: Tensor,
    Y: Tensor,
    C: Tensor,
    loss: Loss = "hinge",
    tol: float = 1e-4,
    max_iter: int = 200,
    W0: Tensor | None = None,
    b0: Tensor | None = None,
    direct_max_features: int = 4096,
) -> PrimalResult:
    """Batched Newton on the primal, K one-vs-rest problems at once.

    minimize_k  1/2 ||w_k||^2 + sum_i C_ik L(y_ik (x_i . w_k + b_k)),  b_k not regularized.

    Each Newton step solves H p = -g for all K problems: exactly, by a batched Cholesky of the
    (D + 1) x (D + 1) Hessians built from the rows with curvature when D <= ``direct_max_features``
    (their Gram parts kept between steps and updated by the rows whose curvature changed; through
    n x n systems by the Woodbury identity when every class has n < D curved rows);
    otherwise by conjugate gradients (two products with X per CG step). The step length
    is the exact minimizer along p, found on the (N, K) margins without touching X again.

    ``squared_hinge`` and ``logistic`` are smooth: stop when ||g_k|| <= tol ||g_k at the start||.
    ``hinge`` is solved through the smoothed hinge (see :func:`loss_terms`) with width h
    shrinking 4x per stage, each stage warm-started. Every iterate gives a dual-feasible point
    alpha = -C L_h'(m), and once h <= 1 every stage end and every ``_POLISH_EVERY``-th step
    also offers exact-partition candidates (:func:`_active_set_candidates`). A class is done
    when its certified relative gap (P(w, b) - max D(alpha)) / P is <= tol, and done classes
    leave the iteration; it stops when every class is done, so each returned objective is
    within tol (relative) of its optimum.

    Args:
        X: ``(N, D)``, floating.
        Y: ``(N, K)`` in {-1, +1}, X's dtype.
        C: ``(N, K)`` positive costs.
        loss: ``"hinge"``, ``"squared_hinge"`` or ``"logistic"``.
        tol: relative duality gap (hinge) or relative gradient norm (smooth losses).
        max_iter: Newton iterations in all, across stages.
        W0, b0: warm start (default zeros).
        direct_max_features: largest D solved by Cholesky rather than conjugate gradients.

    Returns:
        ``PrimalResult(w (D, K), b (K,), info)``; ``info.converged`` is False when max_iter ran out.
    """
    N, D = X.shape
    K = Y.shape[1]
    W = X.new_zeros(D, K) if W0 is None else W0.clone()
    b = X.new_zeros(K) if b0 is None else b0.clone()
    damping = 1e-10 * float(C.sum(0).max())  # keeps the bias direction positive definite
    hinge = loss == "hinge"
    # h starts above every margin's distance from 1 at w = 0, so the first model has curvature.
    # Shrinking h 4x per stage took the fewest Newton steps to a 1e-3 gap (float32 pixels, 10
    # classes; mnist-10k / Fashion-MNIST 20k / 60k: 41 / 62 / 65 steps, against 57 / 74 / 70-142
    # for 10x, 46 / 66 for 3x and 72 / 79 for 30x).
    stages = [10.0 * 4.0**-s for s in range(17)] if hinge else [0.0]  # h: 10 .. 2.3e-9
    stage_tol = _STAGE_TOL if hinge else tol  # hinge: the certified gap decides the end
    n_iter, gap, converged = 0, math.inf, False
    g0_norm = None
    active = torch.ones(K, dtype=torch.bool, device=X.device)
    cert = _Certificate(X, Y, C, W, b) if hinge else None
    gram = _CurvatureGram(X, K) if D <= direct_max_features and loss != "logistic" else None

    for h in stages:
        F = torch.addmm(b, X, W)  # (N, K) decision values
        in_stage = 0
        while True:
            # Only the K' open classes (columns cols) are worked on: every product with X and
            # every (N, K') array shrinks as classes finish; done ones keep their certified iterate.
            cols = active.nonzero().squeeze(1)
            Ya, Ca, Fa, Wa, ba = Y[:, cols], C[:, cols], F[:, cols], W[:, cols], b[cols]
            _, d1, d2 = loss_terms(Ya * Fa, loss, h)
            r = Ca * d1 * Ya  # (N, K')
            gW = Wa + _xt_mm(X, r)
            gb = r.sum(0)
            g_norm = torch.sqrt((gW * gW).sum(0) + gb * gb)
            if g0_norm is None:
                g0_norm = g_norm.clamp_min(1e-30)  # all K classes are open at the start
            rel = g_norm / g0_norm[cols]
            stage_done = bool((rel <= stage_tol).all())
            if hinge:
                cert.offer(cols, Wa, ba, Fa, -Ca * d1)
                if h <= 1 and (stage_done or in_stage % _POLISH_EVERY == _POLISH_EVERY - 1):
                    for candidate in _active_set_candidates(X, Ya, Ca, Fa, h, _POLISH_ROUNDS):
                        cert.offer(cols, *candidate)
                gaps = cert.gaps()
                active = gaps > tol
                gap = float(gaps.max())
                if not bool(active.any()):
                    converged = True
                    break
            elif stage_done:
                gap, converged = float(rel.max()), True
                break
            if stage_done:
                break
            if n_iter >= max_iter:
                if not hinge:
                    gap = float(rel.max())
                break
            n_iter += 1
            in_stage += 1
            # The curvature is scale * weights; for the (smoothed) hinge and the squared hinge the
            # weights are C on the curved rows, exactly equal from step to step (see _CurvatureGram).
            if loss == "logistic":
                weights, scale = Ca * d2, 1.0
            else:
                weights, scale = Ca * (d2 > 0).to(X.dtype), (1.0 / h if hinge else 2.0)
            curv = scale * weights  # (N, K'); y^2 = 1
            rhs = -torch.cat([gW, gb.unsqueeze(0)], 0)  # (D + 1, K')
            # Direct whenever D allows: building H costs n_curved (D + 1)^2 per class in
            # compute-bound matrix products, while each CG step is two memory-bound passes over
            # X and the smoothed hinge needs hundreds (Fashion-MNIST 60k: one direct step 1.3 s,
            # one CG solve 7-15 s on 2 CPU cores).
            if D <= direct_max_features:
                # float32 products are accurate enough while h is wide (H well conditioned).
                product_dtype = X.dtype if h >= 0.1 else torch.float64
                n_max = int((weights > 0).sum(0).max())
                if n_max < D:
                    P = _newton_direction_woodbury(X, curv, rhs, damping, product_dtype)
                else:
                    P = _newton_direction_direct(X, weights, rhs, damping, product_dtype, scale, gram, cols)
            else:

                def hvp(V: Tensor) -> Tensor:  # V (D + 1, K'): [w-part; b-part]
                    U = curv * torch.addmm(V[-1], X, V[:-1])  # (N, K')
                    return torch.cat([V[:-1] + _xt_mm(X, U), U.sum(0, keepdim=True)], 0) + damping * V

                P, _ = _batched_cg(hvp, rhs, tol=1e-3, max_iter=max(50, D))
            pW, pb = P[:-1], P[-1]
            XP = torch.addmm(pb, X, pW)  # (N, K'), reused by the line search
            step = _exact_line_search(Wa, pW, Ya * Fa, Ya * XP, Ca, loss, h)
            if not bool((step > 0).any()):
                break  # no class can move: the numerical floor of this stage
            W = W.index_copy(1, cols, Wa + step * pW)
            b = b.index_copy(0, cols, ba + step * pb)
            F = F.index_copy(1, cols, Fa + step * XP)
        if converged or n_iter >= max_iter:
            break

    if hinge:
        W, b = cert.W, cert.b
    return PrimalResult(W, b, SolverInfo(converged, n_iter, gap, primal_objective(X, Y, C, W, b, loss)))
