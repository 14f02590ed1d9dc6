"""Reference solvers built on cvxpy, for tests and small problems (the ``reference`` extra installs cvxpy
and cvxpylayers)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from torchsvm.optional import require

__all__ = ["cvxpy_primal", "cvxpy_dual", "cvxpylayers_dual", "dual_intercept"]


def cvxpy_primal(X: np.ndarray, y: np.ndarray, C: float | np.ndarray, loss: str = "hinge",
                 bias_penalty: float = 0.0) -> tuple[np.ndarray, float, float]:
    """Solve ``min 1/2 ||w||^2 + lam/2 b^2 + sum_i C_i L(y_i (w . x_i + b))`` with cvxpy (Clarabel/ECOS).

    Returns ``(w, b, objective)`` in float64. ``loss`` is ``hinge``, ``squared_hinge`` or ``logistic``;
    lam = ``bias_penalty``: 0 leaves b free, ``inf`` fixes b = 0.
    """
    cp = require("cvxpy", "reference", "cvxpy_primal")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    N, D = X.shape
    Cv = np.broadcast_to(np.asarray(C, dtype=np.float64), (N,))
    w, b = cp.Variable(D), cp.Variable()
    m = cp.multiply(y, X @ w + b)
    if loss == "hinge":
        data = cp.sum(cp.multiply(Cv, cp.pos(1 - m)))
    elif loss == "squared_hinge":
        data = cp.sum(cp.multiply(Cv, cp.square(cp.pos(1 - m))))
    elif loss == "logistic":
        data = cp.sum(cp.multiply(Cv, cp.logistic(-m)))
    else:
        raise ValueError(f"Expected loss to be 'hinge', 'squared_hinge' or 'logistic', got {loss!r}")
    regularizer = 0.5 * cp.sum_squares(w)
    constraints = []
    if np.isinf(bias_penalty):
        constraints = [b == 0]
    elif bias_penalty > 0:
        regularizer = regularizer + 0.5 * bias_penalty * cp.square(b)
    problem = cp.Problem(cp.Minimize(regularizer + data), constraints)
    problem.solve()
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"cvxpy could not solve the primal: status {problem.status}")
    return np.asarray(w.value), float(b.value), float(problem.value)


def dual_intercept(K: np.ndarray, y: np.ndarray, alpha: np.ndarray, C: float | np.ndarray, tol: float = 1e-8) -> float:
    """The bias b of f(x) = sum_j alpha_j y_j K(x_j, x) + b, by LIBSVM's rule.

    With g_i = y_i (sum_j alpha_j y_j K_ij) - 1 (the dual gradient), b = -mean(y_i g_i) over the
    free support vectors (tol < alpha_i < C_i - tol); with none free, b = -(ub + lb) / 2 from the
    bounds that the samples at 0 and at C_i put on it (LIBSVM's ``calculate_rho``).
    """
    K, y, alpha = np.asarray(K, np.float64), np.asarray(y, np.float64), np.asarray(alpha, np.float64)
    Cv = np.broadcast_to(np.asarray(C, dtype=np.float64), y.shape)
    yG = y * (y * (K @ (alpha * y)) - 1)
    at_upper = alpha >= Cv - tol
    at_lower = alpha <= tol
    free = ~at_upper & ~at_lower
    if free.any():
        return float(-yG[free].mean())
    ub_set = (at_upper & (y < 0)) | (at_lower & (y > 0))
    lb_set = (at_upper & (y > 0)) | (at_lower & (y < 0))
    ub = yG[ub_set].min() if ub_set.any() else np.inf
    lb = yG[lb_set].max() if lb_set.any() else -np.inf
    return float(-(ub + lb) / 2)


def cvxpy_dual(K: np.ndarray, y: np.ndarray, C: float | np.ndarray) -> tuple[np.ndarray, float, float]:
    """The kernel SVM dual as a generic QP in standard form (P, q, G, h, A, b), solved with cvxpy.

        minimize 1/2 a^T P a + q^T a   subject to  G a <= h,  A a = b
        P = (y y^T) * K,  q = -1,  G = [-I; I],  h = [0; C],  A = y^T,  b = 0

    (the dual "maximize sum a - 1/2 sum a_i a_j y_i y_j K_ij, 0 <= a_i <= C_i, sum a_i y_i = 0"
    with the sign flipped).

    Returns:
        ``(alpha, b, dual_objective)``: alpha ``(N,)``, the bias by :func:`dual_intercept`, and
        ``sum alpha - 1/2 alpha^T P alpha`` (the maximized dual value).
    """
    cp = require("cvxpy", "reference", "cvxpy_dual")

    K = np.asarray(K, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    N = y.shape[0]
    if K.shape != (N, N):
        raise ValueError(f"Expected K of shape ({N}, {N}), got {K.shape}")
    Cv = np.broadcast_to(np.asarray(C, dtype=np.float64), (N,))
    P = np.outer(y, y) * K
    P = (P + P.T) / 2
    q = -np.ones(N)
    G = np.vstack([-np.eye(N), np.eye(N)])
    h = np.concatenate([np.zeros(N), Cv])
    A = y.reshape(1, N)
    b = np.zeros(1)
    a = cp.Variable(N)
    problem = cp.Problem(cp.Minimize(0.5 * cp.quad_form(a, cp.psd_wrap(P)) + q @ a), [G @ a <= h, A @ a == b])
    problem.solve()
    if problem.status not in ("optimal", "optimal_inaccurate"):
        raise RuntimeError(f"cvxpy could not solve the dual: status {problem.status}")
    alpha = np.clip(np.asarray(a.value), 0.0, Cv)
    return alpha, dual_intercept(K, y, alpha, Cv, tol=1e-6 * float(Cv.max())), float(-problem.value)


def cvxpylayers_dual(
    K: Tensor, y: Tensor, C: float | Tensor, *, jitter: float = 1e-9, solver_args: dict | None = None
) -> tuple[Tensor, Tensor]:
    """The kernel SVM dual as a differentiable cvxpylayers layer: the reference for ``svm_dual``'s backward.

    The dual is not DPP with K as a parameter (``quad_form(a, P)`` with P a parameter is not),
    so it is written in a factor form that is: with ``K + jitter I = L L^T`` (Cholesky, in
    torch, so the gradient reaches K) and ``F = L^T diag(y)``,

        maximize  1^T a - 1/2 ||F a||^2   subject to  0 <= a <= C,  y^T a = 0,

    F, C and y being the layer's parameters. The bias is the mean of ``y_i - sum_j a_j y_j K_ij``
    over the free support vectors, in torch ops. Small N only (the layer's cone program is
    dense in F, N x N), and as accurate as the conic solver (about 1e-6 here).

    Args:
        K: ``(N, N)`` PSD Gram matrix (may require grad).
        y: ``(N,)`` labels in {-1, +1}.
        C: positive scalar or ``(N,)`` costs (a tensor may require grad).
        jitter: added to K's diagonal so that the Cholesky factor exists.
        solver_args: passed to the layer (diffcp); default ``{"solve_method": "Clarabel"}``,
            an interior-point method, far more accurate here than diffcp's default SCS.

    Returns:
        ``(alpha (N,), b)``, differentiable through cvxpylayers' implicit backward.
    """
    cp = require("cvxpy", "reference", "cvxpylayers_dual")
    CvxpyLayer = require("cvxpylayers.torch", "reference", "cvxpylayers_dual").CvxpyLayer

    N = y.shape[0]
    if K.shape != (N, N):
        raise ValueError(f"Expected K of shape ({N}, {N}), got {tuple(K.shape)}")
    solver_args = {"solve_method": "Clarabel"} if solver_args is None else solver_args
    F_p, C_p, y_p = cp.Parameter((N, N)), cp.Parameter(N, nonneg=True), cp.Parameter(N)
    a = cp.Variable(N)
    problem = cp.Problem(cp.Maximize(cp.sum(a) - 0.5 * cp.sum_squares(F_p @ a)), [a >= 0, a <= C_p, y_p @ a == 0])
    layer = CvxpyLayer(problem, parameters=[F_p, C_p, y_p], variables=[a])
    eye = torch.eye(N, dtype=K.dtype, device=K.device)
    L = torch.linalg.cholesky((K + K.T) / 2 + jitter * eye)
    F = L.T * y.to(K.dtype)  # F a = L^T (y * a)
    C_vec = torch.as_tensor(C, dtype=K.dtype, device=K.device).expand(N)
    (alpha,) = layer(F, C_vec, y.to(K.dtype), solver_args=solver_args)
    Cd = C_vec.detach()
    free = (alpha.detach() > 1e-6 * Cd) & (alpha.detach() < (1 - 1e-6) * Cd)
    residual = y.to(K.dtype) - K @ (alpha * y.to(K.dtype))
    b = residual[free].mean() if bool(free.any()) else residual.mean()
    return alpha, b
