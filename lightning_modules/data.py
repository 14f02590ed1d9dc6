"""LightningDataModules shared by every model: MNIST and Fashion-MNIST, a regression file or Friedman #1, and
LIBSVM-format files."""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from torchsvm.data import load_images

__all__ = ["LIBSVMDataModule", "MNISTDataModule", "RegressionDataModule", "distributed_world", "in_memory_loader", "shard_loader"]


def distributed_world() -> int:
    """Processes in the default process group (1 outside torch.distributed)."""
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def shard_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 0, num_workers: int = 0,
                 **kwargs) -> DataLoader | None:
    """A loader over this process's shard when several processes run (DDP); None for one process.

    Evaluation shards are disjoint and cover every sample once (no padding), so a sum over
    ranks is the sum over the data set and metrics do not depend on the number of processes;
    training shards are padded to equal length (each rank takes as many steps). Lightning keeps
    these samplers (they are DistributedSamplers) instead of inserting its own.
    """
    if distributed_world() == 1:
        return None
    sampler = (DistributedSampler(dataset, shuffle=True, seed=seed) if shuffle
               else UnrepeatedDistributedSampler(dataset, shuffle=False))
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      persistent_workers=num_workers > 0, **kwargs)

def in_memory_loader(dataset: TensorDataset, batch_size: int, shuffle: bool, seed: int, num_workers: int) -> DataLoader:
    """The loader of an in-memory TensorDataset: this process's shard under DDP (:func:`shard_loader`),
    else whole batches indexed at once (TensorDataset accepts an index list) instead of
    collating batch_size single samples: far less Python per step."""
    sharded = shard_loader(dataset, batch_size, shuffle, seed, num_workers, pin_memory=torch.cuda.is_available())
    if sharded is not None:
        return sharded
    sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=BatchSampler(sampler, batch_size, drop_last=False),
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


class InMemoryLoaders:
    """The four loaders of a DataModule holding ``train_set``, ``val_set`` and ``test_set``
    (predict: the test set) in memory, with ``batch_size``, ``seed`` and ``num_workers`` hparams."""

    def _loader(self, dataset: TensorDataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before asking for a dataloader")
        return in_memory_loader(dataset, self.hparams.batch_size, shuffle, self.hparams.seed, self.hparams.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)


# Per-dataset pixel mean and std of the training set, on the [0, 1] scale.
NORMALIZATION = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}


class MNISTDataModule(InMemoryLoaders, pl.LightningDataModule):
    """MNIST or Fashion-MNIST from torchvision's folder layout, held in memory as tensors.

    Images come as float32 ``(N, 1, 28, 28)`` with pixels scaled to ``[0, 1]`` (or standardized
    with ``normalize=True``), labels as int64 ``(N,)``. The validation set is a seeded random
    part of the training split; the test split is the dataset's own.

    Args:
        data_dir: root holding ``MNIST/raw`` or ``FashionMNIST/raw``; None means
            ``$TORCHSVM_DATA_DIR``, else ``./data``.
        dataset: ``"mnist"`` or ``"fashion-mnist"``.
        batch_size: samples per batch.
        val_split: fraction of the training split held out for validation, in (0, 1).
        num_workers: DataLoader worker processes (0 loads in the main process).
        download: download through torchvision when the files are missing.
        normalize: standardize pixels with the dataset's mean and std instead of ``x / 255``.
        seed: seed of the train/validation split.
        train_subset: keep only the first this many training images (None: all).
    """

    def __init__(
        self,
        data_dir: str | None = None,
        dataset: Literal["mnist", "fashion-mnist"] = "mnist",
        batch_size: int = 128,
        val_split: float = 0.1,
        num_workers: int = 0,
        download: bool = True,
        normalize: bool = False,
        seed: int = 0,
        train_subset: int | None = None,
    ) -> None:
        super().__init__()
        if dataset not in NORMALIZATION:
            raise ValueError(f"Expected dataset to be one of {sorted(NORMALIZATION)}, got {dataset!r}")
        if not 0.0 < val_split < 1.0:
            raise ValueError(f"Expected val_split in (0, 1), got {val_split}")
        if batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1, got {batch_size}")
        if train_subset is not None and train_subset < 2:
            raise ValueError(f"Expected train_subset >= 2 or None, got {train_subset}")
        self.save_hyperparameters()
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None

    def prepare_data(self) -> None:
        # Runs once per node: only download here, the tensors are built in setup().
        if self.hparams.download:
            load_images(self.hparams.dataset, "test", self.hparams.data_dir, download=True)

    def tensors(self, split: Literal["train", "test"]) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's images ``(N, 1, 28, 28)`` as the modules see them (on [0, 1], normalized if asked) and labels."""
        images, labels = load_images(self.hparams.dataset, split, self.hparams.data_dir, self.hparams.download)
        X = images.unsqueeze(1).float().div_(255.0)  # (N, 1, 28, 28)
        if self.hparams.normalize:
            mean, std = NORMALIZATION[self.hparams.dataset]
            X.sub_(mean).div_(std)
        return X, labels

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_set is None:
            X, y = self.tensors("train")
            if self.hparams.train_subset is not None:
                X, y = X[: self.hparams.train_subset], y[: self.hparams.train_subset]
            n_val = max(1, round(len(y) * self.hparams.val_split))
            perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.hparams.seed))
            val_idx, train_idx = perm[:n_val], perm[n_val:]
            self.train_set = TensorDataset(X[train_idx], y[train_idx])
            self.val_set = TensorDataset(X[val_idx], y[val_idx])
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = TensorDataset(*self.tensors("test"))



class RegressionDataModule(InMemoryLoaders, pl.LightningDataModule):
    """A regression data set held in memory: a user's file, or scikit-learn's Friedman #1 problem.

    ``path`` names an ``.npz`` with arrays ``X`` ``(N, D)`` and ``y`` ``(N,)``, or a ``.csv`` whose
    last column is the target (a header line is skipped when it is not numeric); without a path,
    ``make_friedman1(n_samples, n_features=10, noise)`` (y = 10 sin(pi x1 x2) + 20 (x3 - 0.5)^2
    + 10 x4 + 5 x5 + noise; nothing to download). The rows are split at random (seeded) into
    train / validation / test; features are standardized with the training split's mean and std
    (``standardize=True``). Samples come as float32 ``(N, D)``, targets as float32 ``(N,)``.

    Args:
        path: the data file, or None for the synthetic problem.
        n_samples, noise: of the synthetic problem.
        val_split, test_split: fractions of the rows held out, each in (0, 1), together < 1.
        batch_size, num_workers, seed: as :class:`MNISTDataModule`.
        standardize: scale every feature to zero mean and unit variance on the training split.
    """

    def __init__(
        self,
        path: str | None = None,
        n_samples: int = 6000,
        noise: float = 1.0,
        val_split: float = 0.1,
        test_split: float = 0.2,
        batch_size: int = 1000,
        num_workers: int = 0,
        seed: int = 0,
        standardize: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("val_split", val_split), ("test_split", test_split)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"Expected {name} in (0, 1), got {value}")
        if val_split + test_split >= 1.0:
            raise ValueError(f"Expected val_split + test_split < 1, got {val_split + test_split}")
        if batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1, got {batch_size}")
        self.save_hyperparameters()
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None

    def _arrays(self) -> tuple[torch.Tensor, torch.Tensor]:
        import numpy as np

        h = self.hparams
        if h.path is None:
            from sklearn.datasets import make_friedman1

            X, y = make_friedman1(h.n_samples, n_features=10, noise=h.noise, random_state=h.seed)
        elif str(h.path).endswith(".npz"):
            with np.load(h.path) as data:
                if "X" not in data or "y" not in data:
                    raise ValueError(f"Expected arrays 'X' and 'y' in {h.path}, got {sorted(data.files)}")
                X, y = data["X"], data["y"]
        elif str(h.path).endswith(".csv"):
            table = np.genfromtxt(h.path, delimiter=",", dtype=np.float64)
            table = table[1:] if np.isnan(table[0]).all() else table  # a header line
            X, y = table[:, :-1], table[:, -1]
        else:
            raise ValueError(f"Expected a .npz or .csv file, got {h.path!r}")
        X, y = torch.as_tensor(np.asarray(X), dtype=torch.float32), torch.as_tensor(np.asarray(y), dtype=torch.float32)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise ValueError(f"Expected X (N, D) and y (N,), got {tuple(X.shape)} and {tuple(y.shape)}")
        if not (torch.isfinite(X).all() and torch.isfinite(y).all()):
            raise ValueError("Expected finite X and y, got NaN or infinity")
        return X, y

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        X, y = self._arrays()
        h = self.hparams
        n = len(y)
        n_val, n_test = max(1, round(n * h.val_split)), max(1, round(n * h.test_split))
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(h.seed))
        val_idx, test_idx, train_idx = perm[:n_val], perm[n_val : n_val + n_test], perm[n_val + n_test :]
        if h.standardize:
            mean, std = X[train_idx].mean(0), X[train_idx].std(0).clamp_min(1e-12)
            X = (X - mean) / std
        self.train_set = TensorDataset(X[train_idx], y[train_idx])
        self.val_set = TensorDataset(X[val_idx], y[val_idx])
        self.test_set = TensorDataset(X[test_idx], y[test_idx])


class LIBSVMDataModule(InMemoryLoaders, pl.LightningDataModule):
    """A LIBSVM-format data file (``label index:value ...``, the files of LIBSVM, LIBLINEAR and ThunderSVM
    users), held in memory as dense float32 tensors for the kernel modules.

    Read by :func:`torchsvm.libsvm_format.load_data` (zero- or one-based indices; a malformed line is an
    error naming the file and the line). Classification (``task="classification"``): the labels found in
    the training file, sorted, become classes ``0 .. K - 1`` (``classes`` keeps the file's labels, so
    ``classes[prediction]`` is a label as LIBSVM writes it); regression: the labels are the float targets.
    The validation set is a seeded random part of the training file; the test set is ``test_path``, or a
    seeded random part of the training file as well (``test_split``) when there is none.

    The rows are made dense (the modules' solvers hold X as a dense tensor): ``N x D x 4`` bytes. Sparse
    files with very many features belong to :class:`torchsvm.SVC` / :class:`torchsvm.LinearSVC`, which keep
    them sparse.

    Args:
        path: the training file.
        test_path: the test file (its width is read as the training file's), or None.
        task: ``"classification"`` or ``"regression"``.
        n_features: the width of X (None: the largest index in the files).
        val_split: fraction of the training rows held out for validation, in (0, 1).
        test_split: without ``test_path``, fraction of the training rows held out for testing, in (0, 1).
        batch_size, num_workers, seed: as :class:`MNISTDataModule`.
    """

    def __init__(
        self,
        path: str,
        test_path: str | None = None,
        task: Literal["classification", "regression"] = "classification",
        n_features: int | None = None,
        val_split: float = 0.1,
        test_split: float = 0.2,
        batch_size: int = 1000,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if task not in ("classification", "regression"):
            raise ValueError(f"Expected task to be 'classification' or 'regression', got {task!r}")
        held_out = val_split + (0.0 if test_path is not None else test_split)
        for name, value in (("val_split", val_split), ("test_split", test_split)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"Expected {name} in (0, 1), got {value}")
        if held_out >= 1.0:
            raise ValueError(f"Expected val_split + test_split < 1, got {held_out}")
        if batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1, got {batch_size}")
        self.save_hyperparameters()
        self.classes: torch.Tensor | None = None
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None

    def _read(self, path: str, n_features: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        from torchsvm.libsvm_format import load_data

        X, y = load_data(path, n_features)  # a wider file is an error naming both widths
        return torch.from_numpy(X.astype("float32").toarray()), torch.from_numpy(y)

    def _targets(self, y: torch.Tensor, path: str) -> torch.Tensor:
        if self.hparams.task == "regression":
            return y.float()
        pos = torch.searchsorted(self.classes, y).clamp_max(len(self.classes) - 1)
        unknown = self.classes[pos] != y
        if unknown.any():
            raise ValueError(f"{path}: expected labels among the training file's {self.classes.tolist()}, "
                             f"got {sorted(set(y[unknown].tolist()))}")
        return pos

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        h = self.hparams
        X, y = self._read(h.path, h.n_features)
        if h.task == "classification":
            self.classes = torch.unique(y)
            if len(self.classes) < 2:
                raise ValueError(f"{h.path}: expected at least 2 classes, got {self.classes.tolist()}")
        targets = self._targets(y, h.path)
        n = len(y)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(h.seed))
        n_val = max(1, round(n * h.val_split))
        n_test = 0 if h.test_path is not None else max(1, round(n * h.test_split))
        val_idx, test_idx, train_idx = perm[:n_val], perm[n_val : n_val + n_test], perm[n_val + n_test :]
        self.train_set = TensorDataset(X[train_idx], targets[train_idx])
        self.val_set = TensorDataset(X[val_idx], targets[val_idx])
        if h.test_path is None:
            self.test_set = TensorDataset(X[test_idx], targets[test_idx])
        else:
            Xt, yt = self._read(h.test_path, X.shape[1])  # as wide as the training file
            self.test_set = TensorDataset(Xt, self._targets(yt, h.test_path))
