"""Lightning wrappers: every torchsvm model as a LightningModule, the MNIST DataModule, the CLI.

Needs the ``lightning`` extra (``pip install 'torchsvm-gpu[lightning]'``)."""

try:
    import jsonargparse  # noqa: F401
    import pytorch_lightning  # noqa: F401
    import tensorboard  # noqa: F401
    import torchmetrics  # noqa: F401
except ImportError as err:
    from torchsvm.optional import require

    require(err.name or "pytorch_lightning", "lightning", "lightning_modules (the LightningModules and the torchsvm command)")

from lightning_modules import _exit, _quiet
from lightning_modules.callbacks import TestAccuracyPerEpoch
from lightning_modules.classifier import ClassifierModule
from lightning_modules.data import LIBSVMDataModule, MNISTDataModule, RegressionDataModule
from lightning_modules.few_shot import EpisodeDataModule, FewShotModule
from lightning_modules.kernel_svm import KernelSVMModule, KernelSVRModule
from lightning_modules.linear_svm import LinearSVMModule

_quiet.install()  # before any trainer speaks: its cloud advert and a third-party deprecation, nothing else
_exit.install()  # a live gloo group at exit aborts the process now and then

__all__ = [
    "ClassifierModule",
    "EpisodeDataModule",
    "FewShotModule",
    "KernelSVMModule",
    "KernelSVRModule",
    "LIBSVMDataModule",
    "LinearSVMModule",
    "MNISTDataModule",
    "RegressionDataModule",
    "TestAccuracyPerEpoch",
]
