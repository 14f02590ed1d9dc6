"""The whole SMO loop of B problems as compiled CPU code (numba): LIBSVM's cost per step on the CPU.

The torch step is ~60 dispatched ops, each a pass over the (B, N) state: on the CPU that costs
tens of microseconds whatever N is, where LIBSVM's step is two passes over N numbers. Here each
problem runs its steps to its tolerance in one compiled loop (problems in parallel threads):
per step one pass with row i of K choosing j, the pair update as scalars, one pass with rows i and j
updating the scores that also chooses the next step's i (and M). Same working-set selection, clipping,
stopping rule and arithmetic (the kernel values' dtype kept where the torch step keeps it) as
:func:`torchsvm.solvers.smo._smo_step`, nu selection included; tests compare the two.

One problem's loop (:func:`_solve_problem`) has three drivers: :func:`smo_steps_numba` (the SMO backend, from
the caller's state), and the host path's serial and parallel drivers (:func:`smo_solve_host`), which also set
up the start's gradient and end with LIBSVM's bias, and let a problem read its rows of a larger kernel in place.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from torchsvm import _jit  # noqa: F401  (registers the first-build notice before a loop here compiles)
from torchsvm.solvers._smo_common import TAU

__all__ = ["smo_solve_host", "smo_steps_numba"]


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

@numba.njit(inline="always")
def _row(K_l, have, K_b, rows_b, i):
    """Row i of the problem's kernel: read in place, or (a problem on rows of a larger K) gathered from K's
    rows once, when the step first needs it (LIBSVM's cache, without eviction: the block is n x n)."""
    if not have[i]:
        r = rows_b[i]
        K_r = K_b[r]
        for t in range(rows_b.shape[0]):
            K_l[i, t] = K_r[rows_b[t]]
        have[i] = True
    return K_l[i]

@numba.njit(inline="always")
def _rho(s_b, a_b, C_b, p_b, sign):
    """LIBSVM's rho of one problem (``dual_bias``'s rule, -b) over its variables of ``sign`` (+1, -1; 0:
    all): the mean of y G over the free ones, else the middle of their bounds. ``y G = -score``."""
    total, n_free, ub, lb = 0.0, 0, np.inf, -np.inf
    for t in range(a_b.shape[0]):
        if C_b[t] <= 0 or (sign > 0 and not p_b[t]) or (sign < 0 and p_b[t]):
            continue
        yG = -s_b[t]
        if a_b[t] >= C_b[t]:
            if p_b[t]:
                lb = max(lb, yG)
            else:
                ub = min(ub, yG)
        elif a_b[t] <= 0:
            if p_b[t]:
                ub = min(ub, yG)
            else:
                lb = max(lb, yG)
        else:
            total += yG
            n_free += 1
    return total / n_free if n_free > 0 else (ub + lb) / 2

@numba.njit
def _solve_problem(K_b, rows_b, mapped, C_b, a_b, s_b, p_b, m_b, tol, max_steps, nu):
    """One problem's SMO steps to ``tol``, updating ``a_b`` and ``s_b`` in place; returns ``(steps, gap)``.
    ``K_b`` is the problem's kernel ``(n, n)``, or with ``mapped`` a larger K whose rows ``rows_b`` ``(n,)``
    the problem's variables sit on (their rows gathered as the steps need them)."""
    N = a_b.shape[0]
    # The diagonal gathered once (read in place, K[t, t] is a cache and TLB miss for every t), and
    # the sets as flags, of which a step changes two.
    d_b = np.empty(N, K_b.dtype)
    up_b = np.empty(N, np.bool_)
    low_b = np.empty(N, np.bool_)
    if mapped:
        K_l = np.empty((N, N), K_b.dtype)
        have = np.zeros(N, np.bool_)
        for t in range(N):
            d_b[t] = K_b[rows_b[t], rows_b[t]]
    else:
        K_l = K_b
        have = np.ones(N, np.bool_)
        for t in range(N):
            d_b[t] = K_b[t, t]
    for t in range(N):
        up_b[t], low_b[t] = _in_sets(a_b[t], C_b[t], p_b[t], m_b[t])
    K_i = K_j = K_l[0]  # not read: no update in the first pass
    m_p, i_p, M_p, m_n, i_n, M_n = _extremes(s_b, up_b, low_b, p_b, N, K_i, K_j, 0.0, False)
    g = np.inf
    steps = 0
    for _ in range(max_steps):
        g, m_p, i_p, M_p, m_n, i_n, M_n = _violation(nu, m_p, i_p, M_p, m_n, i_n, M_n)
        if not g > tol:
            break
        steps += 1
        # j minimizes -b_t^2 / a_t over I_low with b_t = m - score_t > 0 (m, i of t's sign under nu)
        best, j = np.inf, -1
        K_ip = _row(K_l, have, K_b, rows_b, i_p)
        K_in = _row(K_l, have, K_b, rows_b, i_n)
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
        K_i = K_ip if p_b[j] else K_in
        K_ij = K_i[j]
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
        K_j = _row(K_l, have, K_b, rows_b, j)
        m_p, i_p, M_p, m_n, i_n, M_n = _extremes(s_b, up_b, low_b, p_b, N, K_i, K_j, step, True)
    else:  # out of steps: the violation of the final iterate
        g = _violation(nu, m_p, i_p, M_p, m_n, i_n, M_n)[0]
    return steps, g

@numba.njit(parallel=True, cache=True)
def _smo_kernel(K, kmap, rows, mapped, C, alpha, score, pos, movable, tol, counts, gap, max_steps, nu):
    """Every problem's steps, problems in parallel threads (each on its own thread's state)."""
    for b in numba.prange(alpha.shape[0]):
        steps, gap[b] = _solve_problem(K[kmap[b]], rows[b], mapped, C[b], alpha[b], score[b], pos[b], movable[b],
                                       tol[b], max_steps, nu)
        counts[b] += steps

@numba.njit
def _solve_from_start(K, rows_b, mapped, y_b, C_b, p_b, a_b, tol, max_steps, nu):
    """One problem of the host path from its start ``a_b`` (feasible, updated in place) to its bias:
    ``G = Q alpha + p`` from the start's nonzero variables, the steps, then LIBSVM's rho (-b) and, under
    ``nu``, r (Solver_NU's rules). Returns ``(steps, violation, b, r)``."""
    N = a_b.shape[0]
    pos_b = y_b > 0
    movable = np.ones(N, np.bool_)
    s_b = np.empty(N)
    for t in range(N):
        s_b[t] = -y_b[t] * p_b[t]  # score = -y G, G = p at alpha = 0
    for u in range(N):
        if a_b[u] != 0.0:  # G += y * K (y * alpha): one kernel row per nonzero start variable
            K_u = K[rows_b[u]] if mapped else K[u]
            c = y_b[u] * a_b[u]
            for t in range(N):
                s_b[t] -= c * K_u[rows_b[t] if mapped else t]
    steps, gap = _solve_problem(K, rows_b, mapped, C_b, a_b, s_b, pos_b, movable, tol, max_steps, nu)
    if nu:
        rho_p, rho_n = _rho(s_b, a_b, C_b, pos_b, 1), _rho(s_b, a_b, C_b, pos_b, -1)
        return steps, gap, -(rho_p + rho_n) / 2, (rho_p - rho_n) / 2
    return steps, gap, -_rho(s_b, a_b, C_b, pos_b, 0), 1.0

@numba.njit(cache=True)
def _host_serial(K, rows, mapped, Y, C, p, alpha, tol, max_steps, nu, counts, gap, b_out, r_out):
    """Every problem of one kernel ``K``, one after the other on this thread (small fits)."""
    for b in range(alpha.shape[0]):
        counts[b], gap[b], b_out[b], r_out[b] = _solve_from_start(K, rows[b], mapped, Y[b], C[b], p[b], alpha[b], tol,
                                                                  max_steps, nu)

@numba.njit(parallel=True, cache=True)
def _host_parallel(K, rows, mapped, Y, C, p, alpha, tol, max_steps, nu, counts, gap, b_out, r_out):
    """:func:`_host_serial` with the problems in parallel threads."""
    for b in numba.prange(alpha.shape[0]):
        counts[b], gap[b], b_out[b], r_out[b] = _solve_from_start(K, rows[b], mapped, Y[b], C[b], p[b], alpha[b], tol,
                                                                  max_steps, nu)


def smo_solve_host(K: np.ndarray, Y: np.ndarray, C: np.ndarray, p: np.ndarray, alpha0: np.ndarray | None,
                   tol: float, max_steps: int, nu: bool, rows: np.ndarray | None = None, parallel: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """B problems on one kernel, NumPy in and out: ``(alpha (B, n), b (B,), r (B,), steps (B,), violation (B,))``
    (r is 1 unless ``nu``), one after the other on this thread, or with ``parallel`` in numba's threads.
    ``K`` ``(N, N)``; ``rows`` ``(B, n)`` places each problem's variables on K's rows (default: variable t on
    row t, n = N). The same steps as :func:`smo_steps_numba` and the bias of
    :func:`~torchsvm.solvers._dual_rules.dual_bias` / ``nu_bias``."""
    B, n = Y.shape
    alpha = np.zeros((B, n)) if alpha0 is None else np.array(alpha0, dtype=np.float64)
    mapped = rows is not None
    rows = np.zeros((B, 0), np.int64) if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
    counts, gap = np.zeros(B, np.int64), np.empty(B)
    b, r = np.empty(B), np.empty(B)
    run = _host_parallel if parallel and B > 1 else _host_serial
    run(K, rows, mapped, Y, C, p, alpha, float(tol), int(max_steps), nu, counts, gap, b, r)
    return alpha, b, r, counts, gap


def smo_steps_numba(
    K: Tensor, pos: Tensor, C: Tensor, alpha: Tensor, score: Tensor, tol: Tensor, max_steps: int,
    movable: Tensor | None, counts: Tensor, nu: bool, kernel_index: Tensor | None = None,
    row_index: Tensor | None = None,
) -> Tensor:
    """Run every problem's SMO steps to its tol (or ``max_steps``), updating ``alpha`` and ``score``
    (``-y * G``) and ``counts`` in place (contiguous CPU tensors); returns the final violations ``(B,)``.
    Problem b uses ``K[kernel_index[b]]`` (default: the one K, or K[b]); with ``row_index`` ``(B, n)``,
    its variable t sits on row ``row_index[b, t]`` of that K (problems on some rows of a larger K)."""
    B, N = alpha.shape
    K3 = K.unsqueeze(0) if K.ndim == 2 else K
    if kernel_index is None:
        kernel_index = torch.zeros(B, dtype=torch.long, device="cpu") if K.ndim == 2 else torch.arange(B, device="cpu")
    mov = torch.ones(B, N, dtype=torch.bool, device="cpu") if movable is None else movable.contiguous()
    rows = torch.zeros(B, 0, dtype=torch.long, device="cpu") if row_index is None else row_index.to(torch.long).contiguous()
    gap = torch.empty(B, dtype=alpha.dtype, device="cpu")
    _smo_kernel(K3.contiguous().numpy(), kernel_index.to(torch.long).contiguous().numpy(), rows.numpy(),
                row_index is not None, C.to(alpha.dtype).contiguous().numpy(), alpha.numpy(), score.numpy(),
                pos.contiguous().numpy(), mov.numpy(), tol.numpy(), counts.numpy(), gap.numpy(), max_steps, nu)
    return gap
