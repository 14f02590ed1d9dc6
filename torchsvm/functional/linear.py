"""Fully-connected layer ``Y = X W^T + b`` with a hand-written backward."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from torchsvm.functional._amp import autocast_dtype, cast_floating
from torchsvm.validation import check_floating, check_ndim, check_same_device, check_same_dtype, check_tensor

__all__ = ["LinearFunction", "linear"]


class LinearFunction(torch.autograd.Function):
    """``Y = X W^T + b`` for ``X`` of shape ``(*, in)``, ``W`` ``(out, in)``, ``b`` ``(out,)``."""

    @staticmethod
    def forward(input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        X = input.reshape(-1, input.shape[-1])  # (M, in); a view when input is contiguous
        # addmm fuses the bias into the GEMM; weight.t() is a view that BLAS reads transposed.
        Y = torch.addmm(bias, X, weight.t()) if bias is not None else X.mm(weight.t())
        return Y.reshape(*input.shape[:-1], weight.shape[0])

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, Tensor | None], output: Tensor) -> None:
        input, weight, bias = inputs
        ctx.save_for_backward(input, weight)
        ctx.has_bias = bias is not None

    # With X flattened to (M, in) and dY to (M, out):
    #   dL/dX = dY W          (M, in)
    #   dL/dW = dY^T X        (out, in)
    #   dL/db = sum_m dY[m]   (out,)
    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        input, weight = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None
        dY = grad_output.reshape(-1, weight.shape[0])  # (M, out)
        if ctx.needs_input_grad[0]:
            grad_input = dY.mm(weight).reshape(input.shape)
        if ctx.needs_input_grad[1]:
            grad_weight = dY.t().mm(input.reshape(-1, input.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = dY.sum(0)
        return grad_input, grad_weight, grad_bias


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Affine map ``input @ weight.T + bias``, same semantics as ``torch.nn.functional.linear``.

    Under ``torch.autocast`` the computation runs in the autocast dtype, as torch's does.

    Args:
        input: ``(*, in_features)``.
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or None.

    Returns:
        ``(*, out_features)``.

    Raises:
        TypeError: a non-tensor, a non-floating dtype, or dtypes that differ.
        ValueError: shapes that do not fit together, or tensors on different devices.

    Example:
        >>> X, W, b = torch.randn(4, 3), torch.randn(2, 3), torch.randn(2)
        >>> linear(X, W, b).shape
        torch.Size([4, 2])
    """
    check_tensor("input", input)
    check_tensor("weight", weight)
    if bias is not None:
        check_tensor("bias", bias)
    check_ndim("weight", weight, 2, "(out_features, in_features)")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"Expected input of shape (*, {weight.shape[1]}) to match weight of shape "
            f"{tuple(weight.shape)}, got input of shape {tuple(input.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"Expected bias of shape ({weight.shape[0]},), got shape {tuple(bias.shape)}")
    check_same_device(input=input, weight=weight, bias=bias)
    amp = autocast_dtype(input)
    input, weight, bias = cast_floating(input, amp), cast_floating(weight, amp), cast_floating(bias, amp)
    check_floating("input", input)
    check_same_dtype(input=input, weight=weight, bias=bias)
    return LinearFunction.apply(input, weight, bias)
