"""Lightning wrappers: every torchsvm model as a LightningModule, the MNIST DataModule, the CLI."""

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
