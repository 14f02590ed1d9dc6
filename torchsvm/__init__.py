"""torchsvm: GPU support vector machines and hand-derived neural-network gradients in PyTorch."""

from torchsvm import functional, nn
from torchsvm.svm import SVC, SVR, LinearSVC, LinearSVR, NuSVC, NuSVR, OneClassSVM

__version__ = "0.1.0"

__all__ = ["LinearSVC", "LinearSVR", "NuSVC", "NuSVR", "OneClassSVM", "SVC", "SVR", "functional", "nn", "__version__"]
