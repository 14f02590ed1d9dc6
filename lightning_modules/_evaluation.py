"""Evaluation steps shared by the SVM LightningModules: accuracy and class predictions from decisions."""

from __future__ import annotations

from typing import Any

from torch import Tensor


class ArgmaxEvaluation:
    """``validation_step``/``test_step`` log ``val_acc``/``test_acc`` and ``predict_step`` returns
    class indices, all from ``self(x)``: decision values ``(B, K)``, the largest wins."""

    def _accuracy(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x, y = batch
        acc = (self(x).argmax(dim=1) == y).float().mean()
        self.log(f"{stage}_acc", acc, on_epoch=True, prog_bar=True, batch_size=len(y))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._accuracy(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._accuracy(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x).argmax(dim=1)
