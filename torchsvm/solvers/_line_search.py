"""Exact line search of the batched primal Newton solver, on the (N, K) margins only."""

from __future__ import annotations

import torch
from torch import Tensor

from torchsvm.distributed import LOCAL, Collectives
from torchsvm.solvers._losses import loss_terms

__all__ = ["exact_line_search"]


def exact_line_search(W: Tensor, pW: Tensor, m0: Tensor, dm: Tensor, C: Tensor, loss: str, h: float,
                      shards: Collectives = LOCAL) -> Tensor:
    """Per column, the t >= 0 minimizing phi(t) = 1/2 ||W + t pW||^2 + sum C L(m0 + t dm).

    phi is convex, so its derivative is monotone: bracket the root by doubling, then bisect.
    Only elementwise work on (N, K): the matrix products were done by the caller. With sharded
    rows (:class:`torchsvm.distributed.Shards`) each evaluation sums K values across the ranks,
    so every rank takes the same step.
    """
    wp, pp = (W * pW).sum(0), (pW * pW).sum(0)

    def dphi(t: Tensor) -> Tensor:
        return wp + t * pp + shards.sum((C * loss_terms(m0 + t * dm, loss, h)[1] * dm).sum(0))

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
        dphi = _bracketed_hinge_derivative(wp, pp, m0, dm, C, lo, hi, h, shards)
    for _ in range(40):  # bisection to ~1e-12 of the bracket
        mid = (lo + hi) / 2
        neg = dphi(mid) < 0
        lo, hi = torch.where(neg, mid, lo), torch.where(neg, hi, mid)
    return torch.where(descent, lo, torch.zeros_like(lo))


def _bracketed_hinge_derivative(
    wp: Tensor, pp: Tensor, m0: Tensor, dm: Tensor, C: Tensor, lo: Tensor, hi: Tensor, h: float, shards: Collectives = LOCAL
):
    """phi'(t) for t in [lo, hi] of the smoothed hinge, evaluated on the samples that need it.

    Over the bracket a sample whose margin stays >= 1 adds 0 to phi' and one whose margin stays
    <= 1 - h adds -C dm; only the samples crossing the band (a few percent once the iterate is
    near the optimum) are evaluated at each bisection step.
    """
    m_lo, m_hi = m0 + lo * dm, m0 + hi * dm
    m_min, m_max = torch.minimum(m_lo, m_hi), torch.maximum(m_lo, m_hi)
    below = m_max <= 1 - h
    const = wp - shards.sum((C * dm * below).sum(0))
    rows, cols = (~below & (m_min < 1)).nonzero(as_tuple=True)
    m0c, dmc, cdm = m0[rows, cols], dm[rows, cols], C[rows, cols] * dm[rows, cols]

    def dphi(t: Tensor) -> Tensor:
        slope = ((1 - m0c - t[cols] * dmc) / h).clamp(0, 1)  # -L_h'(m)
        if not shards.distributed:
            return (const + t * pp).index_add(0, cols, -cdm * slope)
        return const + t * pp + shards.sum(torch.zeros_like(const).index_add_(0, cols, -cdm * slope))

    return dphi


