"""Functional interface: each op is a ``torch.autograd.Function`` with a hand-written backward."""

from torchsvm.functional.crammer_singer import CrammerSingerFunction, crammer_singer_dual
from torchsvm.functional.cross_entropy import CrossEntropyFunction, cross_entropy
from torchsvm.functional.hinge import HingeObjectiveFunction, hinge_objective
from torchsvm.functional.linear import LinearFunction, linear
from torchsvm.functional.relu import ReLUFunction, relu
from torchsvm.functional.svm_dual import SVMDualFunction, svm_dual

__all__ = [
    "CrammerSingerFunction",
    "CrossEntropyFunction",
    "HingeObjectiveFunction",
    "LinearFunction",
    "ReLUFunction",
    "SVMDualFunction",
    "crammer_singer_dual",
    "cross_entropy",
    "hinge_objective",
    "linear",
    "relu",
    "svm_dual",
]
