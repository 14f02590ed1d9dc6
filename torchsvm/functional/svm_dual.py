"""The kernel SVM dual as a differentiable Function: SMO forward, implicit-differentiation backward."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from torchsvm._validation import check_finite, check_floating, check_same_device, check_tensor
from torchsvm.functional.hinge import check_pm1_labels
from torchsvm.solvers.dual import smo_dual

__all__ = ["SVMDualFunction", "svm_dual"]


def _free_set(alpha: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    """Free support vectors (0 < a < C) and those at the upper bound, with a relative margin."""
    eps = 1e-8 * C
    at_upper = alpha >= C - eps
    free = (alpha > eps) & ~at_upper
    return free, at_upper


class SVMDualFunction(torch.autograd.Function):
    """``(alpha, b) = argmax_a sum a - 1/2 a^T (y y^T * K) a`` s.t. ``0 <= a <= C``, ``y^T a = 0``.

    Inputs are batched: ``K`` ``(B, N, N)``, ``y`` ``(B, N)``, ``C`` ``(B, N)``; outputs
    ``alpha`` ``(B, N)`` and ``b`` ``(B,)``.
    """

    @staticmethod
    def forward(K: Tensor, y: Tensor, C: Tensor, tol: float, max_iter: int | None) -> tuple[Tensor, Tensor]:
        result = smo_dual(K, y, C, tol=tol, max_iter=max_iter)
        return result.alpha, result.b

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple[Tensor, Tensor]) -> None:
        K, y, C, _, _ = inputs
        alpha, b = output
        ctx.save_for_backward(K, y, C, alpha)

    # Implicit differentiation of the KKT conditions that hold on the active set. With F the
    # free SVs (0 < a_i < C_i), U those at C_i (a_U = C_U) and Q = y y^T * K, the solution obeys
    #   Q_FF a_F + y_F b = 1_F - Q_FU C_U,     y_F^T a_F = -y_U^T C_U,
    # a linear system M [a_F; b] = r with M = [[Q_FF, y_F], [y_F^T, 0]] (symmetric). For upstream
    # gradients (g_a, g_b), solve M [u; v] = [g_a,F; g_b] once; then, with a_j = C_j on U,
    #   dL/dQ_ij = -u_i a_j  (i in F, j in F u U),  dL/dK = sym(y y^T * dL/dQ)  (N, N)
    #   dL/dC_U  = g_a,U - Q_UF u - y_U v         (N,), zero on F and on a = 0.
    # Samples at a bound are taken to stay there (the active set is locally constant), which
    # holds away from degenerate points (a_i at a bound with a zero KKT multiplier). With no
    # free SV, b comes from LIBSVM's bound rule and gets no gradient; alpha's still flows.
    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_alpha: Tensor | None, grad_b: Tensor | None) -> tuple:
        K, y, C, alpha = ctx.saved_tensors
        grad_K = torch.zeros_like(K) if ctx.needs_input_grad[0] else None
        grad_C = torch.zeros_like(C) if ctx.needs_input_grad[2] else None
        ga = torch.zeros_like(alpha) if grad_alpha is None else grad_alpha
        gb = torch.zeros(alpha.shape[0], dtype=alpha.dtype, device=alpha.device) if grad_b is None else grad_b
        for k in range(alpha.shape[0]):  # each problem has its own active set
            free, upper = _free_set(alpha[k], C[k])
            F = free.nonzero().squeeze(1)
            S = (free | upper).nonzero().squeeze(1)  # F u U: the a_j that enter the system
            U = upper.nonzero().squeeze(1)
            yk = y[k]
            Q = yk.unsqueeze(1) * K[k] * yk.unsqueeze(0)
            if F.numel() > 0:
                nF = F.numel()
                M = torch.zeros(nF + 1, nF + 1, dtype=K.dtype, device=K.device)
                M[:nF, :nF] = Q[F][:, F]
                M[:nF, nF] = yk[F]
                M[nF, :nF] = yk[F]
                rhs = torch.cat([ga[k, F], gb[k].reshape(1)])
                uv = torch.linalg.lstsq(M, rhs.unsqueeze(1)).solution.squeeze(1)  # M may be singular
                u, v = uv[:nF], uv[nF]
            else:
                u = torch.zeros(0, dtype=K.dtype, device=K.device)
                v = torch.zeros((), dtype=K.dtype, device=K.device)
            if grad_K is not None and F.numel() > 0:
                dQ = torch.zeros_like(K[k])
                dQ[F.unsqueeze(1), S.unsqueeze(0)] = -u.unsqueeze(1) * alpha[k, S].unsqueeze(0)
                dK = yk.unsqueeze(1) * dQ * yk.unsqueeze(0)
                grad_K[k] = (dK + dK.t()) / 2
            if grad_C is not None and U.numel() > 0:
                coupling = Q[U][:, F] @ u if F.numel() > 0 else torch.zeros(U.numel(), dtype=K.dtype, device=K.device)
                grad_C[k, U] = ga[k, U] - coupling - yk[U] * v
        return grad_K, None, grad_C, None, None


def svm_dual(
    K: Tensor,
    y: Tensor,
    C: float | Tensor = 1.0,
    *,
    tol: float = 1e-5,
    max_iter: int | None = None,
    backend: Literal["smo", "cvxpylayers"] = "smo",
) -> tuple[Tensor, Tensor]:
    """Solve the kernel SVM dual, differentiably in ``K`` and a tensor ``C``.

        maximize  sum_i a_i - 1/2 sum_ij a_i a_j y_i y_j K_ij
        subject to 0 <= a_i <= C_i,  sum_i a_i y_i = 0

    The classifier is f(x) = sum_i a_i y_i K(x_i, x) + b. Gradients flow through K to whatever
    built it (X, a kernel's gamma): the backward differentiates the KKT conditions on the free
    support vectors (see :class:`SVMDualFunction`). This version solves with an in-memory Gram
    matrix (:func:`torchsvm.solvers.dual.smo_dual`).

    Args:
        K: ``(N, N)`` or batched ``(B, N, N)`` symmetric PSD Gram matrix.
        y: ``(N,)`` or ``(B, N)`` labels in {-1, +1}.
        C: positive scalar, per-sample ``(N,)`` (C0 for y = -1, C1 for y = +1: asymmetric
            costs) or ``(B, N)``; a tensor gets a gradient.
        tol: stopping tolerance on the KKT violation; small, since the backward assumes the
            optimality conditions hold.
        max_iter: SMO steps; running out warns (``ConvergenceWarning``).
        backend: ``"smo"`` (this Function) or ``"cvxpylayers"``: the same problem as a
            cvxpylayers layer (:func:`torchsvm.solvers.reference.cvxpylayers_dual`), a slow
            reference for small N whose gradients come from cvxpylayers' own backward.

    Returns:
        ``(alpha, b)``: ``(N,)`` and a 0-d tensor, or ``(B, N)`` and ``(B,)``.

    Raises:
        ValueError: K not square or not symmetric, labels outside {-1, +1}, C <= 0, NaN/inf.
    """
    check_tensor("K", K)
    check_tensor("y", y)
    check_floating("K", K)
    if K.ndim not in (2, 3) or K.shape[-1] != K.shape[-2]:
        raise ValueError(f"Expected a square K of shape (N, N) or (B, N, N), got shape {tuple(K.shape)}")
    single = K.ndim == 2
    Kb = K.unsqueeze(0) if single else K
    B, N = Kb.shape[0], Kb.shape[-1]
    Y = y.reshape(1, -1) if y.ndim == 1 else y
    if Y.shape[-1] != N or Y.shape[0] not in (1, B):
        raise ValueError(f"Expected y of shape ({N},) or ({B}, {N}) to match K {tuple(K.shape)}, got {tuple(y.shape)}")
    check_same_device(K=K, y=y, C=C if isinstance(C, Tensor) else None)
    check_finite("K", K)
    asym = float((Kb - Kb.mT).detach().abs().max())
    if asym > 1e-6 * max(1.0, float(Kb.detach().abs().max())):
        raise ValueError(f"Expected a symmetric K, got max |K - K^T| = {asym:.3g}")
    check_pm1_labels(Y)
    Ct = torch.as_tensor(C, dtype=K.dtype, device=K.device)
    if not bool((Ct.detach() > 0).all()):
        raise ValueError(f"Expected C > 0, got minimum {float(Ct.detach().min()):.4g}")
    Ct = Ct.expand(B, N) if Ct.ndim < 2 else Ct
    if backend == "cvxpylayers":
        from torchsvm.solvers.reference import cvxpylayers_dual

        Yb = Y.to(K.dtype).expand(B, N)
        solved = [cvxpylayers_dual(Kb[k], Yb[k], Ct[k]) for k in range(B)]
        alpha, b = torch.stack([a for a, _ in solved]), torch.stack([b for _, b in solved])
        return (alpha[0], b[0]) if single else (alpha, b)
    if backend != "smo":
        raise ValueError(f"Expected backend to be 'smo' or 'cvxpylayers', got {backend!r}")
    alpha, b = SVMDualFunction.apply(Kb, Y.to(K.dtype).expand(B, N), Ct, tol, max_iter)
    return (alpha[0], b[0]) if single else (alpha, b)
