"""SMO with LIBSVM's second-order working-set selection on an in-memory Gram matrix, B problems at once.

The loop runs on one of the backends of :mod:`torchsvm.solvers._smo_backends` (the Triton kernel, the
numba loop, or the torch step written here).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from torchsvm._warnings import warn_convergence
from torchsvm.solvers import _smo_backends
from torchsvm.solvers._dual_rules import DualInfo, DualResult, dual_result, dual_start, index_sets
from torchsvm.solvers._smo_common import TAU

__all__ = ["default_max_steps", "smo_dual", "smo_dual_host", "smo_steps"]


def smo_dual(
    K: Tensor,
    y: Tensor,
    C: float | Tensor = 1.0,
    tol: float = 1e-3,
    max_iter: int | None = None,
    check_every: int = 16,
    dtype: torch.dtype | None = None,
    backend: Literal["auto", "torch", "triton", "numba"] = "auto",
    p: Tensor | None = None,
    alpha0: Tensor | None = None,
    nu: bool = False,
    kernel_index: Tensor | None = None,
) -> DualResult:
    """Solve B SVM duals by SMO (Fan, Chen & Lin 2005, working-set selection 2), on the device of K.

    Each step picks, per problem, i = argmax over I_up of -y_t G_t and j minimizing the
    second-order decrease -b_t^2 / a_t over I_low, then moves a along d = y_i e_i - y_j e_j
    (which keeps y^T a = 0) by t = clip(b / a, 0, t_max). It stops when the maximal KKT
    violation m(a) - M(a) <= tol for every problem (LIBSVM's criterion, tol = its eps).

    Args:
        K: ``(N, N)`` Gram matrix shared by all problems, or ``(B, N, N)``.
        y: ``(N,)`` or ``(B, N)`` labels in {-1, +1}.
        C: scalar, ``(N,)`` or ``(B, N)`` non-negative costs; ``C_i = 0`` leaves sample i out
            of the problem (how one-vs-one pairs and padding are expressed in a batch).
        tol: stopping tolerance on the KKT violation.
        max_iter: SMO steps (default ``max(10^7, 100 N)``, LIBSVM's bound); running out warns.
        check_every: steps between convergence checks of the torch loop (each is one device sync).
        dtype: of the solver's state (alpha, the gradient) and results; default K's. A float32
            K with float64 state is LIBSVM's arrangement: kernel values cached in single
            precision, the gradient accumulated in double.
        backend: ``"auto"`` runs the whole loop in one Triton kernel on CUDA (one program per
            problem), as compiled CPU code (numba) on the CPU, and the torch step where Triton
            cannot build the kernel (with a warning); ``"torch"`` / ``"triton"`` / ``"numba"``
            force one (see :mod:`torchsvm.solvers._smo_backends`: an unknown name or a backend
            not made for K's device raises ``ValueError``, a missing one ``ImportError``).
        p: ``(N,)`` or ``(B, N)`` linear term; default -1 (classification).
        alpha0: ``(B, N)`` feasible start (in the box, y^T a = 0); default 0.
        nu: the nu formulations' second constraint e^T a = e^T alpha0 is kept too (LIBSVM's
            Solver_NU): both variables of a pair have one sign, the stopping rule is the larger
            violation of the two signs, and ``r`` is returned (see :func:`nu_bias`).
        kernel_index: ``(B,)``: problem b uses ``K[kernel_index[b]]`` of a ``(U, N, N)`` K (problems on
            the same rows, as a grid of C values, share one matrix; the compiled CPU loop reads it in
            place, the other backends gather a copy per problem).

    Returns:
        ``DualResult(alpha (B, N), b (B,), info, r)``; ``r`` is None unless ``nu``.
    """
    dtype = K.dtype if dtype is None else dtype
    Y = y if y.ndim == 2 else y.unsqueeze(0)  # (B, N)
    B, N = Y.shape
    Y = Y.to(dtype)
    Cb = torch.as_tensor(C, dtype=dtype, device=K.device)
    Cb = Cb.expand(B, N) if Cb.ndim < 2 else Cb  # scalar or (N,) -> (B, N)
    def Kv(v: Tensor) -> Tensor:  # K v per problem
        if kernel_index is not None:
            return torch.stack([K[k] @ v[b].to(K.dtype) for b, k in enumerate(kernel_index.tolist())])
        return (K @ v.to(K.dtype).unsqueeze(-1)).squeeze(-1)

    alpha, G = dual_start(Kv, Y, Cb, p, alpha0, dtype)
    max_iter = default_max_steps(N) if max_iter is None else max_iter
    counts = torch.zeros(B, dtype=torch.long, device=K.device)
    n_iter, gap = smo_steps(K, Y, Cb, alpha, G, tol, max_iter, check_every, counts=counts, backend=backend, nu=nu,
                            kernel_index=kernel_index)
    converged = bool((gap <= tol).all())
    if not converged:
        warn_convergence(
            f"SMO did not converge in max_iter={max_iter} steps (max KKT violation "
            f"{float(gap.max()):.3g} > tol={tol}). Increase max_iter or tol, or scale the kernel.",
            stacklevel=2,
        )
    return dual_result(G, Y, alpha, Cb, DualInfo(converged, n_iter, gap, counts), nu)


def default_max_steps(n: int) -> int:
    """SMO's step budget for problems of ``n`` variables when ``max_iter`` is None (scikit-learn's -1): LIBSVM's
    own bound, ``max(10^7, 100 n)``, so that no fit LIBSVM finishes stops early here (iris at C = 1e10 takes
    1.7 million steps)."""
    return max(10_000_000, 100 * n)


def smo_dual_host(
    K: np.ndarray,
    Y: np.ndarray,
    C: np.ndarray,
    p: np.ndarray | None = None,
    alpha0: np.ndarray | None = None,
    tol: float = 1e-3,
    max_iter: int | None = None,
    nu: bool = False,
    rows: np.ndarray | None = None,
    parallel: bool = False,
) -> DualResult:
    """:func:`smo_dual` on the CPU from NumPy arrays: B problems ``(B, n)`` on one kernel ``K`` ``(N, N)``,
    each solved by compiled code from its start to its bias, with no torch operation per problem or
    step; one after the other on this thread, or with ``parallel`` in numba's threads. The same steps as
    the numba backend of :func:`smo_dual`, the same bias.

    ``rows`` ``(B, n)`` places problem b's variable t on row ``rows[b, t]`` of K, read in place (one-vs-one
    pairs on their classes' rows of one Gram matrix, epsilon-SVR's two variables per sample); by default
    variable t is row t. ``p`` defaults to -1, ``alpha0`` to 0. Does not warn: the caller reads
    ``info.converged``.

    Returns:
        ``DualResult`` of CPU tensors sharing the solver's arrays.
    """
    from torchsvm.solvers._smo_numba import smo_solve_host  # numba loads on first use, not at import

    B, n = Y.shape
    p = -np.ones((B, n)) if p is None else p
    max_steps = default_max_steps(n) if max_iter is None else max_iter
    contiguous = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    alpha, b, r, counts, gap = smo_solve_host(np.ascontiguousarray(K), contiguous(Y), contiguous(C), contiguous(p), alpha0,
                                              tol, max_steps, nu, rows, parallel)
    info = DualInfo(bool((gap <= tol).all()), int(counts.max()), torch.from_numpy(gap), torch.from_numpy(counts))
    return DualResult(torch.from_numpy(alpha), torch.from_numpy(b), info, torch.from_numpy(r) if nu else None)


def smo_steps(
    K: Tensor,
    Y: Tensor,
    C: Tensor,
    alpha: Tensor,
    G: Tensor,
    tol: float | Tensor,
    max_iter: int,
    check_every: int = 16,
    movable: Tensor | None = None,
    counts: Tensor | None = None,
    backend: Literal["auto", "torch", "triton", "numba"] = "auto",
    nu: bool = False,
    kernel_index: Tensor | None = None,
) -> tuple[int, Tensor]:
    """The SMO loop of :func:`smo_dual`, updating ``alpha`` and ``G`` in place from any feasible start.

    ``G = Q alpha + p`` is the gradient of the minimized objective for whatever linear term p
    (-1 for the full dual; the decomposition solver's subproblems have their own). ``movable``
    ``(B, N)`` freezes the variables where it is False (they still enter G); ``tol`` may be
    ``(B,)``, one per problem; ``counts`` ``(B,)``, if given, is incremented by the steps in
    which each problem was still above its tol. ``backend``, ``nu``, ``kernel_index`` as in :func:`smo_dual`. Returns the
    number of steps of the batch (the most any problem took) and the final KKT violation ``(B,)``.
    """
    B, N = Y.shape
    pos = Y > 0
    counts = torch.zeros(B, dtype=torch.long, device=K.device) if counts is None else counts
    score = -Y * G  # -y_t G_t, kept instead of G: the step then needs no products with y
    candidates, may_fall_back = _smo_backends.choose(backend, K.device)
    for chosen in candidates:
        K_b = K if kernel_index is None or chosen.reads_kernel_index else K.index_select(0, kernel_index)
        if chosen.run is None:  # the torch step
            return _torch_steps(K_b, pos, C, alpha, score, G, Y, tol, max_iter, check_every, movable, counts, nu)
        run = chosen.run
        try:
            n_iter, gap = _compiled_steps(
                lambda a, s, t, c: run(K_b, pos, C, a, s, t, max_iter, movable, c, nu, kernel_index),  # noqa: B023
                alpha, score, counts, tol)
        except chosen.errors() as err:
            if not may_fall_back:
                raise
            _smo_backends.warn_fallback(chosen, err)
            continue
        G.copy_(-Y * score)
        return n_iter, gap
    raise AssertionError("the torch step is every candidate list's last")


def _torch_steps(
    K: Tensor, pos: Tensor, C: Tensor, alpha: Tensor, score: Tensor, G: Tensor, Y: Tensor, tol: float | Tensor,
    max_iter: int, check_every: int, movable: Tensor | None, counts: Tensor, nu: bool,
) -> tuple[int, Tensor]:
    """:func:`smo_steps` by the torch step. A batch whose problems finish at different times
    (one-vs-one pairs, a grid of C values) is compacted at a check once at most half of its
    problems are still open: a finished problem's step moves nothing (its state is final), so
    dropping it changes no result and the later steps cost what the open problems need."""
    B, N = alpha.shape
    gap = torch.full((B,), math.inf, dtype=alpha.dtype, device=K.device)
    tol_b = torch.as_tensor(tol, dtype=alpha.dtype, device=K.device).expand(B) if isinstance(tol, Tensor) else tol
    direction = torch.tensor([1.0, -1.0], dtype=K.dtype, device=K.device)  # d = y_i e_i - y_j e_j
    index = None  # rows of the full batch the working batch holds (None: all, in place)
    work = (K, pos, C, alpha, score, movable, tol_b, counts)
    rows_b, diag_b = _batch_constants(K, alpha.shape)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        K_w, pos_w, C_w, alpha_w, score_w, mov_w, tol_w, counts_w = work
        gap_w, active = _smo_step(K_w, C_w, alpha_w, score_w, diag_b, pos_w, rows_b, direction, tol_w, mov_w,
                                  counts_w, nu)
        if n_iter % check_every != 1:
            continue
        n_open = int(active.sum())
        if n_open == 0:
            break  # this step moved nothing: every problem was within tol
        if 2 * n_open <= alpha_w.shape[0]:
            index = _write_back(work, gap_w, index, alpha, score, counts, gap)
            keep = active.nonzero().squeeze(1)
            index = keep if index is None else index[keep]
            work = _select_problems(work, keep, K.ndim == 3)
            rows_b, diag_b = _batch_constants(work[0], work[3].shape)
    _write_back(work, gap_w, index, alpha, score, counts, gap)
    G.copy_(-Y * score)
    return n_iter, gap


def _batch_constants(K: Tensor, shape: torch.Size) -> tuple[Tensor, Tensor]:
    """The batch rows ``(B,)`` and the kernel diagonal ``(B, N)`` of a working batch."""
    return torch.arange(shape[0], device=K.device), K.diagonal(dim1=-2, dim2=-1).expand(shape)


def _select_problems(work: tuple, keep: Tensor, batched_K: bool) -> tuple:
    """The working batch's state restricted to the problems ``keep`` (K too when each problem has its own)."""
    K, pos, C, alpha, score, movable, tol, counts = work
    pick = lambda T: T.index_select(0, keep) if isinstance(T, Tensor) else T  # noqa: E731
    return (pick(K) if batched_K else K, pick(pos), pick(C), pick(alpha), pick(score), pick(movable), pick(tol),
            pick(counts))


def _write_back(work: tuple, gap_w: Tensor, index: Tensor | None, alpha: Tensor, score: Tensor, counts: Tensor,
                gap: Tensor) -> Tensor | None:
    """Copy the working batch's alpha, score, step counts and violations into the full batch's rows ``index``."""
    _, _, _, alpha_w, score_w, _, _, counts_w = work
    if index is None:
        gap.copy_(gap_w)
        return None
    alpha.index_copy_(0, index, alpha_w)
    score.index_copy_(0, index, score_w)
    counts.index_copy_(0, index, counts_w)
    gap.index_copy_(0, index, gap_w)
    return index


def _compiled_steps(run: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor], alpha: Tensor, score: Tensor,
                    counts: Tensor, tol: float | Tensor) -> tuple[int, Tensor]:
    """A compiled loop (numba's or Triton's), ``run(alpha, score, tol (B,), counts) -> gap``, on contiguous
    copies where the inputs are views; returns the steps of the batch (the most any problem took) and the gap."""
    B, _ = alpha.shape
    tol_b = torch.as_tensor(tol, dtype=alpha.dtype, device=alpha.device).expand(B).contiguous()
    a, s, c = alpha.contiguous(), score.contiguous(), counts.contiguous()
    before = counts.clone()
    gap = run(a, s, tol_b, c)
    for out, new in ((alpha, a), (score, s), (counts, c)):
        if new.data_ptr() != out.data_ptr():
            out.copy_(new)
    return int((counts - before).max()), gap


def _smo_step(
    K: Tensor,
    C: Tensor,
    alpha: Tensor,
    score: Tensor,
    diag_b: Tensor,
    pos: Tensor,
    rows_b: Tensor,
    direction: Tensor,
    tol: float | Tensor,
    movable: Tensor | None,
    counts: Tensor,
    nu: bool = False,
) -> tuple[Tensor, Tensor]:
    """One SMO step of every problem still above tol; updates ``alpha``, ``score`` and ``counts`` in
    place and returns the KKT violation before the step and which problems moved, both ``(B,)``."""
    up, low = index_sets(alpha, pos, C, movable)

    def row(i: Tensor) -> Tensor:  # (B, N): row i of each problem's K
        return K[i] if K.ndim == 2 else K[rows_b, i]

    if not nu:
        m, i, M = extremes(score, up, low)
        gap = m - M
        m_t, Ki, Kii = m.unsqueeze(1), row(i), diag_b.gather(1, i.unsqueeze(1))
    else:
        # Solver_NU: one i per sign; candidate j pairs with the i of its own sign.
        m_p, i_p, M_p = extremes(score, up & pos, low & pos)
        m_n, i_n, M_n = extremes(score, up & ~pos, low & ~pos)
        gap = torch.maximum(m_p - M_p, m_n - M_n)
        Ki_p, Ki_n = row(i_p), row(i_n)
        m_t = torch.where(pos, m_p.unsqueeze(1), m_n.unsqueeze(1))  # (B, N)
        Ki = torch.where(pos, Ki_p, Ki_n)
        Kii = torch.where(pos, diag_b.gather(1, i_p.unsqueeze(1)), diag_b.gather(1, i_n.unsqueeze(1)))
    active = gap > tol
    counts += active
    b_t = m_t - score  # > 0 for candidates
    a_t = (Kii + diag_b - 2 * Ki).clamp_min(TAU)
    cand = low & (b_t > 0)
    j = torch.where(cand, -(b_t * b_t) / a_t, math.inf).argmin(-1)  # (B,)
    if nu:
        j_pos = pos.gather(1, j.unsqueeze(1)).squeeze(1)
        i = torch.where(j_pos, i_p, i_n)
        Ki = torch.where(j_pos.unsqueeze(1), Ki_p, Ki_n)
    Kj = row(j)
    ij = torch.stack([i, j], 1)  # (B, 2): one gather per quantity for the pair
    b_ij = b_t.gather(1, j.unsqueeze(1)).squeeze(1)
    a_ij = a_t.gather(1, j.unsqueeze(1)).squeeze(1)
    y_ij = torch.where(pos.gather(1, ij), 1.0, -1.0).to(alpha.dtype)
    a_old, C_ij = alpha.gather(1, ij), C.gather(1, ij)
    # a_i + y_i t in [0, C_i] and a_j - y_j t in [0, C_j], for t >= 0: with s = (y_i, -y_j),
    # each moves by s t, so its room is C - a where s > 0 and a where s < 0.
    sign = y_ij * direction
    room = torch.where(sign > 0, C_ij - a_old, a_old).amin(1)
    t = torch.minimum(b_ij / a_ij, room).clamp_min(0)
    t = torch.where(active & cand.any(-1), t, 0.0)
    alpha.scatter_(1, ij, torch.minimum((a_old + sign * t.unsqueeze(1)).clamp_min(0), C_ij))
    # G = Q a + p changes by Q (y_i t e_i - y_j t e_j) = t y (K_i - K_j), so -y G by -t (K_i - K_j).
    score.sub_(t.unsqueeze(1) * (Ki - Kj))
    return gap, active


def extremes(score: Tensor, up: Tensor, low: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(m, i, M)``: m = max of score over ``up`` (at index i), M = min over ``low``; ``(B,)`` each."""
    m, i = torch.where(up, score, -math.inf).max(-1)
    M = torch.where(low, score, math.inf).amin(-1)
    return m, i, M
