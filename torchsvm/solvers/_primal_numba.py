"""The primal Newton method for the squared hinge as compiled CPU code (numba): small dense problems.

The torch Newton step (:func:`torchsvm.solvers.primal.primal_newton`) is some hundred dispatched
operations, its exact line search sixty more passes over the (N, K) margins: on a small problem (a few
hundred rows of a few dozen features) that costs tens of milliseconds where the arithmetic costs
tens of microseconds. Here one problem runs all its steps in one compiled loop, the problems one
after the other on this thread: the same generalized Hessian (2 C on the rows with a positive loss,
the same damping), the same line search (bracket by doubling, then forty bisections of phi') and the
same stopping rule (the gradient's norm relative to the start's). Tests compare the two.
"""

from __future__ import annotations

import numba
import numpy as np

from torchsvm import _jit  # noqa: F401  (registers the first-build notice before a loop here compiles)

__all__ = ["newton_squared_hinge"]


@numba.njit(inline="always")
def _dphi(wp, pp, t, r, dm, c):
    """phi'(t) of phi(t) = 1/2 ||w + t p||^2 + sum c max(0, r - t dm)^2 (the bias a weight scaled by sqrt(lam))."""
    s = wp + t * pp
    for i in range(r.shape[0]):
        z = r[i] - t * dm[i]
        if z > 0:
            s -= 2.0 * c[i] * z * dm[i]
    return s

@numba.njit(inline="always")
def _line_search(wp, pp, r, dm, c):
    """The step along p: 0 if p is no descent direction, else the root of phi' bracketed by doubling
    from [0, 1] and bisected forty times (the torch method's rule, step for step)."""
    if not _dphi(wp, pp, 0.0, r, dm, c) < 0:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        if not _dphi(wp, pp, hi, r, dm, c) < 0:
            break
        lo, hi = hi, hi * 2
    for _ in range(40):
        mid = (lo + hi) / 2
        if _dphi(wp, pp, mid, r, dm, c) < 0:
            lo = mid
        else:
            hi = mid
    return lo

@numba.njit
def _solve(X, y, c, o, w, b, lam, no_bias, damping, tol, max_iter):
    """One problem from (w, b) (updated in place; b a 1-element array): ``(steps, relative gradient, objective)``."""
    N, D = X.shape
    r = np.empty(N)  # o - y f: the loss is c max(0, r)^2
    for i in range(N):
        f = b[0]
        for d in range(D):
            f += X[i, d] * w[d]
        r[i] = o[i] - y[i] * f
    g = np.empty(D + 1)
    H = np.empty((D + 1, D + 1))
    dm = np.empty(N)
    g0, rel, steps = 0.0, np.inf, 0
    while True:
        for d in range(D):
            g[d] = w[d]
        g[D] = lam * b[0]
        for i in range(N):
            if r[i] > 0:
                a = -2.0 * c[i] * r[i] * y[i]
                for d in range(D):
                    g[d] += a * X[i, d]
                g[D] += a
        if no_bias:
            g[D] = 0.0
        norm = np.sqrt(np.sum(g * g))
        if steps == 0:
            g0 = max(norm, 1e-30)
        rel = norm / g0
        if rel <= tol or steps >= max_iter:
            break
        # H = [[I + X^T S X, X^T S 1], [1^T S X, 1^T S 1 + lam]] + damping I, S = 2 c on the rows with r > 0
        H[:, :] = 0.0
        for d in range(D):
            H[d, d] = 1.0
        H[D, D] = lam
        for i in range(N):
            if r[i] > 0:
                s = 2.0 * c[i]
                for d in range(D):
                    a = s * X[i, d]
                    for e in range(d + 1):
                        H[d, e] += a * X[i, e]
                    H[D, d] += a
                H[D, D] += s
        for d in range(D + 1):
            for e in range(d):
                H[e, d] = H[d, e]
            H[d, d] += damping
        if no_bias:  # the bias row and column the identity's: with g_b = 0 the bias stays 0
            H[D, :] = 0.0
            H[:, D] = 0.0
            H[D, D] = 1.0
        p = np.linalg.solve(H, -g)
        for i in range(N):
            f = p[D]
            for d in range(D):
                f += X[i, d] * p[d]
            dm[i] = y[i] * f
        wp, pp = lam * b[0] * p[D], lam * p[D] * p[D]
        for d in range(D):
            wp += w[d] * p[d]
            pp += p[d] * p[d]
        t = _line_search(wp, pp, r, dm, c)
        if not t > 0:
            break  # no move: the numerical floor
        steps += 1
        for d in range(D):
            w[d] += t * p[d]
        b[0] += t * p[D]
        for i in range(N):
            r[i] -= t * dm[i]
    objective = 0.5 * np.sum(w * w) + 0.5 * lam * b[0] * b[0]
    for i in range(N):
        if r[i] > 0:
            objective += c[i] * r[i] * r[i]
    return steps, rel, objective

@numba.njit(cache=True)
def _solve_all(X, Y, C, O, W, B, lam, no_bias, damping, tol, max_iter, steps, rel, objective):
    for k in range(Y.shape[0]):
        steps[k], rel[k], objective[k] = _solve(X, Y[k], C[k], O[k], W[k], B[k:k + 1], lam, no_bias, damping, tol,
                                                max_iter)


def newton_squared_hinge(X: np.ndarray, Y: np.ndarray, C: np.ndarray, O: np.ndarray, lam: float, no_bias: bool,
                         tol: float, max_iter: int, W: np.ndarray, b: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K squared-hinge problems on dense ``X`` ``(N, D)`` (float64), each row of ``Y``, ``C``, ``O`` ``(K, N)`` one
    problem, from ``W`` ``(K, D)`` and ``b`` ``(K,)`` (updated in place). Returns ``(steps, relative gradient norm,
    objective)``, each ``(K,)``."""
    K = Y.shape[0]
    steps, rel, objective = np.zeros(K, np.int64), np.empty(K), np.empty(K)
    damping = 1e-10 * float(C.sum(1).max())  # the torch method's: keeps the bias direction positive definite
    _solve_all(X, Y, C, O, W, b, float(lam), no_bias, damping, float(tol), int(max_iter), steps, rel, objective)
    return steps, rel, objective
