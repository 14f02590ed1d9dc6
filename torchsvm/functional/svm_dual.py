"""The kernel SVM dual as a differentiable Function: SMO forward, implicit-differentiation backward."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from torchsvm.solvers.dual import smo_dual
from torchsvm.validation import (
    check_finite,
    check_gram_and_labels,
    check_pm1_labels,
    check_positive,
    check_same_device,
    check_symmetric,
)

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
    # holds away from degenerate points (a_i at a bound with a zero KKT multiplier). Where M is
    # singular (more free SVs than the kernel's rank, duplicated samples) [u; v] is the
    # minimum-norm least-squares solution. With no free SV, b comes from LIBSVM's bound rule
    # and gets no gradient; alpha's still flows.
    # All B problems at once: each free set is padded to the largest with identity rows of M
    # and zero right-hand sides, so the padding solves to u = 0.
    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_alpha: Tensor | None, grad_b: Tensor | None) -> tuple:
        K, y, C, alpha = ctx.saved_tensors
        B, N = alpha.shape
        ga = torch.zeros_like(alpha) if grad_alpha is None else grad_alpha
        gb = alpha.new_zeros(B) if grad_b is None else grad_b
        free, upper = _free_set(alpha, C)
        n_free = free.sum(1)
        n = int(n_free.max())
        # Free indices first (stable sort keeps their order), then the padding.
        idx = torch.sort((~free).to(torch.int8), dim=1, stable=True).indices[:, :n]  # (B, n)
        valid = torch.arange(n, device=K.device) < n_free.unsqueeze(1)  # (B, n)
        yF = y.gather(1, idx) * valid
        rows = torch.arange(B, device=K.device).view(B, 1, 1)
        M = alpha.new_zeros(B, n + 1, n + 1)
        M[:, :n, :n] = yF.unsqueeze(2) * K[rows, idx.unsqueeze(2), idx.unsqueeze(1)] * yF.unsqueeze(1)
        M[:, :n, :n].diagonal(dim1=1, dim2=2).add_((~valid).to(K.dtype))
        M[:, :n, n] = yF
        M[:, n, :n] = yF
        uv = _min_norm_solve(M, torch.cat([ga.gather(1, idx) * valid, gb.unsqueeze(1)], 1))
        u = alpha.new_zeros(B, N).scatter_add_(1, idx, uv[:, :n] * valid)  # (B, N), 0 off F
        v = uv[:, n]
        grad_K = grad_C = None
        if ctx.needs_input_grad[0]:
            a_S = torch.where(free | upper, alpha, 0)
            dK = -(y * u).unsqueeze(2) * (y * a_S).unsqueeze(1)  # y y^T * dQ, dQ = -u a_S^T
            grad_K = (dK + dK.mT) / 2
        if ctx.needs_input_grad[2]:
            Qu = y * (K @ (y * u).unsqueeze(2)).squeeze(2)  # (Q u)_i; only F's u is nonzero
            grad_C = torch.where(upper, ga - Qu - y * v.unsqueeze(1), 0)
        return grad_K, None, grad_C, None, None


def _min_norm_solve(M: Tensor, rhs: Tensor) -> Tensor:
    """Minimum-norm least-squares solutions of the symmetric systems M x = rhs, ``(B, n, n)``, ``(B, n)``.

    Through the eigendecomposition: unlike ``torch.linalg.lstsq`` on CUDA (QR, full rank
    assumed) it stays right for a singular M, on every device.
    """
    lam, V = torch.linalg.eigh(M)
    cutoff = lam.abs().amax(1, keepdim=True) * M.shape[-1] * torch.finfo(M.dtype).eps
    inv = torch.where(lam.abs() > cutoff, 1 / lam, 0)
    return (V @ (inv * (V.mT @ rhs.unsqueeze(2)).squeeze(2)).unsqueeze(2)).squeeze(2)


def svm_dual(
    K: Tensor,
    y: Tensor,
    C: float | Tensor = 1.0,
    *,
    tol: float = 1e-5,
    max_iter: int | None = None,
    backend: Literal["smo", "cvxpylayers"] = "smo",
    validate: bool = True,
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
        validate: check the values of K (finite, symmetric), y (in {-1, +1}) and C (> 0): a few
            passes over K and four device syncs. A training loop whose inputs are right by
            construction passes False. Shapes and devices are checked either way.

    Returns:
        ``(alpha, b)``: ``(N,)`` and a 0-d tensor, or ``(B, N)`` and ``(B,)``.

    Raises:
        ValueError: K not square or not symmetric, labels outside {-1, +1}, C <= 0, NaN/inf.
    """
    Kb, Y, single = check_gram_and_labels(K, y)
    B, N = Kb.shape[0], Kb.shape[-1]
    check_same_device(K=K, y=y, C=C if isinstance(C, Tensor) else None)
    Ct = torch.as_tensor(C, dtype=K.dtype, device=K.device)
    if validate:
        check_finite("K", K)
        check_symmetric("K", Kb.detach())
        check_pm1_labels(Y)
        check_positive("C", C.detach() if isinstance(C, Tensor) else C)
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
