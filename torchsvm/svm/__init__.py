"""Estimators with the scikit-learn API, solved with torch on the CPU or a GPU."""

from torchsvm.svm._base import BaseLibSVM
from torchsvm.svm._classes import SVC, SVR, NuSVC, NuSVR, OneClassSVM
from torchsvm.svm._inputs import fit_device, resolve_device
from torchsvm.svm._linear import LinearSVC, LinearSVR

__all__ = ["BaseLibSVM", "LinearSVC", "LinearSVR", "NuSVC", "NuSVR", "OneClassSVM", "SVC", "SVR", "fit_device", "resolve_device"]
