"""The whole SMO loop of B problems as compiled CPU code (numba): LIBSVM's cost per step on the CPU.

The torch step is ~60 dispatched ops, each a pass over the (B, N) state: on the CPU that costs
tens of microseconds whatever N is, where LIBSVM's step is two passes over N numbers. Here each
problem runs its steps to its tolerance in one compiled loop (problems in parallel threads):
per step one pass with row i of K choosing j, the pair update as scalars, one pass with rows i and j
updating the scores that also chooses the next step's i (and M). Same working-set selection, clipping,
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
def _extremes(s_b, up_b, low_b, p_b, N, K_i, K_j, step, update):
    """Per sign (positive, negative): m = max score over I_up (first index on ties), its index, and
    M = min over I_low. With ``update``, first each score moves by -step (K_i - K_j): the last step's
    update and the next step's choice of i in one pass. Branch-free selects: which set a variable is
    in is as good as random, so a branch on it would be mispredicted half the time."""
    m_p, i_p, M_p, m_n, i_n, M_n = -np.inf, 0, np.inf, -np.inf, 0, np.inf
    for t in range(N):
        if update:
            # -y G changes by -t (K_i - K_j); the difference in the kernel's dtype, as the torch step.
            s_b[t] -= step * (K_i[t] - K_j[t])
        st = s_b[t]
        hi = st if up_b[t] else -np.inf
        lo = st if low_b[t] else np.inf
        if p_b[t]:
            if hi > m_p:
                m_p, i_p = hi, t
            M_p = min(M_p, lo)
        else:
            if hi > m_n:
                m_n, i_n = hi, t
            M_n = min(M_n, lo)
    return m_p, i_p, M_p, m_n, i_n, M_n

@numba.njit(inline="always")
def _violation(nu, m_p, i_p, M_p, m_n, i_n, M_n):
    """The KKT violation and the extremes the step uses: per sign under nu (Solver_NU: one i per sign),
    else one i over both signs (the first index on ties), given to both."""
    if nu:
        return max(m_p - M_p, m_n - M_n), m_p, i_p, M_p, m_n, i_n, M_n
    if m_n > m_p or (m_n == m_p and i_n < i_p):
        m_p, i_p = m_n, i_n
    M = min(M_p, M_n)
    return m_p - M, m_p, i_p, M, m_p, i_p, M

@numba.njit(parallel=True, cache=True)
def _smo_kernel(K, kmap, C, alpha, score, pos, movable, tol, counts, gap, max_steps, nu):
    B, N = alpha.shape
    for b in numba.prange(B):
        K_b = K[kmap[b]]
        C_b, a_b, s_b, p_b, m_b = C[b], alpha[b], score[b], pos[b], movable[b]
        # The diagonal gathered once (read in place, K[t, t] is a cache and TLB miss for every t), and
        # the sets as flags, of which a step changes two.
        d_b = np.empty(N, K.dtype)
        up_b = np.empty(N, np.bool_)
        low_b = np.empty(N, np.bool_)
        for t in range(N):
            d_b[t] = K_b[t, t]
            up_b[t], low_b[t] = _in_sets(a_b[t], C_b[t], p_b[t], m_b[t])
        K_i = K_j = K_b[0]
        m_p, i_p, M_p, m_n, i_n, M_n = _extremes(s_b, up_b, low_b, p_b, N, K_i, K_j, 0.0, False)
        g = np.inf
        for _ in range(max_steps):
            g, m_p, i_p, M_p, m_n, i_n, M_n = _violation(nu, m_p, i_p, M_p, m_n, i_n, M_n)
            if not g > tol[b]:
                break
            counts[b] += 1
            # j minimizes -b_t^2 / a_t over I_low with b_t = m - score_t > 0 (m, i of t's sign under nu)
            best, j = np.inf, -1
            K_ip, K_in = K_b[i_p], K_b[i_n]
            d_p, d_n = d_b[i_p], d_b[i_n]
            for t in range(N):
                if not low_b[t]:
                    continue
                pt = p_b[t]
                b_t = (m_p if pt else m_n) - s_b[t]
                if b_t > 0:
                    K_it = K_ip[t] if pt else K_in[t]
                    a_t = max((d_p if pt else d_n) + d_b[t] - (K_it + K_it), TAU)
                    v = -(b_t * b_t) / a_t
                    if v < best:
                        best, j = v, t
            if j < 0:
                break  # no pair can move: the torch step stays put until max_iter, the same alpha
            i = i_p if p_b[j] else i_n
            m_i = m_p if p_b[j] else m_n
            K_ij = K_b[i, j]
            a_ij = max(d_b[i] + d_b[j] - (K_ij + K_ij), TAU)
            b_ij = m_i - s_b[j]
            # a_i + y_i t in [0, C_i], a_j - y_j t in [0, C_j], t >= 0.
            s_i = 1.0 if p_b[i] else -1.0
            s_j = -1.0 if p_b[j] else 1.0
            room_i = C_b[i] - a_b[i] if s_i > 0 else a_b[i]
            room_j = C_b[j] - a_b[j] if s_j > 0 else a_b[j]
            step = max(min(b_ij / a_ij, min(room_i, room_j)), 0.0)
            a_b[i] = min(max(a_b[i] + s_i * step, 0.0), C_b[i])
            a_b[j] = min(max(a_b[j] + s_j * step, 0.0), C_b[j])
            for t in (i, j):
                up_b[t], low_b[t] = _in_sets(a_b[t], C_b[t], p_b[t], m_b[t])
            # the scores' update and the next step's extremes (those of the final iterate when out of steps)
            m_p, i_p, M_p, m_n, i_n, M_n = _extremes(s_b, up_b, low_b, p_b, N, K_b[i], K_b[j], step, True)
        else:  # out of steps: the violation of the final iterate
            g = _violation(nu, m_p, i_p, M_p, m_n, i_n, M_n)[0]
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
