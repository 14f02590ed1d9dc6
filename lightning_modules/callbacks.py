"""Callbacks shared by the training scripts."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

__all__ = ["TestAccuracyPerEpoch"]


class TestAccuracyPerEpoch(pl.Callback):
    """Log ``test_acc_epoch``: accuracy on the datamodule's test split after every training epoch.

    The training plot shows test accuracy per epoch; validation stays the held-out split used for
    model selection, and this is only watched. The module must return logits from ``forward``.
    """

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.datamodule.setup("test")

    @torch.no_grad()
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        was_training = pl_module.training
        pl_module.eval()
        correct = total = 0
        for x, y in trainer.datamodule.test_dataloader():
            x, y = x.to(pl_module.device), y.to(pl_module.device)
            correct += int((pl_module(x).argmax(dim=1) == y).sum())
            total += len(y)
        pl_module.train(was_training)
        pl_module.log("test_acc_epoch", correct / max(total, 1), on_epoch=True)
