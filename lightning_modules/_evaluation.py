"""Metrics shared by the LightningModules, right under DDP: means over all samples of all ranks."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric


def log_hp_metric(module: Any, key: str) -> None:
    """Log ``hp_metric`` (TensorBoard's hyperparameter view) as the validation figure ``key`` at each
    validation epoch end; ``key`` is synced over the ranks already, so the mean changes nothing."""
    if not module.trainer.sanity_checking and key in module.trainer.callback_metrics:
        module.log("hp_metric", module.trainer.callback_metrics[key], sync_dist=True)


class EpisodeMean(Metric):
    """The mean of per-episode accuracies, or (``ci95``) the half width of its 95% interval,
    1.96 s / sqrt(n), from the sums n, sum acc, sum acc^2 over every rank's episodes (shards may hold
    different numbers of episodes; torchmetrics sums them over the ranks when computed)."""

    full_state_update = False

    def __init__(self, ci95: bool = False) -> None:
        super().__init__()
        self.ci95 = ci95
        self.add_state("sums", default=torch.zeros(3, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, acc: Tensor) -> None:
        acc = acc.detach().double()
        self.sums += torch.stack([acc.new_tensor(float(acc.numel())), acc.sum(), (acc * acc).sum()])

    def compute(self) -> Tensor:
        n, total, squares = self.sums
        mean = total / n.clamp_min(1)
        if not self.ci95:
            return mean.float()
        var = (squares - n * mean * mean).clamp_min(0) / (n - 1).clamp_min(1)
        return (1.96 * var.sqrt() / n.clamp_min(1).sqrt()).float()


class StageMeans:
    """``_log_mean(name, value, weight)``: log the running mean of ``value`` (a batch's mean over
    ``weight`` samples) with a torchmetrics ``MeanMetric``, so the epoch's figure is the mean over
    every sample of every rank (synced once, when computed), whatever the number of processes.
    ``_log_episodes(name, acc)`` logs the mean of per-episode accuracies and ``name_ci95``
    (:class:`EpisodeMean`).

    Logged from the step, each figure belongs to the dataloader that step ran on: with several test
    loaders each loader's figures appear under that loader only (Lightning lists a figure logged at
    epoch end under every loader)."""

    def _reset_metrics(self, prefix: str) -> None:
        """Start a stage's figures from zero (a module tested again, or sent to spawned processes after a
        test in this one, carries the last run's states)."""
        for name, metric in (self._modules.get("_stage_means") or {}).items():
            if name.startswith(prefix):
                metric.reset()

    def _metric(self, name: str, make: Any) -> Metric:
        metrics = self._modules.get("_stage_means")  # nn.Module keeps submodules in _modules
        if metrics is None:
            metrics = self._stage_means = nn.ModuleDict()  # registered: moves with the module
        if name not in metrics:
            metrics[name] = make().to(self.device)
        return metrics[name]

    def _log_metric(self, name: str, metric: Metric, weight: int, **log_kwargs: Any) -> None:
        # Created lazily, after Lightning indexed the module's metrics: name the attribute.
        self.log(name, metric, batch_size=weight, metric_attribute=f"_stage_means.{name}",
                 **{"on_epoch": True, **log_kwargs})

    def _log_mean(self, name: str, value: Tensor, weight: int, **log_kwargs: Any) -> None:
        metric = self._metric(name, MeanMetric)
        metric(value.detach(), weight)
        self._log_metric(name, metric, weight, **log_kwargs)

    def _log_episodes(self, name: str, acc: Tensor, **log_kwargs: Any) -> None:
        for key, ci95 in ((name, False), (f"{name}_ci95", True)):
            metric = self._metric(key, lambda ci95=ci95: EpisodeMean(ci95))
            metric.update(acc)
            kwargs = {k: v for k, v in log_kwargs.items() if not (ci95 and k == "prog_bar")}  # the bar: means only
            self._log_metric(key, metric, acc.numel(), **kwargs)


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
