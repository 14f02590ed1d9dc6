"""The linear Crammer-Singer multi-class SVM by sequential dual coordinate descent: LIBLINEAR's solver, compiled (numba).

With x~_i = [x_i, B] (B the intercept scaling; 0: no intercept), one weight vector w~_m per class,

    primal:  minimize  1/2 sum_m ||w~_m||^2 + sum_i C_i max_m (e_im + w~_m . x~_i - w~_{y_i} . x~_i),
    dual:    minimize  f(a) = 1/2 sum_m ||w~_m(a)||^2 + sum_im e_im a_im,   w~_m(a) = sum_i a_im x~_i,
             subject to  a_im <= C_i [m = y_i],  sum_m a_im = 0  for every sample i,

with e_im = 1 - [m = y_i] (Crammer and Singer 2001; Keerthi, Sundararajan, Chang, Hsieh and Lin 2008).
Each step solves sample i's M-variable subproblem exactly (a sort of M numbers), with LIBLINEAR's
shrinking and random order; w~ is kept equal to w~(a). It stops on a certificate: the relative
duality gap (P(w~) + f(a)) / P(w~) <= tol (strong duality: min P = -min f), checked when LIBLINEAR's
own rule (the largest KKT violation below eps) would stop, eps tightening while the gap is not within
tol, and every ``check_every`` sweeps. X is read as compressed rows.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from torchsvm import _jit  # noqa: F401  (registers the first-build notice before a loop here compiles)
from torchsvm._sparse import Matrix
from torchsvm.solvers.dcd import compressed, row_norms_sq, shuffle_active
from torchsvm.solvers.primal import PrimalResult, SolverInfo

__all__ = ["crammer_singer_coordinate_descent"]


@numba.njit
def _cs_gap(ptr, idx, val, y, C, a, W, B):
    """Relative duality gap and primal objective at W (= W(a)), ``W`` ``(D + 1, M)``."""
    N, M = y.shape[0], W.shape[1]
    ww = 0.0
    for d in range(W.shape[0]):
        for m in range(M):
            ww += W[d, m] * W[d, m]
    loss, ea = 0.0, 0.0
    f = np.empty(M)
    for i in range(N):
        for m in range(M):
            f[m] = W[W.shape[0] - 1, m] * B
        for t in range(ptr[i], ptr[i + 1]):
            v = np.float64(val[t])
            for m in range(M):
                f[m] += W[idx[t], m] * v
        worst = 0.0  # m = y_i gives 0
        for m in range(M):
            if m != y[i]:
                worst = max(worst, 1.0 + f[m] - f[y[i]])
                ea += a[i, m]
        loss += C[i] * worst
    primal = 0.5 * ww + loss
    return (primal + 0.5 * ww + ea) / max(abs(primal), 1e-30), primal

@numba.njit
def _subproblem(A, yi, C_yi, Bv, active, out):
    """LIBLINEAR's solve_sub_problem: the exact minimizer of sample i's subproblem over its active classes."""
    D = Bv[:active].copy()
    if yi < active:
        D[yi] += A * C_yi
    D = -np.sort(-D)  # descending
    beta = D[0] - A * C_yi
    r = 1
    while r < active and beta < r * D[r]:
        beta += D[r]
        r += 1
    beta /= r
    for m in range(active):
        out[m] = min(C_yi if m == yi else 0.0, (beta - Bv[m]) / A)

@numba.njit(nogil=True, cache=True)
def _cs_solve(ptr, idx, val, y, C, a, W, B, tol, max_sweeps, check_every, seed):
    """Solve in place (``a`` ``(N, M)``, ``W`` ``(D + 1, M)``): ``(gap, objective, sweeps)``."""
    N, M = a.shape
    Dlast = W.shape[0] - 1
    QD = row_norms_sq(ptr, val, B)
    order = np.empty((N, M), dtype=np.int64)  # per sample, its classes with the active ones first
    for i in range(N):
        for m in range(M):
            order[i, m] = m
    active_i = np.full(N, M)
    y_pos = y.copy()  # where y_i sits in order[i]
    index = np.arange(N)
    active = N
    G = np.empty(M)
    Bv = np.empty(M)
    new = np.empty(M)
    eps = 0.1  # LIBLINEAR's default stopping tolerance for this solver
    eps_shrink = max(10.0 * eps, 1.0)
    from_all = True
    state = np.uint64(seed)
    gap, objective = np.inf, np.inf
    sweep, next_check = 0, check_every
    while sweep < max_sweeps:
        sweep += 1
        state = shuffle_active(index, active, state)
        stopping = -np.inf
        s = 0
        while s < active:
            i = index[s]
            Ai = QD[i]
            if Ai <= 0:
                s += 1
                continue
            na = active_i[i]
            for m in range(na):
                G[m] = 1.0
            if y_pos[i] < na:
                G[y_pos[i]] = 0.0
            for m in range(na):
                G[m] += W[Dlast, order[i, m]] * B
            for t in range(ptr[i], ptr[i + 1]):
                v = np.float64(val[t])
                for m in range(na):
                    G[m] += W[idx[t], order[i, m]] * v
            minG, maxG = np.inf, -np.inf
            for m in range(na):
                if a[i, order[i, m]] < 0 and G[m] < minG:
                    minG = G[m]
                maxG = max(maxG, G[m])
            if y_pos[i] < na and a[i, y[i]] < C[i] and G[y_pos[i]] < minG:
                minG = G[y_pos[i]]
            m = 0
            while m < na:  # shrink the classes at their bound with a gradient below minG
                bound = C[i] if m == y_pos[i] else 0.0
                if a[i, order[i, m]] == bound and G[m] < minG:
                    na -= 1
                    last = na
                    order[i, m], order[i, last] = order[i, last], order[i, m]
                    G[m], G[last] = G[last], G[m]
                    if y_pos[i] == last:
                        y_pos[i] = m
                    elif y_pos[i] == m:
                        y_pos[i] = last
                    continue
                m += 1
            active_i[i] = na
            if na <= 1:
                active -= 1
                index[s], index[active] = index[active], index[s]
                continue
            if maxG - minG <= 1e-12:
                s += 1
                continue
            stopping = max(stopping, maxG - minG)
            for m in range(na):
                Bv[m] = G[m] - Ai * a[i, order[i, m]]
            _subproblem(Ai, y_pos[i], C[i], Bv, na, new)
            for m in range(na):
                c = order[i, m]
                d = new[m] - a[i, c]
                a[i, c] = new[m]
                if abs(d) >= 1e-12:
                    for t in range(ptr[i], ptr[i + 1]):
                        W[idx[t], c] += d * val[t]
                    W[Dlast, c] += d * B
            s += 1
        check = sweep == next_check
        if stopping < eps_shrink:
            if stopping < eps and from_all:
                check = True  # LIBLINEAR would stop here: ask the certificate
            else:  # unshrink
                active = N
                active_i[:] = M
                eps_shrink = max(eps_shrink / 2, eps)
                from_all = True
        else:
            from_all = False
        if check:
            next_check = sweep + check_every
            gap, objective = _cs_gap(ptr, idx, val, y, C, a, W, B)
            if gap <= tol:
                break
            if stopping < eps and from_all:  # converged by LIBLINEAR's rule, not by ours: tighten it
                eps *= 0.1
                active = N
                active_i[:] = M
    if gap > tol:
        gap, objective = _cs_gap(ptr, idx, val, y, C, a, W, B)
    return gap, objective, sweep


def crammer_singer_coordinate_descent(
    X: Matrix, y: Tensor, C: Tensor, n_classes: int, tol: float = 1e-4, max_iter: int = 1000,
    intercept_scaling: float = 1.0, check_every: int = 50, seed: int = 0,
) -> PrimalResult:
    """The linear Crammer-Singer SVM (see the module docstring), on the CPU.

    Args:
        X: ``(N, D)``; float32 values read as float32, every product and sum float64.
        y: ``(N,)`` class indices in ``[0, n_classes)``; C: ``(N,)`` positive costs.
        n_classes: M.
        tol: relative duality gap at which it stops.
        max_iter: sweeps over the samples.
        intercept_scaling: B (0: no intercept); the intercept of class m is B w~_m[D], penalized.
        check_every: sweeps between certificate checks at the latest.
        seed: of the sample order.

    Returns:
        ``PrimalResult(w (D, M), b (M,), info)``; ``info.objective`` holds the one joint objective.
    """
    ptr, idx, val = compressed(X)
    yn = y.detach().to("cpu", torch.int64).numpy()
    Cn = C.detach().to("cpu", torch.float64).numpy()
    a = np.zeros((len(yn), n_classes))
    W = np.zeros((X.shape[1] + 1, n_classes))
    gap, objective, sweeps = _cs_solve(ptr, idx, val, yn, Cn, a, W, float(intercept_scaling), float(tol),
                                       int(max_iter), int(check_every), int(seed) + 1)
    w = torch.from_numpy(W[:-1].copy()).to(X.dtype)
    b = torch.from_numpy(W[-1] * intercept_scaling).to(X.dtype)
    info = SolverInfo(bool(gap <= tol), int(sweeps), float(gap), torch.tensor([objective], dtype=X.dtype))
    return PrimalResult(w, b, info)
