"""The whole SMO loop of B problems in one Triton launch: one program per problem.

On CUDA an SMO step through torch is ~50 small kernels, so its cost is launch-bound whatever N is
(figures: benchmarks/results/smo-steps-*). Here each program runs its problem's steps to its
tolerance without returning to the host: per step one pass over the variables with row i of K
(choose j), the pair update as scalars, one pass with rows i and j (update the gradient, choose
the next i). Same working-set selection (the nu problems' per-sign one included), clipping and
stopping rule as :func:`torchsvm.solvers.smo._smo_step`; the state (alpha, -y*G) lives in global memory and is
read in chunks of ``BLOCK``, so any N works (the rows come from L2 / HBM, the state mostly from L1).

Correctness without a GPU: ``TRITON_INTERPRET=1`` runs this kernel on CPU tensors (tests compare
it with the torch step there).
"""

from __future__ import annotations

import torch
from torch import Tensor

from torchsvm.solvers._smo_common import TAU

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only torch builds ship without Triton
    triton = None



def backend_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "Triton cannot build or launch this kernel here" (not a bug in the step)."""
    if triton is None:
        return (ImportError,)
    errors: list[type[BaseException]] = [triton.CompilationError]
    from triton.runtime import errors as runtime_errors

    for name in ("OutOfResources", "PTXASError", "InterpreterError"):
        if hasattr(runtime_errors, name):
            errors.append(getattr(runtime_errors, name))
    return tuple(errors)


if triton is not None:

    @triton.jit
    def _state(a_b, s_b, C_b, p_b, m_b, o, N, HAS_MOVABLE: tl.constexpr):
        """One chunk of a problem's state: in range, alpha, score, C (float64), y > 0, movable."""
        ok = o < N
        a = tl.load(a_b + o, mask=ok, other=0.0).to(tl.float64)
        s = tl.load(s_b + o, mask=ok, other=0.0).to(tl.float64)
        Cv = tl.load(C_b + o, mask=ok, other=0.0).to(tl.float64)
        p = tl.load(p_b + o, mask=ok, other=0) != 0
        mv = ok
        if HAS_MOVABLE:
            mv = mv & (tl.load(m_b + o, mask=ok, other=0) != 0)
        return ok, a, s, Cv, p, mv

    @triton.jit
    def _sets(a, Cv, p, mv):
        """I_up (can move along +y) and I_low (along -y)."""
        return mv & tl.where(p, a < Cv, a > 0), mv & tl.where(p, a > 0, a < Cv)

    @triton.jit
    def _track(best_up, idx_up, best_low, s, o, up, low):
        """Running max of the score over ``up`` (first index on ties) and min over ``low``, per lane."""
        su = tl.where(up, s, -float("inf"))
        better = su > best_up
        return (tl.where(better, su, best_up), tl.where(better, o, idx_up),
                tl.minimum(best_low, tl.where(low, s, float("inf"))))

    @triton.jit
    def _track_signs(bu_p, iu_p, bl_p, bu_n, iu_n, bl_n, s, o, up, low, p, NU: tl.constexpr):
        """:func:`_track` of all variables (into the ``_p`` trackers), or of each sign apart (nu)."""
        if NU:
            bu_p, iu_p, bl_p = _track(bu_p, iu_p, bl_p, s, o, up & p, low & p)
            bu_n, iu_n, bl_n = _track(bu_n, iu_n, bl_n, s, o, up & ~p, low & ~p)
        else:
            bu_p, iu_p, bl_p = _track(bu_p, iu_p, bl_p, s, o, up, low)
        return bu_p, iu_p, bl_p, bu_n, iu_n, bl_n

    @triton.jit
    def _reduce(best_up, idx_up, best_low):
        """``(m, i, M)`` from the per-lane trackers: the first index among the maxima."""
        m = tl.max(best_up, 0)
        return m, tl.min(tl.where(best_up == m, idx_up, 2147483647), 0), tl.min(best_low, 0)

    @triton.jit
    def _choose(bu_p, iu_p, bl_p, bu_n, iu_n, bl_n, NU: tl.constexpr):
        """``(m_p, i_p, m_n, i_n, gap)``: each sign's m and i under nu (the gap the larger of the two
        signs' violations, LIBSVM's Solver_NU), else one m and i for all (the ``_n`` ones equal)."""
        m_p, i_p, M_p = _reduce(bu_p, iu_p, bl_p)
        if NU:
            m_n, i_n, M_n = _reduce(bu_n, iu_n, bl_n)
            gap = tl.maximum(m_p - M_p, m_n - M_n)
        else:
            m_n, i_n = m_p, i_p
            gap = m_p - M_p
        return m_p, i_p, m_n, i_n, gap

    # max_steps unspecialized: Triton would otherwise compile a variant per divisibility by 16.
    @triton.jit(do_not_specialize=["max_steps"])
    def _smo_kernel(
        K_ptr, C_ptr, alpha_ptr, score_ptr, pos_ptr, mov_ptr, diag_ptr, tol_ptr, count_ptr, gap_ptr,
        N, max_steps, stride_kb, stride_kr, stride_db,
        HAS_MOVABLE: tl.constexpr, NU: tl.constexpr, BLOCK: tl.constexpr, TAU: tl.constexpr,
    ):
        b = tl.program_id(0).to(tl.int64)
        K_b = K_ptr + b * stride_kb
        C_b, a_b, s_b = C_ptr + b * N, alpha_ptr + b * N, score_ptr + b * N
        p_b, m_b, d_b = pos_ptr + b * N, mov_ptr + b * N, diag_ptr + b * stride_db
        offs = tl.arange(0, BLOCK)
        tol = tl.load(tol_ptr + b)
        inf = float("inf")

        # m = max over I_up of score (its index i), M = min over I_low of score (nu: per sign).
        bu_p = tl.full([BLOCK], -inf, tl.float64)
        iu_p = tl.full([BLOCK], 0, tl.int32)
        bl_p = tl.full([BLOCK], inf, tl.float64)
        bu_n, iu_n, bl_n = bu_p, iu_p, bl_p
        for c in range(0, N, BLOCK):
            o = c + offs
            ok, a, s, Cv, p, mv = _state(a_b, s_b, C_b, p_b, m_b, o, N, HAS_MOVABLE)
            up, low = _sets(a, Cv, p, mv)
            bu_p, iu_p, bl_p, bu_n, iu_n, bl_n = _track_signs(bu_p, iu_p, bl_p, bu_n, iu_n, bl_n, s, o, up, low, p, NU)
        m_p, i_p, m_n, i_n, gap = _choose(bu_p, iu_p, bl_p, bu_n, iu_n, bl_n, NU)
        steps = 0
        stuck = False
        while (steps < max_steps) & (gap > tol) & (not stuck):
            # j minimizes the second-order decrease -b_t^2 / a_t over I_low with b_t = m - score_t > 0,
            # m and i those of t's sign under nu.
            K_ip = K_b + i_p.to(tl.int64) * stride_kr
            K_in = K_b + i_n.to(tl.int64) * stride_kr
            K_pp = tl.load(d_b + i_p).to(tl.float64)
            K_nn = tl.load(d_b + i_n).to(tl.float64)
            best_j = tl.full([BLOCK], inf, tl.float64)
            idx_j = tl.full([BLOCK], 0, tl.int32)
            for c in range(0, N, BLOCK):
                o = c + offs
                ok, a, s, Cv, p, mv = _state(a_b, s_b, C_b, p_b, m_b, o, N, HAS_MOVABLE)
                _, low = _sets(a, Cv, p, mv)
                K_it = tl.load(K_ip + o, mask=ok, other=0.0).to(tl.float64)
                K_ii, m_t = K_pp, m_p
                if NU:
                    K_it = tl.where(p, K_it, tl.load(K_in + o, mask=ok, other=0.0).to(tl.float64))
                    K_ii, m_t = tl.where(p, K_pp, K_nn), tl.where(p, m_p, m_n)
                d = tl.load(d_b + o, mask=ok, other=0.0).to(tl.float64)
                b_t = m_t - s
                a_t = tl.maximum(K_ii + d - 2 * K_it, TAU)
                obj = tl.where(low & (b_t > 0), -(b_t * b_t) / a_t, inf)
                better = obj < best_j
                idx_j = tl.where(better, o, idx_j)
                best_j = tl.where(better, obj, best_j)
            v = tl.min(best_j, 0)
            j = tl.min(tl.where(best_j == v, idx_j, 2147483647), 0)
            # No candidate (reachable only through NaN, as m - M > tol makes M's index one): nothing can
            # move, so this step moves nothing and the loop ends, as the numba loop's.
            stuck = v == inf
            j = tl.where(stuck, i_p, j)
            pos_j = tl.load(p_b + j) != 0
            i, m = i_p, m_p
            if NU:
                i, m = tl.where(pos_j, i_p, i_n), tl.where(pos_j, m_p, m_n)
            # The pair's step t along d = y_i e_i - y_j e_j, clipped to the box (see _smo_step).
            K_i = K_b + i.to(tl.int64) * stride_kr
            Kii = tl.load(d_b + i).to(tl.float64)
            Kij = tl.load(K_i + j).to(tl.float64)
            Kjj = tl.load(d_b + j).to(tl.float64)
            b_ij = m - tl.load(s_b + j).to(tl.float64)
            a_ij = tl.maximum(Kii + Kjj - 2 * Kij, TAU)
            a_i = tl.load(a_b + i).to(tl.float64)
            a_j = tl.load(a_b + j).to(tl.float64)
            C_i = tl.load(C_b + i).to(tl.float64)
            C_j = tl.load(C_b + j).to(tl.float64)
            sign_i = tl.where(tl.load(p_b + i) != 0, 1.0, -1.0)  # a_i moves by y_i t
            sign_j = tl.where(pos_j, -1.0, 1.0)  # a_j moves by -y_j t
            room = tl.minimum(tl.where(sign_i > 0, C_i - a_i, a_i), tl.where(sign_j > 0, C_j - a_j, a_j))
            t = tl.where(stuck, 0.0, tl.maximum(tl.minimum(b_ij / a_ij, room), 0.0))
            new_i = tl.minimum(tl.maximum(a_i + sign_i * t, 0.0), C_i)
            new_j = tl.minimum(tl.maximum(a_j + sign_j * t, 0.0), C_j)
            K_j = K_b + j.to(tl.int64) * stride_kr
            # score = -y G drops by t (K_i - K_j); then the next i, m and M from the new state.
            bu_p = tl.full([BLOCK], -inf, tl.float64)
            iu_p = tl.full([BLOCK], 0, tl.int32)
            bl_p = tl.full([BLOCK], inf, tl.float64)
            bu_n, iu_n, bl_n = bu_p, iu_p, bl_p
            for c in range(0, N, BLOCK):
                o = c + offs
                ok, a, s, Cv, p, mv = _state(a_b, s_b, C_b, p_b, m_b, o, N, HAS_MOVABLE)
                # The sets and extremes are taken from the state as stored: with float32 state, a score
                # tracked unrounded would give i a b_i = m - s_i > 0 at the next pass, and i itself as j.
                a = tl.where(o == i, new_i, tl.where(o == j, new_j, a)).to(alpha_ptr.dtype.element_ty)
                tl.store(a_b + o, a, mask=ok & ((o == i) | (o == j)))
                a = a.to(tl.float64)
                Ki = tl.load(K_i + o, mask=ok, other=0.0).to(tl.float64)
                Kj = tl.load(K_j + o, mask=ok, other=0.0).to(tl.float64)
                s = (s - t * (Ki - Kj)).to(score_ptr.dtype.element_ty)
                tl.store(s_b + o, s, mask=ok)
                s = s.to(tl.float64)
                up, low = _sets(a, Cv, p, mv)
                bu_p, iu_p, bl_p, bu_n, iu_n, bl_n = _track_signs(bu_p, iu_p, bl_p, bu_n, iu_n, bl_n, s, o, up, low,
                                                                  p, NU)
            # The next pass reads what this one wrote (other threads' elements included).
            tl.debug_barrier()
            m_p, i_p, m_n, i_n, gap = _choose(bu_p, iu_p, bl_p, bu_n, iu_n, bl_n, NU)
            steps += 1
        tl.store(count_ptr + b, tl.load(count_ptr + b) + steps)
        tl.store(gap_ptr + b, gap.to(gap_ptr.dtype.element_ty))


def smo_steps_triton(
    K: Tensor,
    pos: Tensor,
    C: Tensor,
    alpha: Tensor,
    score: Tensor,
    tol: Tensor,
    max_steps: int,
    movable: Tensor | None,
    counts: Tensor,
    nu: bool = False,
) -> Tensor:
    """Run SMO on B problems in one launch, updating ``alpha``, ``score`` (= -y G) and ``counts`` in place
    (``nu``: LIBSVM's Solver_NU selection, as the torch step's).

    ``K`` is ``(N, N)`` shared or ``(B, N, N)``, last dimension contiguous; ``pos`` ``(B, N)`` bool
    (y > 0); ``tol`` ``(B,)``; ``alpha``, ``score``, ``C`` contiguous ``(B, N)``. Returns the final
    KKT violation ``(B,)``. Raises what :func:`backend_errors` lists where Triton cannot run.
    """
    B, N = alpha.shape
    if K.stride(-1) != 1:
        K = K.contiguous()
    stride_kb = 0 if K.ndim == 2 else K.stride(0)
    diag = K.diagonal(dim1=-2, dim2=-1).contiguous()  # (N,) or (B, N)
    stride_db = 0 if diag.ndim == 1 else diag.stride(0)
    gap = torch.empty(B, dtype=alpha.dtype, device=alpha.device)
    mov = movable.to(torch.uint8).contiguous() if movable is not None else pos  # unread without HAS_MOVABLE
    block = min(1024, triton.next_power_of_2(max(N, 16)))
    _smo_kernel[(B,)](
        K, C, alpha, score, pos.to(torch.uint8).contiguous(), mov, diag, tol, counts, gap,
        N, max_steps, stride_kb, K.stride(-2), stride_db,
        HAS_MOVABLE=movable is not None, NU=nu, BLOCK=block, TAU=TAU,
        num_warps=4 if block <= 256 else 8,
    )
    return gap


__all__ = ["backend_errors", "smo_steps_triton"]
