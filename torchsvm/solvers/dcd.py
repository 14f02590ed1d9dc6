"""Dual coordinate descent for linear SVMs with a penalized bias: LIBLINEAR's solver, compiled (numba).

For each of K one-vs-rest problems, with x~_i = [x_i, B] (B the intercept scaling) and w~ = [w, b / B]:

    minimize_w~  1/2 ||w~||^2 + sum_i C_i L(o_i - y_i w~ . x~_i)       (L(z) = max(0, z), or its square)
    dual:        minimize_a  1/2 a^T (Q + D) a - o^T a,  0 <= a_i <= U_i,   Q_ij = y_i y_j x~_i . x~_j

with U_i = C_i, D = 0 (hinge) or U_i = inf, D_ii = 1 / (2 C_i) (squared hinge), and the margins
o_i = 1 (the SVM; other values: epsilon-insensitive regression on two copies of each sample, see
:class:`torchsvm.LinearSVR`): no equality constraint, because the bias is a feature and is
penalized (B = 0: no bias). Each coordinate step is O(D): with
w~ = sum_i a_i y_i x~_i kept up to date, G_i = y_i w~ . x~_i - o_i + D_ii a_i and
a_i <- clip(a_i - G_i / (Q_ii + D_ii), 0, U_i) (Hsieh, Chang, Lin, Keerthi, Sundararajan 2008,
with LIBLINEAR's shrinking and random order). It stops on the same certificate as
:func:`torchsvm.solvers.primal.primal_newton`: the relative duality gap (P(w~) - D(a)) / P(w~) <= tol,
checked once the projected gradients' spread falls below LIBLINEAR's threshold (tightened while
the gap is not yet within tol) and every ``check_every`` sweeps. X is read as compressed sparse
rows, so a step costs the row's nonzeros (LIBLINEAR's sparse rows). Problems run in a thread pool (the
compiled loop releases the GIL), a free thread taking the next problem.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from torchsvm import _jit  # noqa: F401  (registers the first-build notice before a loop here compiles)
from torchsvm._sparse import Matrix, SparseRows
from torchsvm._threads import run_problems
from torchsvm.solvers.primal import PrimalResult, SolverInfo

__all__ = ["compressed", "dual_coordinate_descent"]



@numba.njit(inline="always")
def _next(state):
    """xorshift64: a per-problem random stream (deterministic whatever thread runs the problem)."""
    state ^= (state << np.uint64(13)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    state ^= state >> np.uint64(7)
    state ^= (state << np.uint64(17)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    return state

@numba.njit(inline="always")
def shuffle_active(index, active, state):
    """A random order of ``index[:active]`` (Fisher-Yates on the problem's stream); the new state."""
    for s in range(active - 1):
        state = _next(state)
        r = s + int(state % np.uint64(active - s))
        index[s], index[r] = index[r], index[s]
    return state

@numba.njit(inline="always")
def row_margin(ptr, idx, val, i, w, B):
    """w~ . x~_i over the nonzeros of row i (CSR: images are mostly zeros, as LIBLINEAR's sparse rows).

    Two partial sums: the additions of one chain wait on each other, two chains overlap.
    """
    s0, s1 = w[w.shape[0] - 1] * B, 0.0
    t, end = ptr[i], ptr[i + 1]
    while t + 1 < end:
        s0 += w[idx[t]] * val[t]
        s1 += w[idx[t + 1]] * val[t + 1]
        t += 2
    if t < end:
        s0 += w[idx[t]] * val[t]
    return s0 + s1

@numba.njit(inline="always")
def add_row(ptr, idx, val, i, scale, B, w):
    """w~ += scale * x~_i over the nonzeros of row i (and the bias feature B, w~'s last entry)."""
    for t in range(ptr[i], ptr[i + 1]):
        w[idx[t]] += scale * val[t]
    w[w.shape[0] - 1] += scale * B

@numba.njit
def row_norms_sq(ptr, val, B):
    """||x~_i||^2 of every CSR row with its constant feature B (float32 values squared in float64)."""
    N = ptr.shape[0] - 1
    sq = np.empty(N)
    for i in range(N):
        s = B * B
        for t in range(ptr[i], ptr[i + 1]):
            v = np.float64(val[t])
            s += v * v
        sq[i] = s
    return sq

@numba.njit
def dual_diagonal(ptr, idx, val, B, C, squared):
    """Per row of the dual: ``(Q_ii + D_ii, U_i, D_ii)`` with Q_ii = ||x~_i||^2, and U_i = C_i, D_ii = 0 (the
    hinge's L1 loss) or U_i = inf, D_ii = 1 / (2 C_i) (its square)."""
    QD = row_norms_sq(ptr, val, B)
    N = QD.shape[0]
    U = np.empty(N)
    Dii = np.empty(N)
    for i in range(N):
        Dii[i] = 0.5 / C[i] if squared else 0.0
        U[i] = np.inf if squared else C[i]
        QD[i] += Dii[i]
    return QD, U, Dii

@numba.njit(inline="always")
def stalled(history, gap, sweep, window, max_sweeps, tol):
    """The hand-over rule at a gap check: whether the gap, falling at its recent rate, would not reach ``tol``
    within ``max_sweeps``. The rate is the smallest gap's since an anchor set at between an eighth and a half of
    the sweeps so far (the early sweeps are faster; the gap at an iterate is not monotone), judged over at least
    ``window`` sweeps. ``history`` (5,): the anchor's sweep and smallest gap, the next anchor's, the smallest gap
    so far; initially :func:`new_history`, updated in place."""
    best = min(history[4], gap)
    history[4] = best
    if history[0] < 0:
        history[0], history[1], history[2], history[3] = sweep, best, sweep, best
        return False
    if history[2] <= sweep / 2:  # the next anchor is now at least half the sweeps back
        history[0], history[1], history[2], history[3] = history[2], history[3], sweep, best
    if sweep - history[0] < window:
        return False
    rate = np.log(history[1] / best) / (sweep - history[0])  # per sweep
    return rate <= 0.0 or sweep + np.log(best / max(tol, 1e-300)) / rate > max_sweeps

@numba.njit(inline="always")
def new_history():
    """The state of :func:`stalled` before the first check."""
    return np.array([-1.0, np.inf, -1.0, np.inf, np.inf])

@numba.njit(inline="always")
def soft_newton_step(Gp, Gn, H, x):
    """The exact minimizer d of G d + H d^2 / 2 + p (|x + d| - |x|) given Gp = G + p and Gn = G - p: a Newton step
    on the side of 0 that x + d ends on, or d = -x where neither side's step stays on its side."""
    if Gp < H * x:
        return -Gp / H
    if Gn > H * x:
        return -Gn / H
    return -x

@numba.njit
def _gap(ptr, idx, val, y, C, o, a, w, B, squared):
    """Relative duality gap (P - D) / P of the problem at w~ (kept equal to sum a y x~) and a."""
    N = y.shape[0]
    ww = 0.0
    for d in range(w.shape[0]):
        ww += w[d] * w[d]
    loss, dual = 0.0, 0.0
    for i in range(N):
        xi = max(0.0, o[i] - y[i] * row_margin(ptr, idx, val, i, w, B))
        if squared:
            loss += C[i] * xi * xi
            dual += a[i] * o[i] - a[i] * a[i] / (4.0 * C[i])
        else:
            loss += C[i] * xi
            dual += a[i] * o[i]
    primal = 0.5 * ww + loss
    return (primal - (dual - 0.5 * ww)) / max(abs(primal), 1e-30), primal

@numba.njit(nogil=True, cache=True)
def _dcd_problem(ptr, idx, val, y, Ck, o, a, w, B, tol, max_sweeps, check_every, squared, seed, hand_over):
    """One problem to its certified gap or max_sweeps: ``(gap, objective, sweeps)``; a and w updated in place.
    With ``hand_over`` it also stops where the gap would not reach tol within max_sweeps (:func:`stalled`)."""
    N = y.shape[0]
    QD, U, Dii = dual_diagonal(ptr, idx, val, B, Ck, squared)
    index = np.arange(N)
    active = N
    pg_max_old, pg_min_old = np.inf, -np.inf
    pg_eps = 0.1  # LIBLINEAR's default for its dual solvers
    state = np.uint64(seed)
    gap, objective = np.inf, np.inf
    sweep, next_check = 0, check_every
    history = new_history()
    while sweep < max_sweeps:
        sweep += 1
        state = shuffle_active(index, active, state)  # random order of the active variables
        pg_max, pg_min = -np.inf, np.inf
        s = 0
        while s < active:
            i = index[s]
            G = y[i] * row_margin(ptr, idx, val, i, w, B) - o[i] + Dii[i] * a[i]
            PG = 0.0
            if a[i] == 0.0:
                if G > pg_max_old:  # at its bound and likely to stay: shrink
                    active -= 1
                    index[s], index[active] = index[active], index[s]
                    continue
                if G < 0.0:
                    PG = G
            elif a[i] == U[i]:
                if G < pg_min_old:
                    active -= 1
                    index[s], index[active] = index[active], index[s]
                    continue
                if G > 0.0:
                    PG = G
            else:
                PG = G
            pg_max, pg_min = max(pg_max, PG), min(pg_min, PG)
            if abs(PG) > 1e-12:
                old = a[i]
                a[i] = min(max(a[i] - G / QD[i], 0.0), U[i])
                add_row(ptr, idx, val, i, (a[i] - old) * y[i], B, w)
            s += 1
        # LIBLINEAR stops when the projected gradients' spread is <= eps; here that only
        # triggers the certificate, and eps tightens until the certified gap is within tol.
        settled = pg_max - pg_min <= pg_eps
        if settled or sweep == next_check:
            next_check = sweep + check_every
            gap, objective = _gap(ptr, idx, val, y, Ck, o, a, w, B, squared)
            if gap <= tol:
                break
            if hand_over and stalled(history, gap, sweep, check_every, max_sweeps, tol):
                break
            if settled and active < N:  # shrunk variables may have moved off their bounds: unshrink
                active = N
                pg_max_old, pg_min_old = np.inf, -np.inf
                continue
            if settled:
                pg_eps *= 0.1
        pg_max_old = pg_max if pg_max > 0 else np.inf
        pg_min_old = pg_min if pg_min < 0 else -np.inf
    if gap > tol:
        gap, objective = _gap(ptr, idx, val, y, Ck, o, a, w, B, squared)
    return gap, objective, sweep


def compressed(X: Matrix, columns: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X (dense or :class:`~torchsvm._sparse.SparseRows`) as compressed rows (or ``columns``):
    ``(pointers int64, indices uint32, values)`` on the CPU, float32 values kept as they are (a smaller
    copy to stream through), anything else as float64. Unsigned indices: numba checks signed ones for
    negative (wrap-around) values at every read."""
    values_dtype = torch.float32 if X.dtype == torch.float32 else torch.float64
    if isinstance(X, SparseRows):
        m = X.to("cpu", values_dtype).scipy()
        m = m.tocsc() if columns else m
        m.sort_indices()
        return m.indptr.astype(np.int64), m.indices.astype(np.uint32), np.ascontiguousarray(m.data)
    dense = X.detach().to("cpu", values_dtype).numpy()
    dense = dense.T if columns else dense
    # The nonzeros in NumPy, row-major (scipy's constructor costs more than the work on a small X).
    rows, cols = np.nonzero(dense)
    pointers = np.zeros(dense.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=dense.shape[0]), out=pointers[1:])
    return pointers, cols.astype(np.uint32), np.ascontiguousarray(dense[rows, cols])


def dual_coordinate_descent(
    X: Matrix, Y: Tensor, C: Tensor, loss: str = "hinge", tol: float = 1e-3, max_iter: int = 1000,
    intercept_scaling: float = 1.0, check_every: int = 50, seed: int = 0, offset: Tensor | None = None,
    hand_over: bool = False,
) -> PrimalResult:
    """K linear SVMs with a penalized bias by dual coordinate descent (see the module docstring), on the CPU.

    Args:
        X: ``(N, D)`` CPU tensor; float32 values are read as they are (a smaller copy to stream
            through), every product and sum is float64; other dtypes are read as float64.
        Y: ``(N, K)`` labels in {-1, +1}; C: ``(N, K)`` positive costs.
        loss: ``"hinge"`` or ``"squared_hinge"``.
        tol: relative duality gap at which a problem stops.
        max_iter: sweeps over the data per problem.
        intercept_scaling: B, the value of the bias feature (the bias is b = B w~_D, penalized as
            1/2 w~_D^2: scikit-learn's ``LinearSVC`` and LIBLINEAR's ``-B``); 0: no bias.
        check_every: sweeps between certified-gap checks at the latest.
        seed: of the coordinate order.
        offset: ``(N, K)`` margins o each sample must reach (default 1).
        hand_over: stop a problem early where its gap, at the rate it has fallen, would not reach ``tol``
            within ``max_iter`` sweeps (coordinate descent's slow regime, where a Newton method finishes faster).

    Returns:
        ``PrimalResult(w (D, K), b (K,), info)``; ``info.n_iter`` is the most sweeps any problem took,
        ``info.gap`` the largest relative duality gap, ``info.objective`` ``(K,)`` the primal objectives.

    Raises:
        ValueError: an unknown loss, or intercept_scaling < 0.
    """
    if loss not in ("hinge", "squared_hinge"):
        raise ValueError(f"Expected loss to be 'hinge' or 'squared_hinge' for dual coordinate descent, got {loss!r}")
    if not intercept_scaling >= 0:
        raise ValueError(f"Expected intercept_scaling >= 0 (0: no bias), got {intercept_scaling!r}")
    ptr, idx, val = compressed(X)
    Yn = Y.detach().to("cpu", torch.float64).T.contiguous().numpy()  # (K, N): each problem's rows contiguous
    Cn = C.detach().to("cpu", torch.float64).T.contiguous().numpy()
    On = np.ones_like(Yn) if offset is None else offset.detach().to("cpu", torch.float64).T.contiguous().numpy()
    K, N = Yn.shape
    alpha = np.zeros((K, N))
    W = np.zeros((K, X.shape[1] + 1))

    def solve(k: int) -> tuple[float, float, int]:  # the kernel releases the GIL: threads run problems at once
        return _dcd_problem(ptr, idx, val, Yn[k], Cn[k], On[k], alpha[k], W[k], float(intercept_scaling), float(tol),
                            int(max_iter), int(check_every), loss == "squared_hinge", int(seed) + 1 + k, bool(hand_over))

    gaps, objectives, sweeps = (np.array(column) for column in zip(*run_problems(solve, K), strict=True))
    w = torch.from_numpy(W[:, :-1].T.copy()).to(X.dtype)
    b = torch.from_numpy(W[:, -1] * intercept_scaling).to(X.dtype)
    gap = float(gaps.max())
    info = SolverInfo(bool(gap <= tol), int(sweeps.max()), gap, torch.from_numpy(objectives).to(X.dtype),
                      torch.from_numpy(gaps))
    return PrimalResult(w, b, info)
