"""torchsvm: GPU support vector machines and hand-derived neural-network gradients in PyTorch."""

from torchsvm import functional, nn

__version__ = "0.1.0"

__all__ = ["functional", "nn", "__version__"]
