"""The whole SMO loop of B problems as compiled CPU code (numba): LIBSVM's cost per step on the CPU.

The torch step is ~60 dispatched ops, each a pass over the (B, N) state: on the CPU that costs
tens of microseconds whatever N is, where LIBSVM's step is two passes over N numbers. Here each
problem runs its steps to its tolerance in one compiled loop (problems in parallel threads):
per step one pass choosing i (and M), one pass with row i of K choosing j, the pair update as
scalars, one pass with rows i and j updating the scores. Same working-set selection, clipping,
stopping rule and arithmetic (the kernel values' dtype kept where the torch step keeps it) as
:func:`torchsvm.solvers.smo._smo_step`, nu selection included; tests compare the two.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from torchsvm.solvers._smo_common import TAU

__all__ = ["smo_steps_numba", "warm_up"]


def warm_up() -> None:
    """Pay numba's one-time set-up in this process now (its CPU target loads its registries on the first
    compiled call, cached or not), so that it does not land in the first fit. The estimators call it
    when they are imported."""
    _ready()



@numba.njit(cache=True)
def _ready():
    return 0

@numba.njit(inline="always")
def _in_sets(a, c, p, mv):
    """(in I_up, in I_low) of one variable: I_up can move along +y, I_low along -y."""
    if not mv:
        return False, False
    if p:
        return a < c, a > 0
    return a > 0, a < c

@numba.njit(inline="always")
def _extremes(C_b, a_b, s_b, p_b, m_b, N, sign):
    """m = max score over I_up (first index on ties), M = min over I_low, of the variables
    of one sign (1: positive, -1: negative, 0: all)."""
    m, i, M = -np.inf, 0, np.inf
    for t in range(N):
        if sign != 0 and p_b[t] != (sign > 0):
            continue
        up, low = _in_sets(a_b[t], C_b[t], p_b[t], m_b[t])
        if up and s_b[t] > m:
            m, i = s_b[t], t
        if low and s_b[t] < M:
            M = s_b[t]
    return m, i, M

@numba.njit(parallel=True, cache=True)
def _smo_kernel(K, kmap, C, alpha, score, pos, movable, tol, counts, gap, max_steps, nu):
    B, N = alpha.shape
    for b in numba.prange(B):
        K_b = K[kmap[b]]
        C_b, a_b, s_b, p_b, m_b = C[b], alpha[b], score[b], pos[b], movable[b]
        g = np.inf
        for _ in range(max_steps):
            if nu:  # Solver_NU: one i per sign
                m_p, i_p, M_p = _extremes(C_b, a_b, s_b, p_b, m_b, N, 1)
                m_n, i_n, M_n = _extremes(C_b, a_b, s_b, p_b, m_b, N, -1)
                g = max(m_p - M_p, m_n - M_n)
            else:
                m_p, i_p, M_p = _extremes(C_b, a_b, s_b, p_b, m_b, N, 0)
                m_n, i_n = m_p, i_p
                g = m_p - M_p
            if not g > tol[b]:
                break
            counts[b] += 1
            # j minimizes -b_t^2 / a_t over I_low with b_t = m - score_t > 0 (m, i of t's sign under nu)
            best, j = np.inf, -1
            for t in range(N):
                _, low = _in_sets(a_b[t], C_b[t], p_b[t], m_b[t])
                if not low:
                    continue
                i_t, m_t = (i_p, m_p) if (p_b[t] or not nu) else (i_n, m_n)
                b_t = m_t - s_b[t]
                if b_t > 0:
                    K_it = K_b[i_t, t]
                    a_t = max(K_b[i_t, i_t] + K_b[t, t] - (K_it + K_it), TAU)
                    v = -(b_t * b_t) / a_t
                    if v < best:
                        best, j = v, t
            if j < 0:
                break  # no pair can move: the torch step stays put until max_iter, the same alpha
            i = i_p if (p_b[j] or not nu) else i_n
            m_i = m_p if (p_b[j] or not nu) else m_n
            K_ij = K_b[i, j]
            a_ij = max(K_b[i, i] + K_b[j, j] - (K_ij + K_ij), TAU)
            b_ij = m_i - s_b[j]
            # a_i + y_i t in [0, C_i], a_j - y_j t in [0, C_j], t >= 0.
            s_i = 1.0 if p_b[i] else -1.0
            s_j = -1.0 if p_b[j] else 1.0
            room_i = C_b[i] - a_b[i] if s_i > 0 else a_b[i]
            room_j = C_b[j] - a_b[j] if s_j > 0 else a_b[j]
            step = max(min(b_ij / a_ij, min(room_i, room_j)), 0.0)
            a_i_new = min(max(a_b[i] + s_i * step, 0.0), C_b[i])
            a_j_new = min(max(a_b[j] + s_j * step, 0.0), C_b[j])
            a_b[i], a_b[j] = a_i_new, a_j_new
            # -y G changes by -t (K_i - K_j); the difference in the kernel's dtype, as the torch step.
            K_i, K_j = K_b[i], K_b[j]
            for t in range(N):
                s_b[t] -= step * (K_i[t] - K_j[t])
        else:  # out of steps: the violation of the final iterate
            if nu:
                m_p, _, M_p = _extremes(C_b, a_b, s_b, p_b, m_b, N, 1)
                m_n, _, M_n = _extremes(C_b, a_b, s_b, p_b, m_b, N, -1)
                g = max(m_p - M_p, m_n - M_n)
            else:
                m_p, _, M_p = _extremes(C_b, a_b, s_b, p_b, m_b, N, 0)
                g = m_p - M_p
        gap[b] = g


def smo_steps_numba(
    K: Tensor, pos: Tensor, C: Tensor, alpha: Tensor, score: Tensor, tol: Tensor, max_steps: int,
    movable: Tensor | None, counts: Tensor, nu: bool, kernel_index: Tensor | None = None,
) -> Tensor:
    """Run every problem's SMO steps to its tol (or ``max_steps``), updating ``alpha`` and ``score``
    (``-y * G``) and ``counts`` in place (contiguous CPU tensors); returns the final violations ``(B,)``.
    Problem b uses ``K[kernel_index[b]]`` (default: the one K, or K[b])."""
    B, N = alpha.shape
    K3 = K.unsqueeze(0) if K.ndim == 2 else K
    if kernel_index is None:
        kernel_index = torch.zeros(B, dtype=torch.long, device="cpu") if K.ndim == 2 else torch.arange(B, device="cpu")
    mov = torch.ones(B, N, dtype=torch.bool, device="cpu") if movable is None else movable.contiguous()
    gap = torch.empty(B, dtype=alpha.dtype, device="cpu")
    _smo_kernel(K3.contiguous().numpy(), kernel_index.to(torch.long).contiguous().numpy(),
                C.to(alpha.dtype).contiguous().numpy(), alpha.numpy(), score.numpy(),
                pos.contiguous().numpy(), mov.numpy(), tol.numpy(), counts.numpy(), gap.numpy(), max_steps, nu)
    return gap
