"""LightningModule training a one-vs-rest linear SVM with the hand-written hinge objective."""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from lightning_modules._evaluation import ArgmaxEvaluation
from lightning_modules._guards import FiniteLossGuard
from lightning_modules.data import shard_loader
from torchsvm.functional import hinge_objective
from torchsvm.svm.modules import DecisionHead
from torchsvm.svm.modules import LinearSVMModule as TorchsvmLinearModule
from torchsvm.validation import check_positive

__all__ = ["LinearSVMModule"]


class LinearSVMModule(FiniteLossGuard, ArgmaxEvaluation, pl.LightningModule):
    """K one-vs-rest soft-margin linear SVMs trained by minibatch (sub)gradient steps.

    The full objective of class k is E_k = 1/2 ||w_k||^2 + sum_i C_i max(0, 1 - y_ik f_k(x_i))
    over the N training samples (y_ik = +1 if sample i is of class k, else -1). Each batch B
    minimizes the unbiased estimate of sum_k E_k / N,
        ||W||^2 / (2N) + (1/|B|) sum_{i in B} C_i sum_k max(0, 1 - y_ik f_k(x_i)),
    through :func:`torchsvm.functional.hinge_objective` (its hand-written backward).

    Args:
        num_features: input size (784 for 28x28 images, flattened).
        num_classes: number of classes, one binary SVM each.
        C: cost of a margin violation.
        class_weight: optional ``{class: weight}``; C_i = C * weight of i's class.
        optimizer: ``"sgd"`` (with momentum) or ``"adam"``.
        lr: learning rate.
        momentum: SGD momentum.

    Logs per epoch (over the whole training split, with the weights at the epoch's end):
    ``objective`` (sum over classes), ``hinge_mean``, ``margin/class_k`` = 1/||w_k||,
    ``support_vectors/class_k`` (samples with y f(x) <= 1), ``train_acc``; and ``val_acc``,
    ``test_acc``.
    """

    def __init__(
        self,
        num_features: int = 784,
        num_classes: int = 10,
        C: float = 1.0,
        class_weight: dict[int, float] | None = None,
        optimizer: Literal["sgd", "adam"] = "sgd",
        lr: float = 0.01,
        momentum: float = 0.9,
    ) -> None:
        super().__init__()
        check_positive("C", C)
        if class_weight is not None and any(w < 0 for w in class_weight.values()):
            raise ValueError(f"Expected non-negative class weights, got {class_weight}")
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"Expected optimizer to be 'sgd' or 'adam', got {optimizer!r}")
        self.save_hyperparameters()
        self.weight = nn.Parameter(torch.zeros(num_classes, num_features))  # (K, D), as nn.Linear
        self.bias = nn.Parameter(torch.zeros(num_classes))
        costs = torch.full((num_classes,), float(C))
        for k, w in (class_weight or {}).items():
            costs[int(k)] = C * float(w)
        self.register_buffer("class_costs", costs, persistent=False)
        self.n_train: int | None = None

    def forward(self, x: Tensor) -> Tensor:
        """Decision values f_k(x), ``(N, K)``."""
        return torch.addmm(self.bias, x.flatten(1), self.weight.t())

    def to_module(self, output: str = "decision_function") -> nn.Module:
        """The model as a plain torch module (flattened images in; ``decision_function`` ``(n, K)`` or ``predict``:
        the class index), to export (``torchsvm export --ckpt``)."""
        K = self.weight.shape[0]
        head = DecisionHead("classifier", output, list(range(K)))
        linear = TorchsvmLinearModule(self.weight.detach().clone(), self.bias.detach().clone(), head)
        return nn.Sequential(nn.Flatten(), linear).to(self.weight.device)  # the head's buffers beside the model's

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if getattr(dm, "train_set", None) is not None:
            self.n_train = len(dm.train_set)

    def _targets(self, y: Tensor) -> Tensor:
        classes = torch.arange(self.hparams.num_classes, device=y.device)
        return torch.where(y.unsqueeze(1) == classes, 1.0, -1.0).to(self.weight.dtype)  # (B, K)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        X = x.flatten(1)
        n = self.n_train or len(y)
        C = self.class_costs[y] * (n / len(y))  # (B,): scales the batch sum to the full sum
        # Targets are +-1 and costs positive by construction: no per-step value checks (device syncs).
        loss = hinge_objective(X, self._targets(y), self.weight.t(), self.bias, C, validate=False).sum() / n
        self._guard_loss(loss, batch_idx, f"Lower lr (now {self.hparams.lr}).")
        self._log_mean("train_loss", loss, len(y), on_step=True, prog_bar=True)
        return loss

    @torch.no_grad()
    def on_train_epoch_end(self) -> None:
        """The full-training-set objective and statistics, summed over every rank's shard."""
        self._check_pending_loss()
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or getattr(dm, "train_set", None) is None:
            return
        K = self.hparams.num_classes
        sums = torch.zeros(2 * K + 2, device=self.device)  # hinge per class, violators per class, correct, total
        loader = shard_loader(dm.train_set, 1024, shuffle=False) or DataLoader(dm.train_set, batch_size=1024)
        for x, y in loader:
            x, y = x.to(self.device), y.to(self.device)
            scores = self(x)
            margins = self._targets(y) * scores
            hinge = (1 - margins).clamp_min(0)
            sums[:K] += (self.class_costs[y].unsqueeze(1) * hinge).sum(0)
            sums[K : 2 * K] += (margins <= 1).sum(0)
            sums[2 * K] += (scores.argmax(1) == y).sum()
            sums[2 * K + 1] += len(y)
        sums = self.trainer.strategy.reduce(sums, reduce_op="sum")  # every sample once over all ranks
        hinge_sum, violators, correct, total = sums[:K], sums[K : 2 * K], sums[2 * K], sums[2 * K + 1]
        w_norm = self.weight.norm(dim=1)  # (K,)
        # The same value on every rank already: sync_dist only keeps Lightning from warning.
        log = dict(sync_dist=True)
        self.log("objective", (0.5 * w_norm**2 + hinge_sum).sum(), **log)
        self.log("hinge_mean", hinge_sum.sum() / (total * K), **log)
        self.log("train_acc", correct / total, **log)
        for k in range(K):
            self.log(f"margin/class_{k}", 1 / w_norm[k].clamp_min(1e-12), **log)
            self.log(f"support_vectors/class_{k}", violators[k], **log)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        h = self.hparams
        if h.optimizer == "sgd":
            return torch.optim.SGD(self.parameters(), lr=h.lr, momentum=h.momentum)
        return torch.optim.Adam(self.parameters(), lr=h.lr)
