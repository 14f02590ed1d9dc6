"""Dual SVM solver: SMO with LIBSVM's second-order working-set selection, batched over problems.

    minimize_a  1/2 a^T Q a - 1^T a,   Q_ij = y_i y_j K_ij,   0 <= a_i <= C_i,   y^T a = 0

This first solver keeps the Gram matrix in memory (N up to a few tens of thousands on a GPU).
Plain torch code without autograd; B problems (``K`` ``(B, N, N)``, or one ``(N, N)`` shared by
B label vectors, as one-vs-rest is) advance together, one pair of variables each per step.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import torch
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor

__all__ = ["DualInfo", "DualResult", "smo_dual", "dual_objective", "dual_bias"]

_TAU = 1e-12  # LIBSVM's floor for the curvature along a pair


class DualInfo(NamedTuple):
    converged: bool
    n_iter: int
    kkt_violation: Tensor  # (B,) final m(a) - M(a); <= tol at convergence


class DualResult(NamedTuple):
    alpha: Tensor  # (B, N)
    b: Tensor  # (B,)
    info: DualInfo


def dual_objective(K: Tensor, y: Tensor, alpha: Tensor) -> Tensor:
    """``sum a - 1/2 sum_ij a_i a_j y_i y_j K_ij`` (the maximized dual), ``(B,)``."""
    v = alpha * y
    Kv = (K @ v.unsqueeze(-1)).squeeze(-1)
    return alpha.sum(-1) - 0.5 * (v * Kv).sum(-1)


def _masks(alpha: Tensor, y: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    below_C, above_0 = alpha < C, alpha > 0
    pos = y > 0
    up = (below_C & pos) | (above_0 & ~pos)  # I_up: a_t can move along +y_t
    low = (below_C & ~pos) | (above_0 & pos)  # I_low: a_t can move along -y_t
    return up, low


def dual_bias(G: Tensor, y: Tensor, alpha: Tensor, C: Tensor) -> Tensor:
    """LIBSVM's rho rule, batched: b = -mean(y_i G_i) over free SVs, else -(ub + lb) / 2."""
    yG = y * G
    upper, lower = alpha >= C, alpha <= 0
    free = ~upper & ~lower
    n_free = free.sum(-1)
    mean_free = torch.where(free, yG, torch.zeros_like(yG)).sum(-1) / n_free.clamp_min(1)
    inf = torch.full_like(yG, math.inf)
    ub_set = (upper & (y < 0)) | (lower & (y > 0))
    lb_set = (upper & (y > 0)) | (lower & (y < 0))
    ub = torch.where(ub_set, yG, inf).amin(-1)
    lb = torch.where(lb_set, yG, -inf).amax(-1)
    rho = torch.where(n_free > 0, mean_free, (ub + lb) / 2)
    return -rho


def smo_dual(
    K: Tensor,
    y: Tensor,
    C: float | Tensor = 1.0,
    tol: float = 1e-3,
    max_iter: int | None = None,
    check_every: int = 16,
) -> DualResult:
    """Solve B SVM duals by SMO (Fan, Chen & Lin 2005, working-set selection 2), on the device of K.

    Each step picks, per problem, i = argmax over I_up of -y_t G_t and j minimizing the
    second-order decrease -b_t^2 / a_t over I_low, then moves a along d = y_i e_i - y_j e_j
    (which keeps y^T a = 0) by t = clip(b / a, 0, t_max). It stops when the maximal KKT
    violation m(a) - M(a) <= tol for every problem (LIBSVM's criterion, tol = its eps).

    Args:
        K: ``(N, N)`` Gram matrix shared by all problems, or ``(B, N, N)``.
        y: ``(N,)`` or ``(B, N)`` labels in {-1, +1}.
        C: scalar, ``(N,)`` or ``(B, N)`` positive costs.
        tol: stopping tolerance on the KKT violation.
        max_iter: SMO steps (default ``max(10_000, 100 N)``); running out warns.
        check_every: steps between convergence checks (each check is one device sync).

    Returns:
        ``DualResult(alpha (B, N), b (B,), info)``.
    """
    Y = y if y.ndim == 2 else y.unsqueeze(0)  # (B, N)
    B, N = Y.shape
    Y = Y.to(K.dtype)
    Cb = torch.as_tensor(C, dtype=K.dtype, device=K.device)
    Cb = Cb.expand(B, N) if Cb.ndim < 2 else Cb  # scalar or (N,) -> (B, N)
    shared = K.ndim == 2
    diag = K.diagonal(dim1=-2, dim2=-1)  # (N,) or (B, N)
    diag_b = diag.expand(B, N)
    rows_b = torch.arange(B, device=K.device)
    alpha = torch.zeros(B, N, dtype=K.dtype, device=K.device)
    G = -torch.ones(B, N, dtype=K.dtype, device=K.device)  # gradient Q a - 1 at a = 0
    max_iter = max(10_000, 100 * N) if max_iter is None else max_iter
    neg_inf = torch.tensor(-math.inf, dtype=K.dtype, device=K.device)
    pos_inf = torch.tensor(math.inf, dtype=K.dtype, device=K.device)
    gap = torch.full((B,), math.inf, dtype=K.dtype, device=K.device)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        up, low = _masks(alpha, Y, Cb)
        score = -Y * G  # -y_t G_t
        m, i = torch.where(up, score, neg_inf).max(-1)  # (B,)
        M = torch.where(low, score, pos_inf).amin(-1)
        gap = m - M
        active = gap > tol
        if n_iter % check_every == 1 and not bool(active.any()):
            break
        Ki = K[i] if shared else K[rows_b, i]  # (B, N): row i of each problem's K
        Kii = diag[i] if shared else diag[rows_b, i]
        b_t = m.unsqueeze(1) - score  # > 0 for candidates
        a_t = (Kii.unsqueeze(1) + diag_b - 2 * Ki).clamp_min(_TAU)
        cand = low & (b_t > 0)
        j = torch.where(cand, -(b_t * b_t) / a_t, pos_inf).argmin(-1)  # (B,)
        Kj = K[j] if shared else K[rows_b, j]
        b_ij = b_t[rows_b, j]
        a_ij = a_t[rows_b, j]
        yi, yj = Y[rows_b, i], Y[rows_b, j]
        ai, aj = alpha[rows_b, i], alpha[rows_b, j]
        Ci, Cj = Cb[rows_b, i], Cb[rows_b, j]
        # a_i + y_i t in [0, C_i] and a_j - y_j t in [0, C_j], for t >= 0:
        t_max = torch.minimum(torch.where(yi > 0, Ci - ai, ai), torch.where(yj > 0, aj, Cj - aj))
        t = torch.minimum(b_ij / a_ij, t_max).clamp_min(0)
        t = torch.where(active & cand.any(-1), t, torch.zeros_like(t))
        alpha[rows_b, i] = (ai + yi * t).clamp(torch.zeros_like(Ci), Ci)
        alpha[rows_b, j] = (aj - yj * t).clamp(torch.zeros_like(Cj), Cj)
        # G = Q a - 1 changes by Q (y_i t e_i - y_j t e_j) = t y (K_i - K_j).
        G += t.unsqueeze(1) * Y * (Ki - Kj)
    converged = bool((gap <= tol).all())
    if not converged:
        warnings.warn(
            f"SMO did not converge in max_iter={max_iter} steps (max KKT violation "
            f"{float(gap.max()):.3g} > tol={tol}). Increase max_iter or tol, or scale the kernel.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return DualResult(alpha, dual_bias(G, Y, alpha, Cb), DualInfo(converged, n_iter, gap))
