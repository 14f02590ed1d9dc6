"""Dual SVM solver: SMO with LIBSVM's second-order working-set selection, batched over problems.

    minimize_a  1/2 a^T Q a + p^T a,   Q_ij = y_i y_j K_ij,   0 <= a_i <= C_i,   y^T a = 0

(LIBSVM's form: p = -1 for classification; epsilon-SVR and the one-class SVM have their own p,
start and labels, see :mod:`torchsvm.svm`).

Two solvers, plain torch code without autograd, B problems advancing together:

- :func:`smo_dual` keeps the Gram matrix in memory (``K`` ``(B, N, N)``, or one ``(N, N)``
  shared by B label vectors as one-vs-rest is) and moves one pair of variables per step.
- :func:`decomposition_dual` never forms N x N: working sets of ~1024 variables, their kernel
  rows by one matrix product, an inner SMO on the small block (ThunderSVM / cuML's design).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from torchsvm._sparse import Matrix
from torchsvm._warnings import warn_convergence
from torchsvm.distributed import LOCAL, Collectives
from torchsvm.kernels import KernelFn, kernel_row_blocks
from torchsvm.solvers import _smo_backends
from torchsvm.solvers._smo_common import TAU

__all__ = [
    "DualInfo",
    "DualResult",
    "smo_dual",
    "smo_steps",
    "dual_objective",
    "dual_bias",
    "nu_bias",
    "DecompositionSolver",
    "decomposition_dual",
    "kernel_diagonal",
    "device_memory_guard",
]




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


def _masks(alpha: Tensor, pos: Tensor, C: Tensor, movable: Tensor | None = None) -> tuple[Tensor, Tensor]:
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
        max_iter: SMO steps (default ``max(10^6, 100 N)``); running out warns.
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

    alpha, G = _start(Kv, Y, Cb, p, alpha0, dtype)
    max_iter = max(1_000_000, 100 * N) if max_iter is None else max_iter
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
    return _result(G, Y, alpha, Cb, DualInfo(converged, n_iter, gap, counts), nu)


def _result(G: Tensor, Y: Tensor, alpha: Tensor, C: Tensor, info: DualInfo, nu: bool) -> DualResult:
    if nu:
        b, r = nu_bias(G, Y, alpha, C)
        return DualResult(alpha, b, info, r)
    return DualResult(alpha, dual_bias(G, Y, alpha, C), info)


def _start(Kv: Callable[[Tensor], Tensor], Y: Tensor, C: Tensor, p: Tensor | None, alpha0: Tensor | None,
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
    up, low = _masks(alpha, pos, C, movable)

    def row(i: Tensor) -> Tensor:  # (B, N): row i of each problem's K
        return K[i] if K.ndim == 2 else K[rows_b, i]

    if not nu:
        m, i, M = _extremes(score, up, low)
        gap = m - M
        m_t, Ki, Kii = m.unsqueeze(1), row(i), diag_b.gather(1, i.unsqueeze(1))
    else:
        # Solver_NU: one i per sign; candidate j pairs with the i of its own sign.
        m_p, i_p, M_p = _extremes(score, up & pos, low & pos)
        m_n, i_n, M_n = _extremes(score, up & ~pos, low & ~pos)
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


def _extremes(score: Tensor, up: Tensor, low: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(m, i, M)``: m = max of score over ``up`` (at index i), M = min over ``low``; ``(B,)`` each."""
    m, i = torch.where(up, score, -math.inf).max(-1)
    M = torch.where(low, score, math.inf).amin(-1)
    return m, i, M


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


def _kept(T: Tensor | None, keep: int) -> Tensor:
    """The first ``keep`` working-set entries of the last iteration's ``T`` (there is one after the first)."""
    assert T is not None, "kept rows come from an earlier iteration"
    return T[:, :keep]


class DecompositionSolver:
    """Decomposition solver for B SVM duals whose N x N kernel need not fit in memory.

    The ThunderSVM / cuML design on torch: each outer iteration picks, per problem, a working
    set W of q violators (half the largest -y_t G_t in I_up, half the smallest in I_low),
    computes their kernel rows K(X_W, X) ``(B, q, N)`` by one matrix product, solves the
    q-variable subproblem on ``K_WW`` by SMO (:func:`smo_steps`, to a local tolerance
    ``max(tol, gap / 10)``), then updates the gradient of all N variables by one batched
    matrix-vector product, ``G += y * (K_W^T (y_W * delta_W))``. Half of W (the newest half)
    and its kernel rows are kept for the next iteration, so each outer iteration computes q/2
    new rows. Memory is O(B q N), never O(N^2).

    Step it (``step()`` returns True when converged; the Lightning module logs each step) or
    call :func:`decomposition_dual`.

    Args:
        X: ``(N, D)`` samples, on the device the solver runs on.
        y: ``(B, N)`` labels in {-1, +1}.
        C: ``(B, N)`` non-negative costs (``C_i = 0`` leaves sample i out of problem b).
        kernel: ``kernel(A, Z) -> (n_A, n_Z)`` Gram block.
        working_set_size: q, the variables optimized per outer iteration (even, >= 2).
        tol: stopping tolerance on the maximal KKT violation ``m(a) - M(a)``.
        dtype: of the solver's state (alpha, the gradient); default X's, which the kernel rows have.
        p, alpha0, nu: linear term, feasible start and nu formulation, as in :func:`smo_dual` (nu:
            a quarter of each working set from each end of each sign).
    """

    def __init__(
        self,
        X: Matrix,
        y: Tensor,
        C: Tensor,
        kernel: KernelFn,
        working_set_size: int = 1024,
        tol: float = 1e-3,
        dtype: torch.dtype | None = None,
        p: Tensor | None = None,
        alpha0: Tensor | None = None,
        nu: bool = False,
    ) -> None:
        if working_set_size < 2:
            raise ValueError(f"Expected working_set_size >= 2, got {working_set_size}")
        self.X, self.kernel, self.tol, self.nu = X, kernel, tol, nu
        dtype = X.dtype if dtype is None else dtype
        self.Y, self.C = y.to(dtype), C.to(dtype)
        B, N = self.Y.shape
        self.n_total = N  # variables of each problem (over all ranks, where they are sharded)
        self.q = min(working_set_size - working_set_size % 2, N - N % 2) if N >= 2 else 2
        self.p = -torch.ones(B, N, dtype=dtype, device=X.device) if p is None else p.to(dtype).expand(B, N).clone()

        def Kv(v: Tensor) -> Tensor:  # K v without forming K: a block of kernel rows at a time
            return torch.cat([v.to(rows.dtype) @ rows.T for _, rows in kernel_row_blocks(kernel, X, X, 1024)], 1)

        self.alpha, self.G = _start(Kv, self.Y, self.C, self.p, alpha0, dtype)
        self.gap = torch.full((B,), math.inf, dtype=dtype, device=X.device)
        self.n_iter = 0
        self.n_inner = 0
        self.problem_iters = torch.zeros(B, dtype=torch.long, device=X.device)  # outer iterations each problem needed
        self._W: Tensor | None = None  # (B, q) working set of the last iteration, newest half first
        self._movable: Tensor | None = None
        self._rows: Tensor | None = None  # (B, q, N) its kernel rows
        self._advice = (
            f"Pass a smaller working_set_size (now {working_set_size}), fewer samples, or run on the CPU "
            "(device='cpu')."
        )

    def _groups(self) -> list[Tensor | None]:
        """The variables whose violations are compared: all (None), or each sign apart (nu)."""
        pos = self.Y > 0
        return [pos, ~pos] if self.nu else [None]

    def kkt_violation(self) -> Tensor:
        """``m(a) - M(a)`` per problem ``(B,)`` (nu: the larger of the two signs'): 0 at the optimum,
        <= tol at convergence."""
        up, low = _masks(self.alpha, self.Y > 0, self.C)
        score = -self.Y * self.G
        gaps = []
        for g in self._groups():
            m, _, M = _extremes(score, up if g is None else up & g, low if g is None else low & g)
            gaps.append(m - M)
        return torch.stack(gaps).amax(0).nan_to_num(nan=-math.inf)

    def _select(self, n: int, exclude: Tensor | None) -> tuple[Tensor, Tensor]:
        """n new working-set indices per problem ``(B, n)`` and whether each is a real violator;
        the top violators from each end (nu: of each sign, so each sign's worst pair is in)."""
        B, N = self.Y.shape
        up, low = _masks(self.alpha, self.Y > 0, self.C)
        if exclude is not None:
            up, low = up & ~exclude, low & ~exclude
        score = -self.Y * self.G
        groups = self._groups()
        sizes = [n // (2 * len(groups))] * (2 * len(groups))
        sizes[-1] += n - sum(sizes)
        taken = torch.zeros(B, N, dtype=torch.bool, device=score.device)
        index, ok = [], []
        ends = []  # (variables, what ranks them): I_up by largest score, I_low by smallest, per group
        for g in groups:
            for side, value in ((up, score), (low, -score)):
                ends.append((side if g is None else side & g, value))
        for k, (side, value) in enumerate(ends):
            v, i = torch.where(side & ~taken, value, -math.inf).topk(sizes[k], dim=-1)
            taken.scatter_(1, i, v > -math.inf)
            index.append(i)
            ok.append(v > -math.inf)
        # Placeholders (no violator left) may repeat an index; they are frozen in the subproblem.
        return torch.cat(index, 1), torch.cat(ok, 1)

    def _rows_of(self, W: Tensor) -> Tensor:
        B, n = W.shape
        with device_memory_guard(f"{B * n} kernel rows of length {self.X.shape[0]}", self._advice):
            return self.kernel(self.X[W.reshape(-1)], self.X).reshape(B, n, -1)

    def _positions(self, W: Tensor) -> tuple[Tensor, Tensor]:
        """For working-set indices ``W``: which variables this process holds and their indices in its
        state (here: all of them, at ``W`` itself; sharded solvers hold a block)."""
        return torch.ones_like(W, dtype=torch.bool), W

    def _working_set(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(W (B, q), W_new, movable)``: the new violators first (``W_new``), then the last
        iteration's newest half, kept."""
        if self._W is None or self._movable is None:
            W, movable = self._select(self.q, None)
            return W, W, movable
        B, N = self.Y.shape
        keep = self.q // 2
        W_old, mov_old = self._W[:, :keep], self._movable[:, :keep]
        # Kept real violators are not picked again; kept placeholders (frozen) do not count.
        held, local = self._positions(W_old)
        kept = torch.zeros(B, N, dtype=torch.int32, device=W_old.device).scatter_add_(1, local, (held & mov_old).int())
        W_new, mov_new = self._select(self.q - keep, kept > 0)
        return torch.cat([W_new, W_old], 1), W_new, torch.cat([mov_new, mov_old], 1)

    def _subproblem(self, W: Tensor, W_new: Tensor) -> tuple[Tensor, ...]:
        """``(rows, K_WW, y_W, C_W, alpha_W, G_W)``: the working set's kernel rows against this process's
        variables ``(B, q, N)`` (new ones computed, the kept half's reused), its q x q block and state."""
        B, q = W.shape
        keep = q - W_new.shape[1]
        rows = self._rows_of(W_new) if keep == 0 else torch.cat([self._rows_of(W_new), _kept(self._rows, keep)], 1)
        K_WW = rows.gather(2, W.unsqueeze(1).expand(B, q, q))
        return (rows, K_WW, *(T.gather(1, W) for T in (self.Y, self.C, self.alpha, self.G)))

    def _agree(self, delta: Tensor) -> Tensor:
        """The subproblem's step as every process applies it (here: as solved)."""
        return delta

    def step(self) -> bool:
        """One outer iteration; returns True (without changing anything) once converged."""
        self.gap = self.kkt_violation()
        open_ = self.gap > self.tol
        if not bool(open_.any()):
            return True
        self.problem_iters += open_
        W, W_new, movable = self._working_set()
        rows, K_WW, Y_W, C_W, a_W, G_W = self._subproblem(W, W_new)
        a_new = a_W.clone()
        inner_tol = (0.1 * self.gap).clamp_min(self.tol)  # (B,): each problem to a tenth of its violation
        steps, _ = smo_steps(
            K_WW, Y_W, C_W, a_new, G_W, inner_tol, max_iter=5 * self.q, movable=movable, nu=self.nu
        )
        delta = self._agree(torch.where(movable, a_new - a_W, 0))  # (B, q)
        held, local = self._positions(W)
        self.alpha.scatter_add_(1, local, torch.where(held, delta, 0))
        self.alpha = torch.minimum(self.alpha.clamp_min(0), self.C)
        # G = Q a - 1 changes by Q_{:,W} delta_W = y * (K_{W,:}^T (y_W * delta_W)).
        self.G += self.Y * torch.bmm((Y_W * delta).to(rows.dtype).unsqueeze(1), rows).squeeze(1)
        self._W, self._movable, self._rows = W, movable, rows
        self.n_iter += 1
        self.n_inner += steps
        return False

    def dual_objective(self) -> Tensor:
        """``-(1/2 a^T Q a + p^T a)`` per problem (``sum a - 1/2 a^T Q a`` for classification), from G
        (no kernel evaluations): ``(B,)``."""
        # G = Q a + p, so 1/2 a^T Q a + p^T a = 1/2 a^T (G + p).
        return -0.5 * (self.alpha * (self.G + self.p)).sum(-1)

    def bias(self) -> Tensor:
        """The biases ``(B,)`` of the current iterate (LIBSVM's rule, :func:`dual_bias`)."""
        return dual_bias(self.G, self.Y, self.alpha, self.C)

    def primal_objective(self, b: Tensor) -> Tensor:
        """The primal objective ``(B,)`` of the model the current alpha and biases ``b`` define, from G.

        The primal of LIBSVM's form is 1/2 ||w||^2 + sum_i C_i max(0, -p_i - y_i f(x_i)) (the hinge
        for p = -1; epsilon-SVR's two tube sides for its p). With (Q a)_i = y_i (f(x_i) - b) and
        G = Q a + p, y_i f(x_i) = G_i - p_i + y_i b, so each loss is max(0, -G_i - y_i b), and
        ||w||^2 = a^T Q a = a^T (G - p). The duality gap is this minus :meth:`dual_objective`.
        """
        loss = (self.C * (-self.G - self.Y * b.unsqueeze(-1)).clamp_min(0)).sum(-1)
        return 0.5 * (self.alpha * (self.G - self.p)).sum(-1) + loss

    def coefficients(self) -> Tensor:
        """``y * alpha`` ``(B, N)``: what the decision function multiplies the kernel rows by."""
        return self.alpha * self.Y

    def result(self) -> DualResult:
        converged = bool((self.gap <= self.tol).all())
        return _result(self.G, self.Y, self.alpha, self.C, DualInfo(converged, self.n_iter, self.gap, self.problem_iters),
                       self.nu)


def decomposition_dual(
    X: Matrix,
    y: Tensor,
    C: float | Tensor,
    kernel: KernelFn,
    *,
    working_set_size: int = 1024,
    tol: float = 1e-3,
    max_iter: int | None = None,
    dtype: torch.dtype | None = None,
    p: Tensor | None = None,
    alpha0: Tensor | None = None,
    nu: bool = False,
) -> DualResult:
    """Solve B SVM duals on ``kernel(X, X)`` without forming it, by :class:`DecompositionSolver`.

    Args:
        X: ``(N, D)`` samples.
        y: ``(N,)`` or ``(B, N)`` labels in {-1, +1}.
        C: scalar, ``(N,)`` or ``(B, N)`` non-negative costs (0 leaves a sample out).
        kernel: ``kernel(A, Z) -> (n_A, n_Z)``.
        working_set_size: variables per outer iteration; memory is about ``B q N`` kernel values.
        tol: stopping tolerance on the KKT violation (LIBSVM's eps).
        max_iter: outer iterations (default ``max(1000, 20 N / q)``); running out warns.
        dtype: of the solver's state and results; default X's (see :func:`smo_dual`).
        p, alpha0, nu: linear term, feasible start, nu formulation (see :func:`smo_dual`).

    Returns:
        ``DualResult(alpha (B, N), b (B,), info)``; ``info.n_iter`` counts outer iterations.

    Raises:
        MemoryError: the kernel rows of a working set do not fit, with advice.
    """
    Y = y if y.ndim == 2 else y.unsqueeze(0)
    B, N = Y.shape
    Cb = torch.as_tensor(C, dtype=X.dtype if dtype is None else dtype, device=X.device)
    Cb = Cb.expand(B, N) if Cb.ndim < 2 else Cb
    solver = DecompositionSolver(X, Y, Cb, kernel, working_set_size, tol, dtype, p, alpha0, nu)
    max_iter = max(1000, 20 * N // solver.q) if max_iter is None else max_iter
    for _ in range(max_iter):
        if solver.step():
            break
    else:
        solver.gap = solver.kkt_violation()
    result = solver.result()
    if not result.info.converged:
        warn_convergence(
            f"Decomposition did not converge in max_iter={max_iter} outer iterations (max KKT violation "
            f"{float(result.info.kkt_violation.max()):.3g} > tol={tol}). Increase max_iter or tol, "
            "or scale the data / kernel.",
            stacklevel=2,
        )
    return result
