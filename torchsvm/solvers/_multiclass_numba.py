"""The Crammer-Singer solver's stages as compiled CPU code (numba): projected gradient, interior point,
the active-set system's factors and the polish.

The same iterations as :func:`torchsvm.solvers.multiclass._projected_gradient` (FISTA with adaptive
restart on the rescaled dual, exact row projections, the same stopping rules), as
:class:`torchsvm.solvers.multiclass._InteriorPoint` (Mehrotra's predictor-corrector, class-block
Cholesky factors and their Schur complement, the same ridge on a failed factor) and as
:func:`torchsvm.solvers.multiclass._polish_torch` (the KKT equations of an active set, the primal-dual
active-set rule between rounds), one problem per thread. The torch versions run a few-shot batch as
some 30-70 small operations a step, and on the CPU their dispatch, not their arithmetic, is the cost:
here a projected-gradient step of a 25 x 5 problem is some 4,000 floating-point operations and no
dispatch, an interior-point step a few 25 x 25 factors.
Each problem also stops on its own test (the torch versions step every problem until the batch's
slowest one stops).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

from torchsvm import _jit  # noqa: F401  (registers the first-build notice before a loop here compiles)
from torchsvm.solvers._multiclass_common import PIVOT_RATIO, RATE_BOUNDS, RIDGES

# Reassociation and contraction (no NaN / infinity assumptions: the pivot tests must see a NaN): lets the
# small factors' dot products and row updates vectorize.
_FAST = {"reassoc", "contract", "nsz", "arcp"}

__all__ = ["active_set_factors_cpu", "interior_point_cpu", "polish_cpu", "projected_gradient_cpu"]


@numba.njit(inline="always")
def _worse(worst, x):
    """max(worst, x), NaN kept (as torch's amax): a NaN violation must not read as converged."""
    return x if x > worst or x != x else worst


# The projected gradient runs on class-major arrays, (M, N) per problem (column a_m of A as a row): the gradient
# K a_m - e_m is then built from contiguous rows of K (K symmetric), which vectorizes; the sample-major layout's
# inner loop ran over the M classes (slower; docs/benchmarks.md, "The thresholds in the code").


@numba.njit(inline="always", fastmath=_FAST)
def _gradient_step(K, lin, Z, L, V, acc):
    """V = Z - (K Z - lin) / L, class by class (rows of the class-major arrays)."""
    M, N = Z.shape
    for m in range(M):
        for i in range(N):
            acc[i] = -lin[m, i]
        for j in range(N):
            z = Z[m, j]
            for i in range(N):
                acc[i] += z * K[j, i]
        for i in range(N):
            V[m, i] = Z[m, i] - acc[i] / L


@numba.njit(inline="always", fastmath=_FAST)
def _project_rows(V, U, out, tau):
    """Each sample's column of V (class-major) projected onto {a <= u, sum a = 0}: ``project_rows``'s
    breakpoint rule."""
    M, N = V.shape
    for i in range(N):
        n_capped, total = 0, 0.0
        for c in range(M):
            b = V[c, i] - U[c, i]
            phi = 0.0
            for m in range(M):
                phi += min(V[m, i] - b, U[m, i])
            if phi <= 0:
                n_capped += 1
                total += U[c, i]
            else:
                total += V[c, i]
        tau[i] = total / (M - n_capped)
        for m in range(M):
            out[m, i] = min(V[m, i] - tau[i], U[m, i])


@numba.njit(parallel=True, cache=True, fastmath=_FAST)
def _fista(K, lin, U, L, level, max_iter, check_every, A_all, active, steps, converged):
    B, M, N = lin.shape
    for b in numba.prange(B):
        Lb = max(L[b], 1e-300)
        A = A_all[b]  # the start, then the last iterate (in place)
        Z = A.copy()
        V, A_new, P = np.empty((M, N)), np.empty((M, N)), np.empty((M, N))
        tau, acc = np.empty(N), np.empty(N)
        k, gap_before, n_iter = 0, np.inf, 0
        for n_iter in range(1, max_iter + 1):
            _gradient_step(K[b], lin[b], Z, Lb, V, acc)
            _project_rows(V, U[b], A_new, tau)
            dot = 0.0
            for m in range(M):
                for i in range(N):
                    dot += (Z[m, i] - A_new[m, i]) * (A_new[m, i] - A[m, i])
            k = 1 if dot > 0 else k + 1  # adaptive restart: the momentum pointed uphill
            momentum = max((k - 1) / (k + 2), 0.0)
            for m in range(M):
                for i in range(N):
                    Z[m, i] = A_new[m, i] + momentum * (A_new[m, i] - A[m, i])
                    A[m, i] = A_new[m, i]
            if n_iter % check_every == 0:
                _gradient_step(K[b], lin[b], A, Lb, V, acc)
                _project_rows(V, U[b], P, tau)
                gap = 0.0
                for m in range(M):
                    for i in range(N):
                        gap = max(gap, abs(A[m, i] - P[m, i]))
                gap *= Lb
                if gap <= level:
                    converged[b] = True
                    break
                if n_iter > check_every:  # give up when this rate would not get there within max_iter
                    rate = min(max(gap / gap_before, RATE_BOUNDS[0]), RATE_BOUNDS[1])
                    if check_every * math.log(level / gap) / math.log(rate) > max_iter - n_iter:
                        break
                gap_before = gap
        _gradient_step(K[b], lin[b], A, Lb, V, acc)
        _project_rows(V, U[b], P, tau)
        for m in range(M):
            for i in range(N):
                active[b, i, m] = V[m, i] - tau[i] >= U[b, m, i]
        steps[b] = n_iter


def projected_gradient_cpu(Ks: Tensor, lin: Tensor, Us: Tensor, L: Tensor, level: float, max_iter: int,
                           check_every: int = 10, start: Tensor | None = None) -> tuple[Tensor, int, Tensor, Tensor]:
    """:func:`torchsvm.solvers.multiclass._projected_gradient` for float64 CPU tensors, compiled."""
    B, N, M = lin.shape
    active = np.empty((B, N, M), dtype=np.bool_)
    steps = np.zeros(B, dtype=np.int64)
    converged = np.zeros(B, dtype=np.bool_)
    K_np, L_np = (np.ascontiguousarray(T.detach().numpy()) for T in (Ks, L))
    lin_np, U_np = (np.ascontiguousarray(T.detach().mT.numpy()) for T in (lin, Us))  # class-major
    A = np.zeros((B, M, N)) if start is None else np.array(start.detach().mT.numpy(), order="C")  # a copy
    _fista(K_np, lin_np, U_np, L_np, float(level), int(max_iter), int(check_every), A, active, steps, converged)
    return torch.from_numpy(active), int(steps.max()) if B else 0, torch.from_numpy(converged), torch.from_numpy(A).mT


# -- the interior-point stage ----------------------------------------------------------------------


@numba.njit(cache=True, fastmath=_FAST)
def _cholesky(H, L):
    """L L^T = H (lower, in L); False if a pivot is not positive."""
    n = H.shape[0]
    for j in range(n):
        d = H[j, j]
        for k in range(j):
            d -= L[j, k] * L[j, k]
        if not d > 0:
            return False
        L[j, j] = math.sqrt(d)
        for i in range(j + 1, n):
            v = H[i, j]
            for k in range(j):
                v -= L[i, k] * L[j, k]
            L[i, j] = v / L[j, j]
        for i in range(j):
            L[i, j] = 0.0
    return True


@numba.njit(cache=True)
def _factor(H, L):
    """:meth:`_InteriorPoint._factor` for one matrix: a failed factor gets a small ridge."""
    if _cholesky(H, L):
        return
    n = H.shape[0]
    for ridge in RIDGES:
        Hr = H.copy()
        for i in range(n):
            Hr[i, i] += ridge
        if _cholesky(Hr, L):
            return


@numba.njit(cache=True, fastmath=_FAST)
def _cholesky_solve(L, b, x):
    """x = (L L^T)^-1 b (b and x may be the same array). Both halves run along L's rows: the forward one as
    dot products, the backward one as updates x[:i] -= L[i, :i] x_i."""
    n = L.shape[0]
    for i in range(n):
        v = b[i]
        for k in range(i):
            v -= L[i, k] * x[k]
        x[i] = v / L[i, i]
    for i in range(n - 1, -1, -1):
        xi = x[i] / L[i, i]
        x[i] = xi
        for k in range(i):
            x[k] -= L[i, k] * xi


@numba.njit(cache=True, fastmath=_FAST)
def _add_inverse(L, W, total):
    """total += (L L^T)^-1 = W^T W with W = L^-1 (a triangular inverse and a product: a fraction of the work
    of N solves). Every inner loop runs along contiguous rows; row i of W is accumulated apart from W (its
    source rows) and the product runs over whole rows (W's zeros included): both vectorize."""
    n = L.shape[0]
    acc = np.empty(n)
    for i in range(n):  # row i of W: (e_i - sum_{k < i} L_ik W_k) / L_ii
        acc[:] = 0.0
        acc[i] = 1.0
        for k in range(i):
            c = L[i, k]
            for j in range(k + 1):
                acc[j] -= c * W[k, j]
        d = 1.0 / L[i, i]
        for j in range(n):
            W[i, j] = acc[j] * d
    for m in range(n):  # sum_m W_m^T W_m, row m of W zero past m
        for i in range(m + 1):
            c = W[m, i]
            for k in range(n):
                total[i, k] += c * W[m, k]


@numba.njit(cache=True)
def _direction(Ls, Lm, Rd, Rc, Re, Rp, S, Z, dA, db, dS, dZ, r):
    """:meth:`_InteriorPoint._step`'s direction for one problem: da from H_m da_m = r_m - dbeta and
    sum_m da_m = -Re; then ds = -Rp - da, dz = (-Rc - z ds) / s."""
    N, M = S.shape
    col = np.empty(N)
    for i in range(N):
        db[i] = Re[i]
    for m in range(M):
        for i in range(N):
            r[m, i] = -Rd[i, m] + (Rc[i, m] - Z[i, m] * Rp[i, m]) / S[i, m]
        _cholesky_solve(Lm[m], r[m], col)
        for i in range(N):
            db[i] += col[i]
    _cholesky_solve(Ls, db, db)
    for m in range(M):
        for i in range(N):
            col[i] = r[m, i] - db[i]
        _cholesky_solve(Lm[m], col, col)
        for i in range(N):
            dA[i, m] = col[i]
            dS[i, m] = -Rp[i, m] - col[i]
            dZ[i, m] = (-Rc[i, m] - Z[i, m] * dS[i, m]) / S[i, m]


@numba.njit(cache=True)
def _longest(S, Z, dS, dZ):
    """The largest step in [0, 1] keeping s, z >= 0."""
    t = 1.0
    N, M = S.shape
    for i in range(N):
        for m in range(M):
            if dS[i, m] < 0:
                t = min(t, -S[i, m] / dS[i, m])
            if dZ[i, m] < 0:
                t = min(t, -Z[i, m] / dZ[i, m])
    return t


@numba.njit(cache=True, fastmath=_FAST)
def _residual(K, lin, U, A, S, Z, beta, Rd):
    """:meth:`_InteriorPoint.residual` of one problem; fills the stationarity residual Rd."""
    N, M = A.shape
    worst = 0.0
    for i in range(N):
        for m in range(M):
            Rd[i, m] = beta[i] + Z[i, m] - lin[i, m]
        for j in range(N):  # + (K A)_i, along A's rows
            k = K[i, j]
            for m in range(M):
                Rd[i, m] += k * A[j, m]
        total = 0.0
        for m in range(M):
            total += A[i, m]
            worst = _worse(worst, abs(Rd[i, m]))
            worst = _worse(worst, abs(A[i, m] + S[i, m] - U[i, m]))
            worst = _worse(worst, S[i, m] * Z[i, m])
        worst = _worse(worst, abs(total))
    return worst


@numba.njit(parallel=True, cache=True)
def _interior_point(K, lin, U, A, S, Z, beta, level, max_iter, patience, steps):
    B, N, M = lin.shape
    for b in numba.prange(B):
        Kb, A_b, S_b, Z_b, beta_b = K[b], A[b], S[b], Z[b], beta[b]
        Rd, Rp, Rc = np.empty((N, M)), np.empty((N, M)), np.empty((N, M))
        Re, db = np.empty(N), np.empty(N)
        dA, dS, dZ = np.empty((N, M)), np.empty((N, M)), np.empty((N, M))
        H, Ssum, Ls = np.empty((N, N)), np.empty((N, N)), np.empty((N, N))
        Lm, r, W = np.empty((M, N, N)), np.empty((M, N)), np.empty((N, N))
        best, since = np.inf, 0
        while steps[b] < max_iter:
            worst = _residual(Kb, lin[b], U[b], A_b, S_b, Z_b, beta_b, Rd)
            if worst <= level or since >= patience:
                break
            if worst <= best / 2:
                best, since = worst, 0
            else:
                since += 1
            steps[b] += 1
            mu = 0.0
            for i in range(N):
                Re[i] = 0.0
                for m in range(M):
                    Re[i] += A_b[i, m]
                    Rp[i, m] = A_b[i, m] + S_b[i, m] - U[b, i, m]
                    mu += S_b[i, m] * Z_b[i, m]
            mu /= N * M
            # H_m = K + diag(z_m / s_m), and the Schur complement sum_m H_m^-1
            Ssum[:] = 0.0
            for m in range(M):
                H[:] = Kb
                for i in range(N):
                    H[i, i] += Z_b[i, m] / S_b[i, m]
                _factor(H, Lm[m])
                _add_inverse(Lm[m], W, Ssum)
            _factor(Ssum, Ls)
            # predictor (affine scaling), then Mehrotra's centring corrector
            for i in range(N):
                for m in range(M):
                    Rc[i, m] = S_b[i, m] * Z_b[i, m]
            _direction(Ls, Lm, Rd, Rc, Re, Rp, S_b, Z_b, dA, db, dS, dZ, r)
            t = _longest(S_b, Z_b, dS, dZ)
            centred = 0.0
            for i in range(N):
                for m in range(M):
                    centred += (S_b[i, m] + t * dS[i, m]) * (Z_b[i, m] + t * dZ[i, m])
            sigma = (centred / (N * M) / mu) ** 3
            for i in range(N):
                for m in range(M):
                    Rc[i, m] = S_b[i, m] * Z_b[i, m] + dS[i, m] * dZ[i, m] - sigma * mu
            _direction(Ls, Lm, Rd, Rc, Re, Rp, S_b, Z_b, dA, db, dS, dZ, r)
            t = 0.99 * _longest(S_b, Z_b, dS, dZ)
            for i in range(N):
                for m in range(M):
                    A_b[i, m] += t * dA[i, m]
                    S_b[i, m] += t * dS[i, m]
                    Z_b[i, m] += t * dZ[i, m]
                beta_b[i] += t * db[i]


def interior_point_cpu(Ks: Tensor, lin: Tensor, Us: Tensor, A: Tensor, S: Tensor, Z: Tensor, beta: Tensor,
                       steps: Tensor, level: float, max_iter: int, patience: int) -> None:
    """:meth:`torchsvm.solvers.multiclass._InteriorPoint.run` for float64 CPU tensors, compiled: the state
    (``A``, ``S``, ``Z``, ``beta``; contiguous) and the steps taken per problem ``steps`` updated in place.
    Each problem stops on its own residual (the torch version steps the batch until its worst one stops)."""
    K_np, lin_np, U_np = (np.ascontiguousarray(T.detach().numpy()) for T in (Ks, lin, Us))
    _interior_point(K_np, lin_np, U_np, A.numpy(), S.numpy(), Z.numpy(), beta.numpy(), float(level),
                    int(max_iter), int(patience), steps.numpy())


# -- the active-set system's factors ----------------------------------------------------------------


@numba.njit(cache=True)
def _well_conditioned(L):
    """The pivots within 1 / PIVOT_RATIO of each other (the torch stages' ``_well_conditioned``)."""
    lo, hi = np.inf, 0.0
    for i in range(L.shape[0]):
        d = abs(L[i, i])
        lo, hi = min(lo, d), max(hi, d)
    return lo > PIVOT_RATIO * hi


@numba.njit(cache=True)
def _identity(L):
    L[:] = 0.0
    for i in range(L.shape[0]):
        L[i, i] = 1.0


@numba.njit(cache=True)
def _factors(K, f, L, Ls, H, W, Sm, Ssum):
    """One problem's class-block factors ``L`` ``(M, N, N)`` and Schur complement factor ``Ls`` for the free
    flags ``f`` ``(M, N)``; False where one failed (a placeholder identity then) or is ill-conditioned."""
    M, N = f.shape
    good = True
    Ssum[:] = 0.0
    for m in range(M):
        fm = f[m]
        for i in range(N):
            for j in range(N):
                H[i, j] = K[i, j] * fm[i] * fm[j]
            H[i, i] += 1.0 - fm[i]
        if _cholesky(H, L[m]):
            good = good and _well_conditioned(L[m])
        else:  # a placeholder; the problem is solved by the compact system
            _identity(L[m])
            good = False
        Sm[:] = 0.0
        _add_inverse(L[m], W, Sm)
        for i in range(N):
            for j in range(N):
                Ssum[i, j] += fm[i] * Sm[i, j] * fm[j]
    if _cholesky(Ssum, Ls):
        good = good and _well_conditioned(Ls)
    else:
        _identity(Ls)
        good = False
    return good


@numba.njit(parallel=True, cache=True)
def _active_set_factors(K, free, L, Ls, ok):
    B, M, N = free.shape
    for b in numba.prange(B):
        H, W, Sm, Ssum = np.empty((N, N)), np.empty((N, N)), np.empty((N, N)), np.empty((N, N))
        ok[b] = _factors(K[b], free[b], L[b], Ls[b], H, W, Sm, Ssum)


def active_set_factors_cpu(K: Tensor, free: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """:class:`torchsvm.solvers.multiclass.ActiveSetSystem`'s factors for float64 CPU tensors, compiled:
    ``K`` ``(B, N, N)``, ``free`` ``(B, M, N)`` (1.0 where free). Returns ``(L, Ls, ok)``: the class blocks'
    Cholesky factors ``(B, M, N, N)``, the Schur complement's ``(B, N, N)`` (identity where a factor
    failed) and whether each problem's are usable ``(B,)``."""
    B, M, N = free.shape
    L, Ls, ok = np.empty((B, M, N, N)), np.empty((B, N, N)), np.empty(B, dtype=np.bool_)
    _active_set_factors(np.ascontiguousarray(K.detach().numpy()), np.ascontiguousarray(free.numpy()), L, Ls, ok)
    return torch.from_numpy(L), torch.from_numpy(Ls), torch.from_numpy(ok)



# -- the polish: the KKT equations of an active set, re-partitioned while violated --------------------


@numba.njit(cache=True)
def _solve_active_set(K, onehot, U, act, f, L, Ls, A, beta, R, col):
    """:func:`torchsvm.solvers.multiclass._solve_active_set` on one problem's factors (``f``, ``L``, ``Ls``):
    A (the bound variables at u) and beta, through :meth:`ActiveSetSystem.solve`'s three block solves."""
    N, M = U.shape
    for i in range(N):  # R = onehot - K U_A; beta first holds sum_m U_A (the equalities' -s)
        bound = 0.0
        for m in range(M):
            R[i, m] = onehot[i, m]
            if act[i, m]:
                bound += U[i, m]
        beta[i] = bound
    for j in range(N):
        for m in range(M):
            if act[j, m]:
                u = U[j, m]
                for i in range(N):
                    R[i, m] -= K[j, i] * u  # K symmetric: its row j, contiguous
    for m in range(M):
        for i in range(N):
            col[i] = R[i, m] * f[m, i]
        _cholesky_solve(L[m], col, col)
        for i in range(N):
            beta[i] += f[m, i] * col[i]
    _cholesky_solve(Ls, beta, beta)
    for m in range(M):
        for i in range(N):
            col[i] = f[m, i] * (R[i, m] - beta[i])
        _cholesky_solve(L[m], col, col)
        for i in range(N):
            A[i, m] = U[i, m] if act[i, m] else col[i] * f[m, i]


@numba.njit(cache=True)
def _kkt(K, onehot, U, A, beta, act, mu):
    """:func:`torchsvm.solvers.multiclass._kkt` of one problem; fills the multipliers mu = onehot - K A - beta."""
    N, M = A.shape
    worst = 0.0
    for i in range(N):
        total = 0.0
        for m in range(M):
            v = onehot[i, m] - beta[i]
            for j in range(N):
                v -= K[i, j] * A[j, m]
            mu[i, m] = v
            total += A[i, m]
            worst = _worse(worst, A[i, m] - U[i, m])
            worst = _worse(worst, -v if act[i, m] else abs(v))
        worst = _worse(worst, abs(total))
    return worst


@numba.njit(parallel=True, cache=True)
def _polish(K, onehot, U, act, tol, rounds, A, beta, viol, f, L, Ls, factored):
    B, N, M = U.shape
    for b in numba.prange(B):
        H, W, Sm, Ssum = np.empty((N, N)), np.empty((N, N)), np.empty((N, N)), np.empty((N, N))
        R, mu, col = np.empty((N, M)), np.empty((N, M)), np.empty(N)
        for r in range(rounds):
            if r > 0:  # primal-dual active-set rule, as the torch polish
                for i in range(N):
                    for m in range(M):
                        act[b, i, m] = (act[b, i, m] and mu[i, m] >= -tol) or (
                            not act[b, i, m] and A[b, i, m] > U[b, i, m] + tol)
            for m in range(M):
                for i in range(N):
                    f[b, m, i] = 0.0 if act[b, i, m] else 1.0
            if not _factors(K[b], f[b], L[b], Ls[b], H, W, Sm, Ssum):
                factored[b] = False  # the compact system's case: the caller solves this problem in torch
                break
            _solve_active_set(K[b], onehot[b], U[b], act[b], f[b], L[b], Ls[b], A[b], beta[b], R, col)
            viol[b] = _kkt(K[b], onehot[b], U[b], A[b], beta[b], act[b], mu)
            if not viol[b] > tol:
                break


def polish_cpu(K: Tensor, onehot: Tensor, U: Tensor, active: Tensor, tol: float, rounds: int) -> tuple[Tensor, ...]:
    """:func:`torchsvm.solvers.multiclass._polish` for float64 CPU tensors, compiled, each problem on its own
    rounds. Returns ``(A, beta, active, violation, free, L, Ls, factored)``: the solution, the final active
    sets, and their :class:`ActiveSetSystem` factors (``free`` ``(B, M, N)``); ``factored`` is False for the
    problems a factor failed on (a singular or ill-conditioned block: the compact system's case), whose other
    outputs are placeholders to be replaced."""
    B, N, M = U.shape
    A, beta, viol = np.zeros((B, N, M)), np.zeros((B, N)), np.full(B, np.nan)
    f, L, Ls = np.zeros((B, M, N)), np.zeros((B, M, N, N)), np.zeros((B, N, N))
    act, factored = active.numpy().copy(), np.ones(B, dtype=np.bool_)
    K_np, onehot_np, U_np = (np.ascontiguousarray(T.detach().numpy()) for T in (K, onehot, U))
    _polish(K_np, onehot_np, U_np, act, float(tol), int(rounds), A, beta, viol, f, L, Ls, factored)
    return tuple(torch.from_numpy(x) for x in (A, beta, act, viol, f, L, Ls, factored))
