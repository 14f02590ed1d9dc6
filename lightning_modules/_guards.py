"""A NaN/inf training loss stops training, without a device sync at every step."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class FiniteLossGuard:
    """``_guard_loss(loss, batch_idx, advice)`` in ``training_step``; ``_check_pending_loss()`` at epoch end.

    Whether the loss is finite is kept as a device flag and read at the next training step (the
    device has computed it by then, so no step waits), at the end of the epoch and before a
    checkpoint is written. The ``FloatingPointError`` names the step whose loss went bad; no
    checkpoint is written after it, and what was written before stays on disk.
    """

    _pending_loss: tuple | None = None

    def _guard_loss(self, loss: Tensor, batch_idx: int, advice: str) -> None:
        self._check_pending_loss()
        where = (self.current_epoch, batch_idx, self.global_step)
        self._pending_loss = (torch.isfinite(loss.detach()), loss.detach(), where, advice)

    def _check_pending_loss(self) -> None:
        pending, self._pending_loss = self._pending_loss, None
        if pending is not None and not bool(pending[0]):
            _, loss, (epoch, batch_idx, step), advice = pending
            raise FloatingPointError(
                f"Training loss became {float(loss)} at epoch {epoch}, batch {batch_idx} (global step {step}). {advice}"
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._check_pending_loss()
