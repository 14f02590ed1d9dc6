"""Estimators with the scikit-learn API, solved with torch on the CPU or a GPU."""

from torchsvm.solvers._smo_numba import warm_up
from torchsvm.svm._base import BaseLibSVM, resolve_device
from torchsvm.svm._classes import SVC, SVR, NuSVC, NuSVR, OneClassSVM
from torchsvm.svm._linear import LinearSVC, LinearSVR

__all__ = ["BaseLibSVM", "LinearSVC", "LinearSVR", "NuSVC", "NuSVR", "OneClassSVM", "SVC", "SVR", "resolve_device"]

warm_up()  # numba's one-time set-up here rather than in the first fit
