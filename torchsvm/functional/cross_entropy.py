"""Softmax cross-entropy (softmax + negative log-likelihood) as one Function."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from torchsvm.functional._amp import autocast_dtype
from torchsvm.validation import check_floating, check_ndim, check_same_device, check_tensor

__all__ = ["CrossEntropyFunction", "cross_entropy"]

Reduction = Literal["mean", "sum", "none"]


class CrossEntropyFunction(torch.autograd.Function):
    """``l_n = -log softmax(z_n)[t_n]`` for logits ``z`` ``(N, C)`` and targets ``t`` ``(N,)``."""

    @staticmethod
    def forward(logits: Tensor, target: Tensor, reduction: str) -> Tensor:
        # Stable log-softmax: subtracting the row max keeps exp() <= 1.
        shifted = logits - logits.amax(dim=1, keepdim=True)
        log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
        losses = -log_probs.gather(1, target.unsqueeze(1)).squeeze(1)  # (N,)
        if reduction == "mean":
            return losses.mean()
        if reduction == "sum":
            return losses.sum()
        return losses

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, str], output: Tensor) -> None:
        logits, target, reduction = inputs
        ctx.save_for_backward(logits, target)
        ctx.reduction = reduction

    # p = softmax(z), Y = onehot(t), both (N, C):
    #   dl_n/dz_n = p_n - Y_n
    #   mean: dL/dz = g (p - Y) / N;  sum: dL/dz = g (p - Y);  none: dL/dz = g[:, None] (p - Y)
    # Softmax is recomputed from the logits (one fused pass) instead of kept from forward,
    # which saves an (N, C) buffer between the passes.
    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, None, None]:
        logits, target = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        grad = torch.softmax(logits, dim=1)  # p, (N, C)
        grad.scatter_add_(1, target.unsqueeze(1), grad.new_full((grad.shape[0], 1), -1.0))  # p - Y
        if ctx.reduction == "mean":
            grad.mul_(grad_output / logits.shape[0])
        elif ctx.reduction == "sum":
            grad.mul_(grad_output)
        else:
            grad.mul_(grad_output.unsqueeze(1))
        return grad, None, None


def cross_entropy(logits: Tensor, target: Tensor, reduction: Reduction = "mean", *, validate: bool = True) -> Tensor:
    """Softmax cross-entropy, the same value as ``torch.nn.functional.cross_entropy``.

    Under ``torch.autocast`` it runs in float32, as torch's cross-entropy does.

    Args:
        logits: ``(N, C)`` unnormalized scores.
        target: ``(N,)`` class indices in ``[0, C)`` (integer dtype).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        validate: check that the targets lie in ``[0, C)``: one device sync. A training loop
            whose labels were checked once passes False, so its steps never wait for the device
            (an index out of range then fails inside the gather: a device-side assert on CUDA).

    Returns:
        A scalar, or ``(N,)`` for ``reduction="none"``.

    Raises:
        TypeError: a non-tensor, non-floating logits or non-integer targets.
        ValueError: mismatched shapes or devices, targets outside ``[0, C)``, an unknown reduction.
    """
    check_tensor("logits", logits)
    check_tensor("target", target)
    check_ndim("logits", logits, 2, "(N, C)")
    check_ndim("target", target, 1, "(N,)")
    check_floating("logits", logits)
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"Expected reduction to be 'mean', 'sum' or 'none', got {reduction!r}")
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise TypeError(f"Expected target to hold integer class indices, got dtype {target.dtype}")
    if target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"Expected target of shape ({logits.shape[0]},) to match logits of shape "
            f"{tuple(logits.shape)}, got target of shape {tuple(target.shape)}"
        )
    check_same_device(logits=logits, target=target)
    n_classes = logits.shape[1]
    # One device sync; torch would otherwise fail with an opaque device-side assert on CUDA.
    if validate and target.numel() and bool(((target < 0) | (target >= n_classes)).any()):
        bad = target[(target < 0) | (target >= n_classes)]
        raise ValueError(
            f"Expected target class indices in [0, {n_classes - 1}], "
            f"got values {sorted(set(bad.tolist()))[:5]}"
        )
    if autocast_dtype(logits) is not None:
        logits = logits.float()
    return CrossEntropyFunction.apply(logits, target.long(), reduction)
