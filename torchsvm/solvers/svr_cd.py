"""Dual coordinate descent for linear epsilon-insensitive regression: LIBLINEAR's SVR solver, compiled (numba).

With x~_i = [x_i, B] (B the intercept scaling, 0: no bias) and w~ = [w, b / B]:

    minimize_w~  1/2 ||w~||^2 + sum_i C_i L(|t_i - w~ . x~_i| - epsilon)      (L(z) = max(0, z), or its square)
    dual:        minimize_beta  1/2 beta^T (Q + diag(lambda)) beta - t^T beta + epsilon ||beta||_1,
                 -U_i <= beta_i <= U_i,   Q_ij = x~_i . x~_j,   w~ = sum_i beta_i x~_i

with U_i = C_i, lambda_i = 0 (L1 loss) or U_i = inf, lambda_i = 1 / (2 C_i) (L2 loss): one variable per sample
(Ho and Lin 2012, Algorithm 4; LIBLINEAR's ``solve_l2r_l1l2_svr``), where the hinge form of the same problem
(:class:`torchsvm.LinearSVR`'s two copies of each sample, solved by :mod:`torchsvm.solvers.dcd`) has two. The
coordinate step minimizes the piecewise quadratic in beta_i exactly:
with G = w~ . x~_i - t_i + lambda_i beta_i and H = ||x~_i||^2 + lambda_i,

    d = -(G + epsilon) / H  if G + epsilon < H beta_i;   -(G - epsilon) / H  if G - epsilon > H beta_i;   else -beta_i,

then beta_i is clipped to [-U_i, U_i]. LIBLINEAR's shrinking and random order. It stops on the certificate
the other linear solvers use: the relative duality gap (P(w~) - D(beta)) / P(w~) <= tol, with
D(beta) = -1/2 ||w~||^2 + t^T beta - epsilon ||beta||_1 - 1/2 sum_i lambda_i beta_i^2, checked once the
violations' sum has fallen by LIBLINEAR's factor (tightened while the gap is not yet within tol) and every
``check_every`` sweeps.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from torchsvm import _jit  # noqa: F401  (registers the first-build notice before a loop here compiles)
from torchsvm._sparse import Matrix
from torchsvm.solvers.dcd import (
    add_row,
    compressed,
    dual_diagonal,
    new_history,
    row_margin,
    shuffle_active,
    soft_newton_step,
    stalled,
)
from torchsvm.solvers.primal import PrimalResult, SolverInfo

__all__ = ["svr_coordinate_descent"]


@numba.njit
def _gap(ptr, idx, val, t, C, eps, beta, w, B, squared):
    """Relative duality gap (P - D) / P at w~ (kept equal to sum beta x~) and beta; and P."""
    ww = 0.0
    for d in range(w.shape[0]):
        ww += w[d] * w[d]
    loss, dual = 0.0, 0.0
    for i in range(t.shape[0]):
        xi = max(0.0, abs(t[i] - row_margin(ptr, idx, val, i, w, B)) - eps)
        dual += t[i] * beta[i] - eps * abs(beta[i])
        if squared:
            loss += C[i] * xi * xi
            dual -= beta[i] * beta[i] / (4.0 * C[i])
        else:
            loss += C[i] * xi
    primal = 0.5 * ww + loss
    return (primal - (dual - 0.5 * ww)) / max(abs(primal), 1e-30), primal


@numba.njit(nogil=True, cache=True)
def _svr_problem(ptr, idx, val, t, C, eps, beta, w, B, tol, max_sweeps, check_every, squared, seed, hand_over):
    """The problem to its certified gap or max_sweeps: ``(gap, objective, sweeps)``; beta and w updated in place.
    With ``hand_over`` it also stops where the gap would not reach tol within max_sweeps (``dcd.stalled``)."""
    N = t.shape[0]
    H, U, lam = dual_diagonal(ptr, idx, val, B, C, squared)  # the hinge's bounds and diagonal, as dcd's
    index = np.arange(N)
    active = N
    g_max_old = np.inf
    settle = 0.1  # LIBLINEAR's default relative tolerance on the violations' sum
    norm1_init = -1.0
    state = np.uint64(seed)
    gap, objective = np.inf, np.inf
    sweep, next_check = 0, check_every
    history = new_history()
    while sweep < max_sweeps:
        sweep += 1
        state = shuffle_active(index, active, state)
        g_max, norm1 = 0.0, 0.0
        s = 0
        while s < active:
            i = index[s]
            b_i = beta[i]
            G = row_margin(ptr, idx, val, i, w, B) - t[i] + lam[i] * b_i
            Gp, Gn = G + eps, G - eps
            violation = 0.0
            shrink = False
            if b_i == 0.0:
                if Gp < 0.0:
                    violation = -Gp
                elif Gn > 0.0:
                    violation = Gn
                else:
                    shrink = Gp > g_max_old and Gn < -g_max_old  # optimal at 0 by a margin: likely to stay
            elif b_i >= U[i]:
                if Gp > 0.0:
                    violation = Gp
                else:
                    shrink = Gp < -g_max_old
            elif b_i <= -U[i]:
                if Gn < 0.0:
                    violation = -Gn
                else:
                    shrink = Gn > g_max_old
            else:
                violation = abs(Gp) if b_i > 0.0 else abs(Gn)
            if shrink:
                active -= 1
                index[s], index[active] = index[active], index[s]
                continue
            g_max = max(g_max, violation)
            norm1 += violation
            d = soft_newton_step(Gp, Gn, H[i], b_i)
            if abs(d) >= 1e-12:
                beta[i] = min(max(b_i + d, -U[i]), U[i])
                add_row(ptr, idx, val, i, beta[i] - b_i, B, w)
            s += 1
        if norm1_init < 0.0:
            norm1_init = norm1
        # LIBLINEAR stops when the violations' sum has fallen by its factor; here that only triggers the
        # certificate, and the factor tightens until the certified gap is within tol.
        settled = norm1 <= settle * norm1_init
        if settled or sweep == next_check:
            next_check = sweep + check_every
            gap, objective = _gap(ptr, idx, val, t, C, eps, beta, w, B, squared)
            if gap <= tol:
                break
            if hand_over and stalled(history, gap, sweep, check_every, max_sweeps, tol):
                break
            if settled and active < N:  # shrunk variables may have moved off their bounds: unshrink
                active = N
                g_max_old = np.inf
                continue
            if settled:
                settle *= 0.1
        g_max_old = g_max if g_max > 0.0 else np.inf
    if gap > tol:
        gap, objective = _gap(ptr, idx, val, t, C, eps, beta, w, B, squared)
    return gap, objective, sweep


def svr_coordinate_descent(
    X: Matrix, t: Tensor, C: Tensor, epsilon: float, squared: bool = False, tol: float = 1e-3, max_iter: int = 1000,
    intercept_scaling: float = 1.0, check_every: int = 50, seed: int = 0, hand_over: bool = False,
) -> PrimalResult:
    """Linear epsilon-insensitive regression with a penalized bias by dual coordinate descent (see the module
    docstring), on the CPU.

    Args:
        X: ``(N, D)`` CPU tensor or sparse rows; float32 values are read as they are, the arithmetic is float64.
        t: ``(N,)`` targets; C: ``(N,)`` positive costs; epsilon: the tube's half width (>= 0).
        squared: the squared loss (L2) instead of the absolute one (L1).
        tol: relative duality gap at which it stops; max_iter: sweeps over the data.
        intercept_scaling: B, the value of the bias feature (the bias b = B w~_D is penalized as 1/2 w~_D^2:
            LIBLINEAR's ``-B``); 0: no bias.
        check_every: sweeps between certified-gap checks at the latest; seed: of the coordinate order.
        hand_over: stop early where the gap, at the rate it has fallen, would not reach tol within max_iter sweeps.

    Returns:
        ``PrimalResult(w (D, 1), b (1,), info)``, ``info.objective`` ``(1,)`` the primal objective.
    """
    if not intercept_scaling >= 0:
        raise ValueError(f"Expected intercept_scaling >= 0 (0: no bias), got {intercept_scaling!r}")
    if not epsilon >= 0:
        raise ValueError(f"Expected epsilon >= 0, got {epsilon!r}")
    ptr, idx, val = compressed(X)
    tn = t.detach().to("cpu", torch.float64).contiguous().numpy()
    Cn = C.detach().to("cpu", torch.float64).contiguous().numpy()
    beta = np.zeros(tn.shape[0])
    W = np.zeros(X.shape[1] + 1)
    gap, objective, sweeps = _svr_problem(ptr, idx, val, tn, Cn, float(epsilon), beta, W, float(intercept_scaling),
                                          float(tol), int(max_iter), int(check_every), bool(squared), int(seed) + 1,
                                          bool(hand_over))
    w = torch.from_numpy(W[:-1].copy()).to(X.dtype).unsqueeze(1)
    b = torch.tensor([W[-1] * intercept_scaling], dtype=X.dtype)
    info = SolverInfo(bool(gap <= tol), int(sweeps), float(gap), torch.tensor([objective], dtype=X.dtype))
    return PrimalResult(w, b, info)
