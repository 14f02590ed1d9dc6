"""Functional interface: each op is a ``torch.autograd.Function`` with a hand-written backward."""

from torchsvm.functional.cross_entropy import CrossEntropyFunction, cross_entropy
from torchsvm.functional.hinge import HingeObjectiveFunction, hinge_objective
from torchsvm.functional.linear import LinearFunction, linear
from torchsvm.functional.relu import ReLUFunction, relu

__all__ = [
    "CrossEntropyFunction",
    "HingeObjectiveFunction",
    "LinearFunction",
    "ReLUFunction",
    "cross_entropy",
    "hinge_objective",
    "linear",
    "relu",
]
