"""The primal Newton method as compiled CPU code (numba): small dense problems, both hinges.

The torch Newton step (:func:`torchsvm.solvers.primal.primal_newton`) is some hundred dispatched
operations, its exact line search sixty more passes over the (N, K) margins: on a small problem (a few
hundred rows of a few dozen features) that costs tens of milliseconds where the arithmetic costs
tens of microseconds. Here one problem runs all its steps in one compiled loop (the problems shared
out over torch's threads), with the torch method's rules and the same exact line search (the root of
phi' bracketed by doubling; where the torch method then bisects forty times, a safeguarded Newton method
on the piecewise-linear phi' finds the same root in a few passes):

- the squared hinge: the same generalized Hessian (2 C on the rows with a positive loss, the same
  damping) and the same stopping rule (the gradient's norm relative to the start's);
- the hinge: the same smoothing stages (width h shrinking 4x from 10, each stage solved to a relative
  gradient of 1e-3, curvature C / h on the rows inside the band), the same certificate (the relative
  duality gap of the best iterate against the best dual point: each iterate's alpha = C clamp(z / h, 0, 1)
  and, once h <= the offsets' scale, three exact-partition candidates every fifth step and at each stage's
  end; see :mod:`torchsvm.solvers._hinge_stopping`).

Tests compare the two.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from torchsvm import _jit  # noqa: F401  (registers the first-build notice before a loop here compiles)
from torchsvm._threads import run_problems

__all__ = ["newton_squared_hinge", "newton_hinge"]

# The torch method's constants (torchsvm.solvers.primal and torchsvm.solvers._hinge_stopping).
_STAGE_TOL = 1e-3
_STAGES = 17
_POLISH_EVERY = 5
_POLISH_ROUNDS = 3


@numba.njit(inline="always")
def _slope(z, c, h, squared):
    """-dL/dm times c at z = o - y f: the squared hinge's 2 c max(0, z), the smoothed hinge's c clamp(z / h, 0, 1)."""
    if squared:
        return 2.0 * c * z if z > 0 else 0.0
    return c * min(max(z / h, 0.0), 1.0)

@numba.njit(inline="always")
def _dphi(wp, pp, t, r, dm, c, h, squared):
    """phi'(t) and phi''(t) of phi(t) = 1/2 ||w + t p||^2 + sum c L(r - t dm) (the bias a weight scaled by
    sqrt(lam)); phi' is piecewise linear in t, its kinks where z = r - t dm crosses 0 (or the smoothed hinge's h),
    and phi'' is its slope on the piece at t."""
    d, s = wp + t * pp, pp
    for i in range(r.shape[0]):
        z = r[i] - t * dm[i]
        if z > 0:
            d -= _slope(z, c[i], h, squared) * dm[i]
            if squared:
                s += 2.0 * c[i] * dm[i] * dm[i]
            elif z < h:
                s += c[i] * dm[i] * dm[i] / h
    return d, s

@numba.njit
def _line_search(wp, pp, r, dm, c, h, squared):
    """The step along p: 0 if p is no descent direction, else the root of phi' (convex phi): bracketed by
    doubling from [0, 1] (the torch method's rule), then found by Newton's method on phi' kept inside the
    bracket (a bisection where a step leaves it). phi' is piecewise linear, so a Newton step from t lands on
    the root of t's piece: a few passes over the rows where the torch method bisects forty times."""
    if not _dphi(wp, pp, 0.0, r, dm, c, h, squared)[0] < 0:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        d, slope = _dphi(wp, pp, hi, r, dm, c, h, squared)
        if not d < 0:
            break
        lo, hi = hi, hi * 2
    width = 2.0 ** -40 * (hi - lo)  # the bisection's resolution
    t = hi
    for _ in range(100):
        if d == 0:
            return t
        if d < 0:
            lo = t
        else:
            hi = t
        if hi - lo <= width:
            break
        step = t - d / slope if slope > 0 else lo
        if not lo < step < hi:
            step = (lo + hi) / 2
        elif abs(step - t) <= 1e-15 * t:
            return step  # at the root of t's piece
        t = step
        d, slope = _dphi(wp, pp, t, r, dm, c, h, squared)
    return lo

@numba.njit(inline="always")
def _decision(X, w, b, i):
    f = b
    for d in range(X.shape[1]):
        f += X[i, d] * w[d]
    return f

@numba.njit
def _gradient(X, y, a, w, b, lam, no_bias, g):
    """g = [w - X^T (a y); lam b - sum a y] with a = -dL/dm (g_b = 0 without a bias); returns ||g||."""
    N, D = X.shape
    for d in range(D):
        g[d] = w[d]
    g[D] = lam * b
    for i in range(N):
        if a[i] != 0.0:
            ay = a[i] * y[i]
            for d in range(D):
                g[d] -= ay * X[i, d]
            g[D] -= ay
    if no_bias:
        g[D] = 0.0
    return np.sqrt(np.sum(g * g))

@numba.njit
def _direction(X, s, g, lam, no_bias, damping, H):
    """p with H p = -g, H = [[I + X^T S X, X^T S 1], [1^T S X, 1^T S 1 + lam]] + damping I, S = diag(s)."""
    N, D = X.shape
    H[:, :] = 0.0
    for d in range(D):
        H[d, d] = 1.0
    H[D, D] = lam
    for i in range(N):
        if s[i] > 0:
            for d in range(D):
                a = s[i] * X[i, d]
                for e in range(d + 1):
                    H[d, e] += a * X[i, e]
                H[D, d] += a
            H[D, D] += s[i]
    for d in range(D + 1):
        for e in range(d):
            H[e, d] = H[d, e]
        H[d, d] += damping
    if no_bias:  # the bias row and column the identity's: with g_b = 0 the bias stays 0
        H[D, :] = 0.0
        H[:, D] = 0.0
        H[D, D] = 1.0
    return np.linalg.solve(H, -g)

@numba.njit
def _step(X, y, w, b, lam, p, r, c, h, squared, dm):
    """The exact line search along p from (w, b) (b a 1-element array), then the move (w, b, r updated): the step."""
    N, D = X.shape
    for i in range(N):
        dm[i] = y[i] * _decision(X, p, p[D], i)
    wp, pp = lam * b[0] * p[D], lam * p[D] * p[D]
    for d in range(D):
        wp += w[d] * p[d]
        pp += p[d] * p[d]
    t = _line_search(wp, pp, r, dm, c, h, squared)
    if t > 0:
        for d in range(D):
            w[d] += t * p[d]
        b[0] += t * p[D]
        for i in range(N):
            r[i] -= t * dm[i]
    return t

@numba.njit(inline="always")
def _residuals(X, y, o, w, b, r):
    """r = o - y f: the loss is a function of r."""
    for i in range(X.shape[0]):
        r[i] = o[i] - y[i] * _decision(X, w, b, i)

@numba.njit
def _solve(X, y, c, o, w, b, lam, no_bias, damping, tol, max_iter):
    """One squared-hinge problem from (w, b) (updated in place; b a 1-element array):
    ``(steps, relative gradient, objective)``."""
    N, D = X.shape
    r, a, s, dm = np.empty(N), np.empty(N), np.empty(N), np.empty(N)
    _residuals(X, y, o, w, b[0], r)
    g = np.empty(D + 1)
    H = np.empty((D + 1, D + 1))
    g0, rel, steps = 0.0, np.inf, 0
    while True:
        for i in range(N):
            a[i] = _slope(r[i], c[i], 0.0, True)
            s[i] = 2.0 * c[i] if r[i] > 0 else 0.0
        norm = _gradient(X, y, a, w, b[0], lam, no_bias, g)
        if steps == 0:
            g0 = max(norm, 1e-30)
        rel = norm / g0
        if rel <= tol or steps >= max_iter:
            break
        p = _direction(X, s, g, lam, no_bias, damping, H)
        if not _step(X, y, w, b, lam, p, r, c, 0.0, True, dm) > 0:
            break  # no move: the numerical floor
        steps += 1
    objective = 0.5 * np.sum(w * w) + 0.5 * lam * b[0] * b[0]
    for i in range(N):
        if r[i] > 0:
            objective += c[i] * r[i] * r[i]
    return steps, rel, objective

@numba.njit(nogil=True, cache=True)
def _problem_squared_hinge(X, Y, C, O, W, B, k, lam, no_bias, damping, tol, max_iter):
    return _solve(X, Y[k], C[k], O[k], W[k], B[k:k + 1], lam, no_bias, damping, tol, max_iter)


def newton_squared_hinge(X: np.ndarray, Y: np.ndarray, C: np.ndarray, O: np.ndarray, lam: float, no_bias: bool,
                         tol: float, max_iter: int, W: np.ndarray, b: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K squared-hinge problems on dense ``X`` ``(N, D)`` (float64), each row of ``Y``, ``C``, ``O`` ``(K, N)`` one
    problem, from ``W`` ``(K, D)`` and ``b`` ``(K,)`` (updated in place). Returns ``(steps, relative gradient norm,
    objective)``, each ``(K,)``."""
    damping = 1e-10 * float(C.sum(1).max())  # the torch method's: keeps the bias direction positive definite
    return _run(lambda k: _problem_squared_hinge(X, Y, C, O, W, b, k, float(lam), no_bias, damping, float(tol),
                                                 int(max_iter)), Y.shape[0])


def _run(solve: Callable[[int], tuple[int, float, float]], K: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The K problems over torch's threads (:func:`torchsvm._threads.run_problems`; the loops release the
    GIL): ``(steps, measure, objective)``, each ``(K,)``."""
    steps, measure, objective = zip(*run_problems(solve, K), strict=True)
    return np.array(steps, np.int64), np.array(measure, np.float64), np.array(objective, np.float64)


# The hinge.

@numba.njit
def _bounds(X, y, c, o, w, b, f, alpha, lam, no_bias, v):
    """The hinge's primal objective P at (w, b) with decision values f, and the dual D of a feasible rescaling
    of alpha (as torchsvm.solvers._hinge_stopping._duality_gap: a free bias (lam = 0) scales the larger side
    of alpha down so that sum alpha y = 0)."""
    N, D = X.shape
    pos, neg = 0.0, 0.0
    for i in range(N):
        if y[i] > 0:
            pos += alpha[i]
        elif y[i] < 0:
            neg += alpha[i]
    scale_pos, scale_neg = 1.0, 1.0
    if lam == 0 and not no_bias:
        if pos > neg:
            scale_pos = neg / max(pos, 1e-300)
        elif neg > pos:
            scale_neg = pos / max(neg, 1e-300)
    v[:] = 0.0
    ao, losses = 0.0, 0.0
    for i in range(N):
        a = alpha[i] * (scale_pos if y[i] > 0 else scale_neg)
        if a != 0.0:
            ay = a * y[i]
            for d in range(D):
                v[d] += ay * X[i, d]
        ao += a * o[i]
        losses += c[i] * max(0.0, o[i] - y[i] * f[i])
    primal = 0.5 * np.sum(w * w) + losses
    dual = ao - 0.5 * np.sum(v * v)
    if lam > 0 and not no_bias:
        primal += 0.5 * lam * b * b
        dual -= (pos - neg) ** 2 / (2.0 * lam)
    return primal, dual

@numba.njit
def _partition(X, y, c, o, at_c, free, lam, no_bias, w, alpha):
    """The hinge optimum if the partition were right (alpha = c on ``at_c``, free on ``free``, 0 elsewhere):
    w and alpha written, b returned (torchsvm.solvers._hinge_stopping._solve_partition, one problem). With more
    than D + 1 free rows (a wrong guess) w = X_L^T (c_L y_L), b = 0."""
    N, D = X.shape
    w[:] = 0.0
    sum_l = 0.0
    n = 0
    for i in range(N):
        alpha[i] = 0.0
        if at_c[i]:
            alpha[i] = c[i]
            cy = c[i] * y[i]
            for d in range(D):
                w[d] += cy * X[i, d]
            sum_l += cy
        elif free[i]:
            n += 1
    if n == 0 or n > D + 1:
        return 0.0
    rows = np.empty(n, np.int64)
    j = 0
    for i in range(N):
        if free[i]:
            rows[j] = i
            j += 1
    bordered = not no_bias
    m = n + 1 if bordered else n
    A = np.zeros((m, m))
    rhs = np.empty(m)
    for j in range(n):
        i = rows[j]
        for k in range(j + 1):
            q = 0.0
            for d in range(D):
                q += X[i, d] * X[rows[k], d]
            A[j, k] = y[i] * y[rows[k]] * q
            A[k, j] = A[j, k]
        margin = 0.0
        for d in range(D):
            margin += X[i, d] * w[d]
        rhs[j] = o[i] - y[i] * margin
    top = 0.0
    for j in range(n):
        top = max(top, A[j, j])
    for j in range(n):  # a tiny ridge keeps the system solvable with more than D + 1 rows or duplicates
        A[j, j] += 1e-10 * top + 1e-12
    if bordered:
        for j in range(n):
            A[j, n] = y[rows[j]]
            A[n, j] = y[rows[j]]
        A[n, n] = -lam
        rhs[n] = -sum_l
    sol = np.linalg.solve(A, rhs)
    for j in range(n):
        i = rows[j]
        alpha[i] = sol[j]
        ay = sol[j] * y[i]
        for d in range(D):
            w[d] += ay * X[i, d]
    return sol[n] if bordered else 0.0

@numba.njit
def _solve_hinge(X, y, c, o, w, b, lam, no_bias, damping, tol, max_iter, h_scale):
    """One hinge problem from (w, b) (b a 1-element array; both replaced by the best certified iterate):
    ``(steps, relative duality gap, objective)``."""
    N, D = X.shape
    r, a, s, dm, f = np.empty(N), np.empty(N), np.empty(N), np.empty(N), np.empty(N)
    g, v = np.empty(D + 1), np.empty(D)
    H = np.empty((D + 1, D + 1))
    best_w, best_b = w.copy(), b[0]  # the best primal iterate and bounds so far
    best_p, best_d = np.inf, -np.inf
    cw, calpha, clipped = np.empty(D), np.empty(N), np.empty(N)  # an exact-partition candidate
    at_c, free = np.empty(N, np.bool_), np.empty(N, np.bool_)
    g0, steps, gap = 0.0, 0, np.inf
    _residuals(X, y, o, w, b[0], r)
    for stage in range(_STAGES):
        h = 10.0 * h_scale * 4.0 ** -stage
        in_stage = 0
        while True:
            for i in range(N):
                a[i] = _slope(r[i], c[i], h, False)  # alpha = C clamp(z / h, 0, 1): dual feasible
                s[i] = c[i] / h if 0 < r[i] < h else 0.0
            norm = _gradient(X, y, a, w, b[0], lam, no_bias, g)
            if g0 == 0.0:
                g0 = max(norm, 1e-30)
            stage_done = norm / g0 <= _STAGE_TOL
            # The certificate: this iterate, then (h <= h_scale) exact-partition candidates.
            for i in range(N):
                f[i] = (o[i] - r[i]) * y[i]
            p_now, d_now = _bounds(X, y, c, o, w, b[0], f, a, lam, no_bias, v)
            if p_now < best_p:
                best_p, best_w[:], best_b = p_now, w, b[0]
            best_d = max(best_d, d_now)
            if h <= h_scale and (stage_done or in_stage % _POLISH_EVERY == _POLISH_EVERY - 1):
                for i in range(N):  # v = alpha / C + z, alpha = C clamp(z / h, 0, 1)
                    calpha[i] = min(max(r[i] / h, 0.0), 1.0) + r[i]
                for _ in range(_POLISH_ROUNDS):
                    for i in range(N):
                        at_c[i] = calpha[i] >= 1.0
                        free[i] = 0.0 < calpha[i] < 1.0
                    cb = _partition(X, y, c, o, at_c, free, lam, no_bias, cw, calpha)
                    for i in range(N):
                        f[i] = _decision(X, cw, cb, i)
                        clipped[i] = min(max(calpha[i], 0.0), c[i])  # into the box for the bound
                    p_now, d_now = _bounds(X, y, c, o, cw, cb, f, clipped, lam, no_bias, v)
                    if p_now < best_p:
                        best_p, best_w[:], best_b = p_now, cw, cb
                    best_d = max(best_d, d_now)
                    for i in range(N):  # the next round's partition: v = alpha / C + z
                        calpha[i] = calpha[i] / c[i] + o[i] - y[i] * f[i]
            gap = (best_p - best_d) / max(abs(best_p), 1e-30)
            # The last stage runs on to the certificate (or max_iter): its h is the smallest there is.
            if gap <= tol or (stage_done and stage < _STAGES - 1) or steps >= max_iter:
                break
            p = _direction(X, s, g, lam, no_bias, damping, H)
            if not _step(X, y, w, b, lam, p, r, c, h, False, dm) > 0:
                break  # no move: the numerical floor of this stage
            steps += 1
            in_stage += 1
        if gap <= tol or steps >= max_iter:
            break
    w[:] = best_w
    b[0] = best_b
    return steps, gap, best_p

@numba.njit(nogil=True, cache=True)
def _problem_hinge(X, Y, C, O, W, B, k, lam, no_bias, damping, tol, max_iter, h_scale):
    return _solve_hinge(X, Y[k], C[k], O[k], W[k], B[k:k + 1], lam, no_bias, damping, tol, max_iter, h_scale)


def newton_hinge(X: np.ndarray, Y: np.ndarray, C: np.ndarray, O: np.ndarray, lam: float, no_bias: bool,
                 tol: float, max_iter: int, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """K hinge problems, laid out as :func:`newton_squared_hinge`'s. Returns ``(steps, certified relative duality
    gap, objective)``, each ``(K,)``; ``W`` and ``b`` hold each problem's best certified iterate."""
    damping = 1e-10 * float(C.sum(1).max())
    h_scale = max(1.0, float(np.abs(O).max()))  # the torch method's: h starts above every |o|
    return _run(lambda k: _problem_hinge(X, Y, C, O, W, b, k, float(lam), no_bias, damping, float(tol), int(max_iter),
                                         h_scale), Y.shape[0])
