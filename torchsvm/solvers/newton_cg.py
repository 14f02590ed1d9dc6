"""The squared hinge's primal Newton method with conjugate gradients on compressed rows, compiled (numba).

LIBLINEAR's problem, as :mod:`torchsvm.solvers.dcd` states it (x~_i = [x_i, B], w~ = [w, b / B]):

    minimize_w~  f(w~) = 1/2 ||w~||^2 + sum_i C_i max(0, o_i - y_i w~ . x~_i)^2.

With I the rows of positive loss and r_i = o_i - y_i w~ . x~_i their residuals, the gradient and the
generalized Hessian are

    g = w~ - 2 sum_{i in I} C_i r_i y_i x~_i,       H = I + 2 X~_I^T diag(C_I) X~_I,

and each step solves H d = -g by conjugate gradients preconditioned by H's diagonal (two passes over
the rows of I per iteration, never forming H: LIBLINEAR's trust-region Newton method does the same,
Hsieh et al. 2018 for the preconditioner) to ||residual|| <= 0.1 ||g||, then moves by the exact
minimizer of f along d (a piecewise quadratic; the compiled Newton method's line search). This is
what scikit-learn runs for the squared hinge where it has more rows than features (``dual="auto"``):
a few Newton steps where coordinate descent needs hundreds of sweeps when C ||x||^2 is large.

It stops on the relative duality gap (P - D) / P <= tol, coordinate descent's certificate: the dual
point alpha_i = 2 C_i max(0, r_i) is the one the optimality conditions pair with w~, and its v =
sum alpha_i y_i x~_i is what the gradient's pass sums anyway (g = w~ - v). Problems run over torch's
threads (the loops release the GIL).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from torchsvm import _jit  # noqa: F401  (registers the first-build notice before a loop here compiles)
from torchsvm._sparse import Matrix
from torchsvm._threads import run_problems
from torchsvm.solvers._primal_numba import _line_search
from torchsvm.solvers.dcd import add_row, compressed, row_margin
from torchsvm.solvers.primal import PrimalResult, SolverInfo

__all__ = ["newton_cg_squared_hinge"]

_CG_TOL = 0.1  # LIBLINEAR's trust-region Newton method's: each direction to ||residual|| <= 0.1 ||g||


@numba.njit
def _gradient_and_gap(ptr, idx, val, y, C, o, r, w, B, rows, g):
    """g = w~ - v with v = sum alpha_i y_i x~_i, alpha_i = 2 C_i max(0, r_i); the rows of positive loss written to
    ``rows``. Returns ``(count of those rows, ||g||, relative duality gap, primal objective)``."""
    n = 0
    g[:] = 0.0
    loss, ao, aa = 0.0, 0.0, 0.0
    for i in range(y.shape[0]):
        if r[i] > 0.0:
            rows[n] = i
            n += 1
            alpha = 2.0 * C[i] * r[i]
            add_row(ptr, idx, val, i, alpha * y[i], B, g)  # g holds v for now
            loss += C[i] * r[i] * r[i]
            ao += alpha * o[i]
            if C[i] > 0.0:  # alpha_i = 0 with C_i
                aa += alpha * alpha / (4.0 * C[i])
    ww, vv, norm = 0.0, 0.0, 0.0
    for d in range(w.shape[0]):
        ww += w[d] * w[d]
        vv += g[d] * g[d]
        g[d] = w[d] - g[d]
        norm += g[d] * g[d]
    primal = 0.5 * ww + loss
    dual = ao - aa - 0.5 * vv
    return n, np.sqrt(norm), (primal - dual) / max(abs(primal), 1e-30), primal


@numba.njit
def _gather(ptr, idx, val, C, rows, n, B):
    """Z: the rows ``rows[:n]`` as their own compressed rows, each scaled by sqrt(2 C_i) and ending in the bias
    feature B (H = I + Z^T Z): a contiguous copy that conjugate gradients stream through twice per iteration (on
    rows scattered through X each pass cost twice as much)."""
    nnz = 0
    for j in range(n):
        i = rows[j]
        nnz += ptr[i + 1] - ptr[i] + 1
    sptr = np.empty(n + 1, np.int64)
    sidx = np.empty(nnz, idx.dtype)
    sval = np.empty(nnz)
    t = 0
    sptr[0] = 0
    for j in range(n):
        i = rows[j]
        root = np.sqrt(2.0 * C[i])
        for u in range(ptr[i], ptr[i + 1]):
            sidx[t] = idx[u]
            sval[t] = root * val[u]
            t += 1
        sidx[t] = 0  # the bias feature: each row's last entry (its column is known to the product)
        sval[t] = root * B
        t += 1
        sptr[j + 1] = t
    return sptr, sidx, sval


@numba.njit
def _hessian_product(sptr, sidx, sval, bias_col, v, out):
    """out = H v = v + Z^T (Z v) for the gathered rows Z (each x~_i scaled by sqrt(2 C_i); the last entry of each
    row is the bias feature, column ``bias_col``)."""
    out[:] = v
    for j in range(sptr.shape[0] - 1):
        start, end = sptr[j], sptr[j + 1] - 1
        s0, s1 = sval[end] * v[bias_col], 0.0
        t = start
        while t + 1 < end:
            s0 += sval[t] * v[sidx[t]]
            s1 += sval[t + 1] * v[sidx[t + 1]]
            t += 2
        if t < end:
            s0 += sval[t] * v[sidx[t]]
        z = s0 + s1
        for t in range(start, end):
            out[sidx[t]] += z * sval[t]
        out[bias_col] += z * sval[end]


@numba.njit
def _direction(ptr, idx, val, C, rows, n, B, g, gnorm, max_cg, d):
    """d with H d = -g by preconditioned conjugate gradients, from 0, to ||residual|| <= _CG_TOL ||g||: the CG
    iterations."""
    Dp1 = g.shape[0]
    sptr, sidx, sval = _gather(ptr, idx, val, C, rows, n, B)
    M = np.ones(Dp1)  # H's diagonal: 1 + 2 sum C_i x~_ij^2
    for j in range(n):
        end = sptr[j + 1] - 1
        for t in range(sptr[j], end):
            M[sidx[t]] += sval[t] * sval[t]
        M[Dp1 - 1] += sval[end] * sval[end]
    d[:] = 0.0
    res = -g
    z = res / M
    p = z.copy()
    Hp = np.empty(Dp1)
    rz = np.dot(res, z)
    it = 0
    while it < max_cg:
        it += 1
        _hessian_product(sptr, sidx, sval, Dp1 - 1, p, Hp)
        step = rz / np.dot(p, Hp)
        d += step * p
        res -= step * Hp
        if np.sqrt(np.dot(res, res)) <= _CG_TOL * gnorm:
            break
        z = res / M
        rz_new = np.dot(res, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return it


@numba.njit(nogil=True, cache=True)
def _problem(ptr, idx, val, y, C, o, w, B, tol, max_iter, max_cg):
    """One problem from w~ (updated in place) to its certified gap or max_iter steps: ``(steps, gap, objective)``."""
    N = y.shape[0]
    Dp1 = w.shape[0]
    r, dm = np.empty(N), np.empty(N)
    for i in range(N):
        r[i] = o[i] - y[i] * row_margin(ptr, idx, val, i, w, B)
    rows = np.empty(N, np.int64)
    g, d = np.empty(Dp1), np.empty(Dp1)
    steps = 0
    while True:
        n, gnorm, gap, objective = _gradient_and_gap(ptr, idx, val, y, C, o, r, w, B, rows, g)
        if gap <= tol or steps >= max_iter:
            break
        _direction(ptr, idx, val, C, rows, n, B, g, gnorm, max_cg, d)
        for i in range(N):
            dm[i] = y[i] * row_margin(ptr, idx, val, i, d, B)
        t = _line_search(np.dot(w, d), np.dot(d, d), r, dm, C, 0.0, True)
        if not t > 0:
            break  # no move: the numerical floor
        w += t * d
        r -= t * dm
        steps += 1
    return steps, gap, objective


def newton_cg_squared_hinge(
    X: Matrix, Y: Tensor, C: Tensor, tol: float = 1e-4, max_iter: int = 1000, intercept_scaling: float = 1.0,
    offset: Tensor | None = None,
) -> PrimalResult:
    """K squared-hinge SVMs with a penalized bias by the Newton method with conjugate gradients (see the module
    docstring), on the CPU.

    Args:
        X: ``(N, D)`` CPU tensor or sparse rows (read as compressed rows; the arithmetic is float64).
        Y: ``(N, K)`` labels in {-1, +1}; C: ``(N, K)`` positive costs.
        tol: relative duality gap at which a problem stops.
        max_iter: Newton steps per problem.
        intercept_scaling: B, the value of the bias feature (b = B w~_D); 0: no bias.
        offset: ``(N, K)`` margins o each sample must reach (default 1).

    Returns:
        ``PrimalResult(w (D, K), b (K,), info)`` as :func:`torchsvm.solvers.dcd.dual_coordinate_descent`'s:
        ``info.n_iter`` the most steps any problem took, ``info.gap`` the largest relative duality gap,
        ``info.objective`` and ``info.gaps`` ``(K,)``.

    Raises:
        ValueError: intercept_scaling < 0.
    """
    if not intercept_scaling >= 0:
        raise ValueError(f"Expected intercept_scaling >= 0 (0: no bias), got {intercept_scaling!r}")
    ptr, idx, val = compressed(X)
    if val.dtype != np.float64:
        val = val.astype(np.float64)
    Yn = Y.detach().to("cpu", torch.float64).T.contiguous().numpy()  # (K, N): each problem's rows contiguous
    Cn = C.detach().to("cpu", torch.float64).T.contiguous().numpy()
    On = np.ones_like(Yn) if offset is None else offset.detach().to("cpu", torch.float64).T.contiguous().numpy()
    K = Yn.shape[0]
    W = np.zeros((K, X.shape[1] + 1))
    max_cg = max(50, min(X.shape[1] + 1, 1000))

    def solve(k: int) -> tuple[int, float, float]:
        return _problem(ptr, idx, val, Yn[k], Cn[k], On[k], W[k], float(intercept_scaling), float(tol), int(max_iter),
                        max_cg)

    steps, gaps, objectives = (np.array(column) for column in zip(*run_problems(solve, K), strict=True))
    w = torch.from_numpy(W[:, :-1].T.copy()).to(X.dtype)
    b = torch.from_numpy(W[:, -1] * intercept_scaling).to(X.dtype)
    gap = float(gaps.max())
    return PrimalResult(w, b, SolverInfo(bool(gap <= tol), int(steps.max()), gap,
                                         torch.from_numpy(objectives).to(X.dtype), torch.from_numpy(gaps)))
