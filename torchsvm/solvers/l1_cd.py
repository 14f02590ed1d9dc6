"""L1-regularized linear SVMs (squared hinge) by coordinate descent on the primal: LIBLINEAR's solver, compiled (numba).

For each of K one-vs-rest problems, with x~_i = [x_i, B] (B the intercept scaling; 0: no intercept),

    primal:  minimize  ||w~||_1 + sum_i C_i max(0, 1 - y_i w~ . x~_i)^2,
    dual:    maximize  sum_i a_i - sum_i a_i^2 / (4 C_i)   subject to  ||X~^T (a * y)||_inf <= 1,  a >= 0.

Each step minimizes along one weight w_j a quadratic model of the loss plus |w_j| (a Newton step
with the soft threshold) and backtracks on the true objective (Yuan, Chang, Hsieh and Lin 2010's CDN,
LIBLINEAR's ``solve_l1r_l2_svc``, with its shrinking and random order); b_i = 1 - y_i w~ . x~_i is
kept up to date, so a step costs the column's nonzeros (X is read as compressed columns). It stops
on a certificate: the relative duality gap (P - D) / P <= tol, D at the dual point a_i = 2 C_i
max(0, b_i) scaled into the constraint, checked when LIBLINEAR's own rule (the summed violation below
eps times its first value) would stop, eps tightening while the gap is not within tol, and every
``check_every`` sweeps. Problems run in parallel threads.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse
import torch
from torch import Tensor

from torchsvm import _jit  # noqa: F401  (registers the first-build notice before a loop here compiles)
from torchsvm._sparse import Matrix
from torchsvm._threads import run_problems
from torchsvm.solvers.dcd import compressed, shuffle_active, soft_newton_step
from torchsvm.solvers.primal import PrimalResult, SolverInfo

__all__ = ["l1_coordinate_descent"]


@numba.njit
def _l1_gap(cptr, cidx, cval, y, C, w, b):
    """Relative duality gap and primal objective at w (with b = 1 - y X~ w)."""
    N, P = y.shape[0], w.shape[0]
    a = np.empty(N)
    primal, dual = 0.0, 0.0
    for i in range(N):
        xi = max(0.0, b[i])
        primal += C[i] * xi * xi
        a[i] = 2.0 * C[i] * xi
    g_max = 0.0
    for j in range(P):
        primal += abs(w[j])
        g = 0.0
        for t in range(cptr[j], cptr[j + 1]):
            g += a[cidx[t]] * y[cidx[t]] * np.float64(cval[t])
        g_max = max(g_max, abs(g))
    scale = 1.0 / g_max if g_max > 1.0 else 1.0  # into ||X^T (a y)||_inf <= 1
    for i in range(N):
        ai = scale * a[i]
        dual += ai - ai * ai / (4.0 * C[i])
    return (primal - dual) / max(abs(primal), 1e-30), primal

@numba.njit(nogil=True, cache=True)
def _l1_problem(cptr, cidx, cval, y, C, w, tol, max_sweeps, check_every, seed):
    """One problem to its certified gap or max_sweeps: ``(gap, objective, sweeps)``; w updated in place."""
    N, P = y.shape[0], w.shape[0]
    b = np.ones(N)
    xj_sq = np.zeros(P)
    for j in range(P):
        for t in range(cptr[j], cptr[j + 1]):
            v = np.float64(cval[t])
            xj_sq[j] += C[cidx[t]] * v * v
    index = np.arange(P)
    active = P
    g_max_old = np.inf
    g_norm1_init = -1.0
    eps = 0.01  # LIBLINEAR's default for this solver
    sigma = 0.01
    state = np.uint64(seed)
    gap, objective = np.inf, np.inf
    sweep, next_check = 0, check_every
    while sweep < max_sweeps:
        sweep += 1
        state = shuffle_active(index, active, state)
        g_max_new, g_norm1_new = 0.0, 0.0
        s = 0
        while s < active:
            j = index[s]
            g_loss, H = 0.0, 0.0
            for t in range(cptr[j], cptr[j + 1]):
                i = cidx[t]
                if b[i] > 0:
                    v = y[i] * np.float64(cval[t])
                    tmp = C[i] * v
                    g_loss -= tmp * b[i]
                    H += tmp * v
            g_loss *= 2.0
            G = g_loss
            H = max(2.0 * H, 1e-12)
            Gp, Gn = G + 1.0, G - 1.0
            violation = 0.0
            if w[j] == 0.0:
                if Gp < 0:
                    violation = -Gp
                elif Gn > 0:
                    violation = Gn
                elif Gp > g_max_old / N and Gn < -g_max_old / N:  # at 0 and likely to stay: shrink
                    active -= 1
                    index[s], index[active] = index[active], index[s]
                    continue
            elif w[j] > 0:
                violation = abs(Gp)
            else:
                violation = abs(Gn)
            g_max_new = max(g_max_new, violation)
            g_norm1_new += violation
            d = soft_newton_step(Gp, Gn, H, w[j])  # the Newton step with the soft threshold
            if abs(d) < 1e-12:
                s += 1
                continue
            delta = abs(w[j] + d) - abs(w[j]) + G * d
            d_old = 0.0
            loss_old = 0.0
            for n_search in range(20):  # backtracking on the objective (LIBLINEAR's, Armijo with sigma)
                d_diff = d_old - d
                cond = abs(w[j] + d) - abs(w[j]) - sigma * delta
                if xj_sq[j] * d * d + g_loss * d + cond <= 0:  # the loss's upper model already decreases enough
                    for t in range(cptr[j], cptr[j + 1]):
                        b[cidx[t]] += d_diff * y[cidx[t]] * np.float64(cval[t])
                    break
                loss_new = 0.0
                for t in range(cptr[j], cptr[j + 1]):
                    i = cidx[t]
                    if n_search == 0 and b[i] > 0:
                        loss_old += C[i] * b[i] * b[i]
                    b[i] += d_diff * y[i] * np.float64(cval[t])
                    if b[i] > 0:
                        loss_new += C[i] * b[i] * b[i]
                if cond + loss_new - loss_old <= 0:
                    break
                d_old = d
                d *= 0.5
                delta *= 0.5
            else:  # too many halvings: recompute b from w
                for i in range(N):
                    b[i] = 1.0
                for jj in range(P):
                    wj = w[jj] + (d if jj == j else 0.0)
                    if wj != 0.0:
                        for t in range(cptr[jj], cptr[jj + 1]):
                            b[cidx[t]] -= wj * y[cidx[t]] * np.float64(cval[t])
            w[j] += d
            s += 1
        if g_norm1_init < 0:
            g_norm1_init = g_norm1_new
        check = sweep == next_check
        if g_norm1_new <= eps * g_norm1_init:
            if active < P:  # LIBLINEAR's rule met on the shrunk set: unshrink first
                active = P
                g_max_old = np.inf
                continue
            check = True
        if check:
            next_check = sweep + check_every
            gap, objective = _l1_gap(cptr, cidx, cval, y, C, w, b)
            if gap <= tol:
                break
            if g_norm1_new <= eps * g_norm1_init:  # LIBLINEAR would stop, the certificate not: tighten
                eps *= 0.1
        g_max_old = g_max_new
    if gap > tol:
        gap, objective = _l1_gap(cptr, cidx, cval, y, C, w, b)
    return gap, objective, sweep


def l1_coordinate_descent(
    X: Matrix, Y: Tensor, C: Tensor, tol: float = 1e-4, max_iter: int = 1000, intercept_scaling: float = 1.0,
    check_every: int = 50, seed: int = 0,
) -> PrimalResult:
    """K L1-regularized squared-hinge SVMs (see the module docstring), on the CPU.

    Args:
        X: ``(N, D)``; float32 values read as float32, every product and sum float64.
        Y: ``(N, K)`` labels in {-1, +1}; C: ``(N, K)`` positive costs.
        tol: relative duality gap at which a problem stops.
        max_iter: sweeps over the features per problem.
        intercept_scaling: B (0: no intercept); the intercept is B w~_D, in the L1 norm as LIBLINEAR's.
        check_every: sweeps between certificate checks at the latest.
        seed: of the coordinate order.

    Returns:
        ``PrimalResult(w (D, K), b (K,), info)`` as :func:`torchsvm.solvers.dcd.dual_coordinate_descent`.
    """
    N, D = X.shape
    cptr, cidx, cval = compressed(X, columns=True)
    if intercept_scaling > 0:  # the intercept's column of B's, last
        bias = scipy.sparse.csc_matrix(np.full((N, 1), float(intercept_scaling), dtype=cval.dtype))
        cptr = np.concatenate([cptr, cptr[-1] + bias.indptr[1:]]).astype(np.int64)
        cidx = np.concatenate([cidx, bias.indices.astype(np.uint32)])
        cval = np.concatenate([cval, bias.data])
    Yn = Y.detach().to("cpu", torch.float64).T.contiguous().numpy()
    Cn = C.detach().to("cpu", torch.float64).T.contiguous().numpy()
    K = Yn.shape[0]
    W = np.zeros((K, len(cptr) - 1))

    def solve(k: int) -> tuple[float, float, int]:
        return _l1_problem(cptr, cidx, cval, Yn[k], Cn[k], W[k], float(tol), int(max_iter), int(check_every),
                           int(seed) + 1 + k)

    gaps, objectives, sweeps = (np.array(column) for column in zip(*run_problems(solve, K), strict=True))
    w = torch.from_numpy(W[:, :D].T.copy()).to(X.dtype)
    b = torch.from_numpy(W[:, D] * intercept_scaling if intercept_scaling > 0 else np.zeros(K)).to(X.dtype)
    gap = float(gaps.max())
    return PrimalResult(w, b, SolverInfo(bool(gap <= tol), int(sweeps.max()), gap,
                                         torch.from_numpy(objectives).to(X.dtype)))
