"""LightningModule training a network built from the hand-written layers."""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torch import Tensor, nn

from lightning_modules._evaluation import StageMeans, log_hp_metric
from lightning_modules._guards import FiniteLossGuard
from torchsvm.functional import cross_entropy
from torchsvm.nn import TwoLayerNet

__all__ = ["ClassifierModule", "tensorboard_writers"]


def tensorboard_writers(module: pl.LightningModule) -> list:
    """The SummaryWriters of the module's TensorBoard loggers (none when it has no trainer)."""
    try:
        loggers = module.loggers
    except RuntimeError:  # not attached to a Trainer
        return []
    return [lg.experiment for lg in loggers if isinstance(lg, TensorBoardLogger)]


class ClassifierModule(FiniteLossGuard, StageMeans, pl.LightningModule):
    """Softmax classifier trained with the hand-written cross-entropy.

    Args:
        model: the network, a plain ``nn.Module`` returning logits. None builds
            ``TwoLayerNet(784, hidden_features, num_classes)``.
        hidden_features: hidden width of the default network (unused when ``model`` is given).
        num_classes: classes of the default network.
        optimizer: ``"sgd"`` (with ``momentum``) or ``"adam"``.
        lr: learning rate.
        weight_decay: L2 penalty passed to the optimizer.
        momentum: SGD momentum.
        histogram_every_n_epochs: log weight and gradient histograms every this many epochs
            (0 turns them off).

    Logs ``train_loss`` (per step and epoch), ``train_acc``, ``val_loss``, ``val_acc``,
    ``test_loss``, ``test_acc``, ``hp_metric`` (= val_acc) and parameter/gradient histograms.
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        hidden_features: int = 1024,
        num_classes: int = 10,
        optimizer: Literal["sgd", "adam"] = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        histogram_every_n_epochs: int = 1,
    ) -> None:
        super().__init__()
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"Expected optimizer to be 'sgd' or 'adam', got {optimizer!r}")
        if lr <= 0:
            raise ValueError(f"Expected lr > 0, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"Expected weight_decay >= 0, got {weight_decay}")
        # The network object is no hyperparameter: a checkpoint stores its weights, not its init.
        self.save_hyperparameters(ignore=["model"])
        self.model = model if model is not None else TwoLayerNet(784, hidden_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def to_module(self, output: str = "decision_function") -> nn.Module:
        """The network as a plain torch module (flattened images in; ``decision_function``: the logits, or
        ``predict``: the class index), to export (``torchsvm export --ckpt``)."""
        layers: list[nn.Module] = [nn.Flatten(), self.model]
        if output == "predict":
            layers.append(_Argmax())
        elif output != "decision_function":
            raise ValueError(f"Expected output 'decision_function' or 'predict', got {output!r}")
        return nn.Sequential(*layers)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        logits = self.model(x)
        # Labels are checked once where they are loaded (torchsvm.data.load_images), not per step.
        loss = cross_entropy(logits, y, validate=False)
        acc = (logits.argmax(dim=1) == y).float().mean()
        # Epoch figures are means over all samples of all ranks (the same on 1 or N processes).
        self._log_mean(f"{stage}_loss", loss, len(y), on_step=stage == "train", prog_bar=True)
        self._log_mean(f"{stage}_acc", acc, len(y), on_step=False, prog_bar=stage != "train")
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        # Stop rather than train on NaN; what was written (checkpoints, logs) stays on disk.
        self._guard_loss(loss, batch_idx, f"Lower lr (now {self.hparams.lr}) or check the inputs for NaN/inf.")
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.model(x).argmax(dim=1)

    def on_validation_epoch_end(self) -> None:
        log_hp_metric(self, "val_acc")

    def _log_histograms(self, kind: Literal["weights", "grads"]) -> None:
        every = self.hparams.histogram_every_n_epochs
        if every <= 0 or self.current_epoch % every != 0:
            return
        for writer in tensorboard_writers(self):
            for name, p in self.model.named_parameters():
                value = p if kind == "weights" else p.grad
                if value is not None:
                    writer.add_histogram(f"{kind}/{name}", value.detach().float().cpu(), self.current_epoch)

    def on_after_backward(self) -> None:
        # Gradients of the last batch of the epoch: one histogram per epoch, not per step.
        if self.trainer.is_last_batch:
            self._log_histograms("grads")

    def on_train_epoch_end(self) -> None:
        self._check_pending_loss()
        self._log_histograms("weights")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        h = self.hparams
        if h.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=h.lr, momentum=h.momentum, weight_decay=h.weight_decay)
        return torch.optim.Adam(self.parameters(), lr=h.lr, weight_decay=h.weight_decay)


class _Argmax(nn.Module):
    """The class index of the largest logit."""

    def forward(self, logits: Tensor) -> Tensor:
        return logits.argmax(1)
