"""Metrics shared by the LightningModules, right under DDP: means over all samples of all ranks."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torchmetrics import MeanMetric


def log_hp_metric(module: Any, key: str) -> None:
    """Log ``hp_metric`` (TensorBoard's hyperparameter view) as the validation figure ``key`` at each
    validation epoch end; ``key`` is synced over the ranks already, so the mean changes nothing."""
    if not module.trainer.sanity_checking and key in module.trainer.callback_metrics:
        module.log("hp_metric", module.trainer.callback_metrics[key], sync_dist=True)


class StageMeans:
    """``_log_mean(name, value, weight)``: log the running mean of ``value`` (a batch's mean over
    ``weight`` samples) with a torchmetrics ``MeanMetric``, so the epoch's figure is the mean over
    every sample of every rank (synced once, when computed), whatever the number of processes."""

    def _log_mean(self, name: str, value: Tensor, weight: int, **log_kwargs: Any) -> None:
        means = self._modules.get("_stage_means")  # nn.Module keeps submodules in _modules
        if means is None:
            means = self._stage_means = nn.ModuleDict()  # registered: moves with the module
        if name not in means:
            means[name] = MeanMetric().to(self.device)
        metric = means[name]
        metric(value.detach(), weight)
        # Created lazily, after Lightning indexed the module's metrics: name the attribute.
        self.log(name, metric, batch_size=weight, metric_attribute=f"_stage_means.{name}",
                 **{"on_epoch": True, **log_kwargs})


class ArgmaxEvaluation(StageMeans):
    """``validation_step``/``test_step`` log ``val_acc``/``test_acc`` (and ``hp_metric`` = val_acc) and
    ``predict_step`` returns class indices, all from ``self(x)``: decision values ``(B, K)``, the largest wins."""

    def _accuracy(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x, y = batch
        acc = (self(x).argmax(dim=1) == y).float().mean()
        self._log_mean(f"{stage}_acc", acc, len(y), prog_bar=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._accuracy(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._accuracy(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x).argmax(dim=1)

    def on_validation_epoch_end(self) -> None:
        log_hp_metric(self, "val_acc")
