"""``nn.Module`` wrappers around the hand-written Functions."""

from __future__ import annotations

import torch
from torch import Tensor

from torchsvm import functional as F

__all__ = ["Linear", "ReLU", "TwoLayerNet"]


class Linear(torch.nn.Linear):
    """Drop-in for ``torch.nn.Linear`` whose forward and backward are :class:`LinearFunction`.

    Subclassing keeps torch's initialization, parameter names (``weight``, ``bias``) and
    state_dict layout, so checkpoints move between the two freely.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)


class ReLU(torch.nn.Module):
    """Drop-in for ``torch.nn.ReLU()`` (not in place) using :class:`ReLUFunction`."""

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)


class TwoLayerNet(torch.nn.Module):
    """``FC -> ReLU -> FC``: returns logits; train it with :func:`torchsvm.functional.cross_entropy`.

    Args:
        in_features: input size; images are flattened, so ``(N, 1, 28, 28)`` needs 784.
        hidden_features: width of the hidden layer.
        num_classes: number of output logits.

    Shape:
        input ``(N, *)`` with ``prod(*) == in_features``; output ``(N, num_classes)``.
    """

    def __init__(self, in_features: int = 784, hidden_features: int = 1024, num_classes: int = 10) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("hidden_features", hidden_features),
                            ("num_classes", num_classes)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected {name} to be a positive int, got {value!r}")
        self.in_features = in_features
        self.num_classes = num_classes
        self.fc1 = Linear(in_features, hidden_features)
        self.relu = ReLU()
        self.fc2 = Linear(hidden_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)  # (N, in_features)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"Expected inputs with {self.in_features} features per sample, "
                f"got {x.shape[1]} (input shape {tuple(x.shape)})"
            )
        return self.fc2(self.relu(self.fc1(x)))
