"""What the dual solvers share: result types, LIBSVM's bias rules, the objective, the start, the
I_up / I_low sets, and the memory guard around large allocations."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import Tensor

from torchsvm._sparse import Matrix
from torchsvm.distributed import LOCAL, Collectives
from torchsvm.kernels import KernelFn

__all__ = ["DualInfo", "DualResult", "device_memory_guard", "dual_bias", "dual_objective", "dual_result", "dual_start",
           "index_sets", "kernel_diagonal", "nu_bias"]


class DualInfo(NamedTuple):
    converged: bool
    n_iter: int  # steps (SMO) or outer iterations (decomposition) of the batch as a whole
    kkt_violation: Tensor  # (B,) final m(a) - M(a); <= tol at convergence
    problem_iters: Tensor  # (B,) of those, the ones in which each problem was still above tol


class DualResult(NamedTuple):
    alpha: Tensor  # (B, N)
    b: Tensor  # (B,)
    info: DualInfo
    r: Tensor | None = None  # (B,) nu problems only: LIBSVM's r (nu-SVC divides by it; nu-SVR's epsilon is -r)


def dual_objective(K: Tensor, y: Tensor, alpha: Tensor) -> Tensor:
    """``sum a - 1/2 sum_ij a_i a_j y_i y_j K_ij`` (the maximized dual), ``(B,)``."""
    v = alpha * y
    Kv = (K @ v.unsqueeze(-1)).squeeze(-1)
    return alpha.sum(-1) - 0.5 * (v * Kv).sum(-1)


def index_sets(alpha: Tensor, pos: Tensor, C: Tensor, movable: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """I_up (a_t can move along +y_t) and I_low (along -y_t); ``pos`` is ``y > 0``."""
    below_C, above_0 = alpha < C, alpha > 0
    up = torch.where(pos, below_C, above_0)
    low = torch.where(pos, above_0, below_C)
    if movable is not None:
        up, low = up & movable, low & movable
    return up, low


def dual_bias(G: Tensor, y: Tensor, alpha: Tensor, C: Tensor, shards: Collectives = LOCAL) -> Tensor:
    """LIBSVM's rho rule, batched: b = -mean(y_i G_i) over free SVs, else -(ub + lb) / 2.

    Entries with ``C_i = 0`` are not part of the problem (padding, or another pair's samples).
    With ``shards`` the rows are spread over ranks: the sums, minima and maxima run across them.
    """
    yG = y * G
    valid = C > 0
    upper, lower = (alpha >= C) & valid, (alpha <= 0) & valid
    free = ~upper & ~lower & valid
    free_sum, n_free = shards.sum(torch.stack([torch.where(free, yG, torch.zeros_like(yG)).sum(-1),
                                               free.sum(-1).to(yG.dtype)]))
    mean_free = free_sum / n_free.clamp_min(1)
    inf = torch.full_like(yG, math.inf)
    ub_set = (upper & (y < 0)) | (lower & (y > 0))
    lb_set = (upper & (y > 0)) | (lower & (y < 0))
    ub = torch.where(ub_set, yG, inf).amin(-1)
    lb = torch.where(lb_set, yG, -inf).amax(-1)
    ub, neg_lb = shards.min(torch.stack([ub, -lb]))
    rho = torch.where(n_free > 0, mean_free, (ub - neg_lb) / 2)
    return -rho


def nu_bias(G: Tensor, y: Tensor, alpha: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    """LIBSVM's Solver_NU::calculate_rho, batched: ``(b = -rho, r)``, both ``(B,)``.

    With e^T a fixed too, each sign has its own multiplier: r1 from the positive variables and
    r2 from the negative ones (each :func:`dual_bias`'s rule on its sign), rho = (r1 - r2) / 2
    and r = (r1 + r2) / 2.
    """
    pos = y > 0
    r1 = -dual_bias(G, y, alpha, torch.where(pos, C, 0.0))
    r2 = dual_bias(G, y, alpha, torch.where(pos, 0.0, C))
    return -(r1 - r2) / 2, (r1 + r2) / 2


def dual_result(G: Tensor, Y: Tensor, alpha: Tensor, C: Tensor, info: DualInfo, nu: bool) -> DualResult:
    if nu:
        b, r = nu_bias(G, Y, alpha, C)
        return DualResult(alpha, b, info, r)
    return DualResult(alpha, dual_bias(G, Y, alpha, C), info)


def dual_start(Kv: Callable[[Tensor], Tensor], Y: Tensor, C: Tensor, p: Tensor | None, alpha0: Tensor | None,
           dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """The start ``(alpha, G = Q alpha + p)`` of B problems, ``(B, N)`` each; ``Kv(v)`` is ``K v``
    for ``v`` ``(B, N)`` (each solver's own way to multiply by its kernel)."""
    B, N = Y.shape
    p = -torch.ones(B, N, dtype=dtype, device=Y.device) if p is None else p.to(dtype).expand(B, N).clone()
    if alpha0 is None:
        return torch.zeros(B, N, dtype=dtype, device=Y.device), p
    alpha = alpha0.to(dtype).expand(B, N).clone()
    if bool((alpha < 0).any() or (alpha > C).any()):
        raise ValueError("Expected a feasible alpha0 (0 <= alpha0 <= C)")
    return alpha, Y * Kv(Y * alpha).to(dtype) + p


def kernel_diagonal(kernel: KernelFn, X: Matrix, block_size: int = 256) -> Tensor:
    """``K(x_i, x_i)`` for all i from diagonal blocks, without forming N x N."""
    parts = [kernel(X[s : s + block_size], X[s : s + block_size]).diagonal() for s in range(0, X.shape[0], block_size)]
    return torch.cat(parts)


@contextmanager
def device_memory_guard(what: str, advice: str) -> Iterator[None]:
    """Turn an allocation failure into a MemoryError that says what did not fit and what to do.

    The failed allocation is freed by torch; the caller's tensors, and the session, stay intact.
    """
    try:
        yield
    except torch.OutOfMemoryError as err:
        raise MemoryError(f"Out of device memory computing {what}. {advice}") from err
    except RuntimeError as err:
        if "can't allocate memory" not in str(err) and "not enough memory" not in str(err):
            raise
        raise MemoryError(f"Out of host memory computing {what}. {advice}") from err
