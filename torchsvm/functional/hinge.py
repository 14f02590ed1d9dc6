"""Soft-margin SVM primal objective with the hinge loss, as a Function with a hand-written backward."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from torchsvm.validation import (
    check_finite,
    check_floating,
    check_ndim,
    check_pm1_labels,
    check_same_device,
    check_same_dtype,
    check_tensor,
    per_sample_costs,
)

__all__ = ["HingeObjectiveFunction", "hinge_objective"]


class HingeObjectiveFunction(torch.autograd.Function):
    """``E_k = 1/2 ||w_k||^2 + sum_i C_ik max(0, 1 - y_ik (x_i . w_k + b_k))`` for each column k.

    Inputs are already 2-D: ``X`` ``(N, D)``, ``y`` ``(N, K)``, ``w`` ``(D, K)``, ``b`` ``(K,)``,
    ``C`` ``(N, K)``. Outputs ``E`` ``(K,)`` and the margin-violation mask ``m < 1`` ``(N, K)``
    (not differentiable), which backward reuses instead of a second product with X.
    """

    @staticmethod
    def forward(X: Tensor, y: Tensor, w: Tensor, b: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
        margins = y * torch.addmm(b, X, w)  # y_ik f_k(x_i), (N, K)
        hinge = (1 - margins).clamp_min(0)
        return 0.5 * (w * w).sum(0) + (C * hinge).sum(0), margins < 1

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, ...], output: tuple[Tensor, Tensor]) -> None:
        X, y, w, b, C = inputs
        _, violated = output
        ctx.mark_non_differentiable(violated)
        ctx.save_for_backward(X, y, w, b, C, violated)

    # With m_ik = y_ik (x_i . w_k + b_k), the indicator a_ik = 1[m_ik < 1] (subgradient 0 at
    # m = 1 exactly) and r = C * a * y  (N, K), for an upstream gradient g (K,):
    #   dE/dw = (w - X^T r) g          (D, K)
    #   dE/db = -(sum_i r_ik) g        (K,)
    #   dE/dX = -(r * g) w^T           (N, D)
    #   dE/dC = max(0, 1 - m) g        (N, K)
    # y holds labels and gets no gradient. The mask a is saved (one byte per entry); only dE/dC
    # needs the margins themselves, and recomputes them.
    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor, _grad_violated: Tensor | None) -> tuple[Tensor | None, ...]:
        X, y, w, b, C, violated = ctx.saved_tensors
        grad_X = grad_w = grad_b = grad_C = None
        r = C * violated.to(X.dtype) * y  # (N, K)
        rg = r * grad_output  # (N, K)
        if ctx.needs_input_grad[0]:
            grad_X = -rg.mm(w.t())
        if ctx.needs_input_grad[2]:
            grad_w = w * grad_output - X.t().mm(rg)
        if ctx.needs_input_grad[3]:
            grad_b = -rg.sum(0)
        if ctx.needs_input_grad[4]:
            grad_C = (1 - y * torch.addmm(b, X, w)).clamp_min(0) * grad_output
        return grad_X, None, grad_w, grad_b, grad_C


def hinge_objective(
    X: Tensor, y: Tensor, w: Tensor, b: Tensor | float, C: float | Tensor = 1.0, *, validate: bool = True
) -> Tensor:
    """Soft-margin SVM primal objective, ``1/2 ||w||^2 + sum_i C_i max(0, 1 - y_i (w . x_i + b))``.

    ``b`` is not regularized. Several one-vs-rest problems are evaluated at once when ``w`` has
    a column per problem.

    Args:
        X: ``(N, D)`` samples.
        y: ``(N,)`` labels in {-1, +1}, or ``(N, K)`` for K problems.
        w: ``(D,)`` weights, or ``(D, K)``.
        b: scalar / 0-d bias, or ``(K,)``.
        C: a positive scalar, per-sample costs ``(N,)`` (e.g. C0 for y = -1 and C1 for y = +1:
            the asymmetric-cost SVM), or ``(N, K)``.
        validate: check the values of y (in {-1, +1}), a tensor C (> 0) and X (finite): three
            device syncs. A training loop whose data were checked once passes False, so its
            steps never wait for the device. Shapes, dtypes and devices are checked either way.

    Returns:
        The objective: a scalar for ``(D,)`` weights, ``(K,)`` for ``(D, K)``.

    Raises:
        ValueError: labels outside {-1, +1}, C <= 0, NaN/inf in X, shapes that disagree.
        TypeError: a non-tensor or a non-floating X.
    """
    for name, t in (("X", X), ("y", y), ("w", w)):
        check_tensor(name, t)
    check_ndim("X", X, 2, "(N, D)")
    check_ndim("w", w, (1, 2), "(D,) or (D, K)")
    check_floating("X", X)
    single = w.ndim == 1
    W = w.unsqueeze(1) if single else w  # (D, K)
    Y = y.unsqueeze(1) if y.ndim == 1 else y  # (N, K)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0] or Y.shape[1] != W.shape[1]:
        raise ValueError(
            f"Expected y of shape ({X.shape[0]},) or ({X.shape[0]}, K) matching X {tuple(X.shape)} and "
            f"w {tuple(w.shape)}, got y of shape {tuple(y.shape)}"
        )
    if W.shape[0] != X.shape[1]:
        raise ValueError(f"Expected w with {X.shape[1]} rows to match X {tuple(X.shape)}, got {tuple(w.shape)}")
    if X.shape[0] == 0:
        raise ValueError("Expected at least one sample, got X with 0 rows")
    if not isinstance(b, Tensor):
        b = torch.tensor(float(b), dtype=X.dtype, device=X.device)
    B = b.reshape(1).expand(W.shape[1]) if b.ndim == 0 else b  # (K,)
    if tuple(B.shape) != (W.shape[1],):
        raise ValueError(f"Expected b to be a scalar or ({W.shape[1]},), got shape {tuple(b.shape)}")
    check_same_device(X=X, y=y, w=w, b=b, C=C if isinstance(C, Tensor) else None)
    check_same_dtype(X=X, w=w, b=b)
    if validate:
        check_pm1_labels(Y)
        check_finite("X", X)
    Cs = per_sample_costs(C, Y.to(X.dtype), validate)
    out, _ = HingeObjectiveFunction.apply(X, Y.to(X.dtype), W, B, Cs.to(X.dtype))
    return out[0] if single else out
