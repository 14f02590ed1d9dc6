"""Few-shot learning on MNIST / Fashion-MNIST with a differentiable SVM head (MetaOptNet's recipe).

An embedding network is trained end to end on N-way K-shot episodes drawn from the training
classes: each episode's support embeddings fit an SVM (:class:`torchsvm.nn.SVMHead`), whose
scores on the episode's queries are the logits of a cross-entropy loss. It is evaluated on
episodes of classes it never saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from lightning_modules._evaluation import StageMeans, log_hp_metric
from lightning_modules._guards import FiniteLossGuard
from lightning_modules.data import NORMALIZATION, MNISTDataModule, shard_loader
from torchsvm.deform import deform
from torchsvm.functional import cross_entropy
from torchsvm.nn import ConvEmbedding, SVMHead

__all__ = ["EpisodeDataModule", "EpisodeDataset", "FewShotModule"]

Episode = tuple[Tensor, Tensor, Tensor, Tensor]  # support images, support labels, query images, query labels


class EpisodeDataset(Dataset):
    """Episode k is a fixed draw (seeded by ``seed`` and k) of ``n_way`` of ``classes``, ``k_shot``
    support and ``n_query`` query images of each, relabelled ``0..n_way-1`` in the drawn order.

    Any k >= 0 is an episode; ``len`` is how many make an epoch.
    """

    def __init__(self, X: Tensor, y: Tensor, classes: Sequence[int], n_way: int, k_shot: int, n_query: int,
                 n_episodes: int, seed: int) -> None:
        self.X, self.classes = X, list(classes)
        self.members = [torch.nonzero(y == c).squeeze(1) for c in self.classes]
        smallest = min(len(m) for m in self.members)
        if n_way > len(self.classes):
            raise ValueError(f"Expected n_way <= {len(self.classes)} (the classes {self.classes}), got {n_way}")
        if k_shot + n_query > smallest:
            raise ValueError(
                f"Expected k_shot + n_query <= {smallest} (images of the smallest class), got {k_shot} + {n_query}"
            )
        self.n_way, self.k_shot, self.n_query, self.n_episodes, self.seed = n_way, k_shot, n_query, n_episodes, seed

    def __len__(self) -> int:
        return self.n_episodes

    def __getitem__(self, k: int) -> Episode:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(k))
        chosen = torch.randperm(len(self.classes), generator=g)[: self.n_way]
        support, query = [], []
        for c in chosen.tolist():
            m = self.members[c]
            pick = m[torch.randperm(len(m), generator=g)[: self.k_shot + self.n_query]]
            support.append(pick[: self.k_shot])
            query.append(pick[self.k_shot :])
        s_labels = torch.arange(self.n_way).repeat_interleave(self.k_shot)
        q_labels = torch.arange(self.n_way).repeat_interleave(self.n_query)
        return self.X[torch.cat(support)], s_labels, self.X[torch.cat(query)], q_labels


class _EpochEpisodes(Sampler[int]):
    """Episodes ``e n .. e n + n - 1`` in epoch e: new episodes every epoch (Lightning calls set_epoch)."""

    def __init__(self, n: int) -> None:
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(range(self.epoch * self.n, (self.epoch + 1) * self.n))

    def __len__(self) -> int:
        return self.n


class EpisodeDataModule(MNISTDataModule):
    """N-way K-shot episodes: training on ``train_classes``, validation and test on ``test_classes``.

    Training episodes come from the training split's images of the training classes, new ones
    every epoch; validation episodes from the training split's images of the held-out classes
    (never trained on); test episodes from the test split's images of the held-out classes, one
    test loader per entry of ``test_shots`` (e.g. 5-shot and 1-shot). Validation and test
    episodes are fixed by ``seed``.

    Args:
        data_dir, dataset, download, normalize, num_workers, seed: as :class:`MNISTDataModule`.
        n_way, k_shot, n_query: classes per episode, support and query images per class.
        train_classes, test_classes: disjoint label sets.
        episodes_per_batch: episodes solved together in one step (the SVM head's batch).
        train_episodes, val_episodes, test_episodes: episodes per epoch / evaluation.
        test_shots: K of each test loader (n_way and n_query as in training).
        augment: warp every training image by a fresh random elastic field and small affine map
            (:func:`torchsvm.deform.deform`) on the device, each step; evaluation images stay as they are.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        dataset: Literal["mnist", "fashion-mnist"] = "mnist",
        n_way: int = 5,
        k_shot: int = 5,
        n_query: int = 15,
        train_classes: list[int] = [0, 1, 2, 3, 4],  # noqa: B006 (the CLI shows the default)
        test_classes: list[int] = [5, 6, 7, 8, 9],  # noqa: B006
        episodes_per_batch: int = 4,
        train_episodes: int = 200,
        val_episodes: int = 100,
        test_episodes: int = 500,
        test_shots: list[int] = [5, 1],  # noqa: B006
        num_workers: int = 0,
        download: bool = True,
        normalize: bool = False,
        seed: int = 0,
        augment: bool = False,
    ) -> None:
        super().__init__(data_dir=data_dir, dataset=dataset, batch_size=episodes_per_batch, num_workers=num_workers,
                         download=download, normalize=normalize, seed=seed)
        if set(train_classes) & set(test_classes):
            raise ValueError(f"Expected disjoint train_classes and test_classes, got {train_classes} and {test_classes}")
        for name, value in (("n_way", n_way), ("k_shot", k_shot), ("n_query", n_query),
                            ("episodes_per_batch", episodes_per_batch), ("train_episodes", train_episodes),
                            ("val_episodes", val_episodes), ("test_episodes", test_episodes)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Expected {name} to be a positive int, got {value!r}")
        if n_way < 2 or n_way > min(len(train_classes), len(test_classes)):
            raise ValueError(
                f"Expected 2 <= n_way <= {min(len(train_classes), len(test_classes))} (the fewer of the train and "
                f"test classes), got {n_way}"
            )
        self.save_hyperparameters()
        self.test_sets: list[EpisodeDataset] = []

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        episodes = dict(n_way=h.n_way, n_query=h.n_query)
        if stage in (None, "fit", "validate") and self.train_set is None:
            X, y = self.tensors("train")
            self.train_set = EpisodeDataset(X, y, h.train_classes, k_shot=h.k_shot, n_episodes=h.train_episodes,
                                            seed=h.seed, **episodes)
            self.val_set = EpisodeDataset(X, y, h.test_classes, k_shot=h.k_shot, n_episodes=h.val_episodes,
                                          seed=h.seed + 1, **episodes)
        if stage in (None, "test", "predict") and not self.test_sets:
            X, y = self.tensors("test")
            self.test_sets = [EpisodeDataset(X, y, h.test_classes, k_shot=k, n_episodes=h.test_episodes,
                                             seed=h.seed + 2, **episodes) for k in h.test_shots]

    def on_after_batch_transfer(self, batch: Episode, dataloader_idx: int) -> Episode:
        trainer = self.trainer
        if not self.hparams.augment or trainer is None or not trainer.training:
            return batch
        support, s_labels, query, q_labels = batch
        return self._augment(support), s_labels, self._augment(query), q_labels

    def _augment(self, images: Tensor) -> Tensor:
        """Deformed copies of ``(..., 1, H, W)`` images; standardized ones are warped about their background."""
        mean, std = NORMALIZATION[self.hparams.dataset] if self.hparams.normalize else (0.0, 1.0)
        background = -mean / std  # a blank pixel's value; the warp pads with 0
        flat = images.reshape(-1, *images.shape[-2:]) - background
        return (deform(flat) + background).reshape(images.shape)

    def _episode_loader(self, dataset: Dataset | None, sampler: Sampler | None = None) -> DataLoader:
        if dataset is None:
            raise RuntimeError("EpisodeDataModule.setup() must run before asking for a dataloader")
        # Several processes: each takes a shard (evaluation episodes each exactly once; training
        # episodes shuffled, the same set every epoch).
        sharded = shard_loader(dataset, self.hparams.episodes_per_batch, sampler is not None, self.hparams.seed,
                               self.hparams.num_workers)
        if sharded is not None:
            return sharded
        return DataLoader(dataset, batch_size=self.hparams.episodes_per_batch, sampler=sampler,
                          num_workers=self.hparams.num_workers, persistent_workers=self.hparams.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._episode_loader(self.train_set, _EpochEpisodes(len(self.train_set)))

    def val_dataloader(self) -> DataLoader:
        return self._episode_loader(self.val_set)

    def test_dataloader(self) -> list[DataLoader]:
        return [self._episode_loader(ds) for ds in self.test_sets]

    def predict_dataloader(self) -> DataLoader:
        return self._episode_loader(self.test_sets[0] if self.test_sets else None)


class FewShotModule(FiniteLossGuard, StageMeans, pl.LightningModule):
    """An embedding network trained through an SVM head on few-shot episodes.

    Each batch holds B episodes: support ``(B, N, 1, 28, 28)`` with labels ``(B, N)`` and queries
    ``(B, Q, 1, 28, 28)`` with labels ``(B, Q)``. The embedding maps all images, the head fits
    one classifier per episode on the support embeddings and scores the queries; the loss is
    the cross-entropy of those scores.

    Args:
        embedding: the network, a plain ``nn.Module`` mapping images to ``(n, D)``; None builds
            :class:`torchsvm.nn.ConvEmbedding` with ``embedding_dim`` outputs.
        head: ``"crammer_singer"`` (MetaOptNet-SVM), ``"ovr"`` (one-vs-rest binary SVMs) or
            ``"prototype"`` (prototypical networks, the baseline).
        C: the SVM head's cost.
        embedding_dim: D of the default embedding (None: its feature maps, ``channels * 49``).
        channels: convolution channels of the default embedding.
        scale: initial (learned) logit scale.
        l2_normalize: L2-normalize the embeddings before the head (see :class:`torchsvm.nn.SVMHead`).
        lr, weight_decay: Adam's.
        lr_schedule: ``"constant"``, or ``"cosine"`` (annealed to 0 over the run's steps, step by step).

    Logs ``train_loss``; ``train_acc``, ``val_acc`` (mean episode accuracy) with ``*_acc_ci95``
    (the 95% interval's half width, 1.96 std / sqrt(episodes)); ``hp_metric`` (= val_acc); and for
    each test loader ``test_acc_<K>shot`` with its interval, the first loader's also as ``test_acc``.
    """

    def __init__(
        self,
        embedding: nn.Module | None = None,
        head: Literal["crammer_singer", "ovr", "prototype"] = "crammer_singer",
        C: float = 1.0,
        embedding_dim: int | None = 64,
        scale: float = 10.0,
        l2_normalize: bool = True,
        lr: float = 1e-3,
        weight_decay: float = 5e-4,
        channels: int = 32,
        lr_schedule: Literal["constant", "cosine"] = "constant",
    ) -> None:
        super().__init__()
        if lr <= 0:
            raise ValueError(f"Expected lr > 0, got {lr}")
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"Expected lr_schedule 'constant' or 'cosine', got {lr_schedule!r}")
        self.save_hyperparameters(ignore=["embedding"])
        self.embedding = embedding if embedding is not None else ConvEmbedding(embedding_dim, channels)
        self.head = SVMHead(head, C=C, scale=scale, learn_scale=True, normalize=l2_normalize)

    def forward(self, support: Tensor, support_labels: Tensor, query: Tensor) -> Tensor:
        """Logits ``(B, Q, n_way)`` of the queries of B episodes."""
        B, N, Q = support.shape[0], support.shape[1], query.shape[1]
        z = self.embedding(torch.cat([support.flatten(0, 1), query.flatten(0, 1)]))  # (B N + B Q, D)
        return self.head(z[: B * N].reshape(B, N, -1), support_labels, z[B * N :].reshape(B, Q, -1))

    def _step(self, batch: Episode) -> tuple[Tensor, Tensor]:
        support, s_labels, query, q_labels = batch
        logits = self(support, s_labels, query)
        loss = cross_entropy(logits.flatten(0, 1), q_labels.flatten(), validate=False)  # labels made 0..n_way-1
        acc = (logits.argmax(-1) == q_labels).float().mean(1)  # (B,) per episode
        return loss, acc

    def training_step(self, batch: Episode, batch_idx: int) -> Tensor:
        loss, acc = self._step(batch)
        self._guard_loss(loss, batch_idx, f"Lower lr (now {self.hparams.lr}) or C (now {self.hparams.C}).")
        self._log_mean("train_loss", loss, len(acc), on_step=True, prog_bar=True)
        self.log("train_acc_step", acc.mean(), on_step=True, on_epoch=False, batch_size=len(acc))
        self._log_episodes("train_acc", acc, on_step=False)
        return loss

    def validation_step(self, batch: Episode, batch_idx: int) -> None:
        self._log_episodes("val_acc", self._step(batch)[1], prog_bar=True)

    def test_step(self, batch: Episode, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Each loader's figures under its own name, logged from its steps: "test_acc_5shot" (and
        "test_acc" for the first loader) under that loader only."""
        acc = self._step(batch)[1]
        dm = getattr(self.trainer, "datamodule", None)
        shots = list(dm.hparams.test_shots) if isinstance(dm, EpisodeDataModule) else []
        name = f"test_acc_{shots[dataloader_idx]}shot" if dataloader_idx < len(shots) else f"test_acc_loader{dataloader_idx}"
        for key in [name, "test_acc"] if dataloader_idx == 0 else [name]:
            self._log_episodes(key, acc, add_dataloader_idx=False)

    def predict_step(self, batch: Episode, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        support, s_labels, query, _ = batch
        return self(support, s_labels, query).argmax(-1)

    def on_train_epoch_end(self) -> None:
        self._check_pending_loss()

    def on_test_epoch_start(self) -> None:
        self._reset_metrics("test")  # the interval counts episodes: no figures left from an earlier test run

    def on_validation_epoch_start(self) -> None:
        self._reset_metrics("val")

    def on_validation_epoch_end(self) -> None:
        log_hp_metric(self, "val_acc")

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if self.hparams.lr_schedule == "constant":
            return optimizer
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
