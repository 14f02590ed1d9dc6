"""MNIST / Fashion-MNIST loading shared by the scripts, benchmarks and Lightning modules.

Files are torchvision's layout, ``<data_dir>/MNIST/raw/train-images-idx3-ubyte`` (or ``.gz``),
downloaded through torchvision when asked. They are parsed here rather than by torchvision so
that a truncated or corrupt file is reported by name instead of loaded partially.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from torchsvm.optional import require

__all__ = [
    "DATASETS",
    "CorruptDataError",
    "DatasetNotFoundError",
    "load_images",
    "read_idx",
    "resolve_data_dir",
]

DatasetName = Literal["mnist", "fashion-mnist"]

# name -> (torchvision class name, which is also the folder under data_dir)
DATASETS: dict[str, str] = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"); data is big-endian.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

ENV_DATA_DIR = "TORCHSVM_DATA_DIR"


class DatasetNotFoundError(FileNotFoundError):
    """The IDX files are not in the data folder and could not be downloaded."""


class CorruptDataError(ValueError):
    """An IDX file exists but is truncated, malformed or inconsistent with its partner."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``data_dir`` if given, else ``$TORCHSVM_DATA_DIR``, else ``./data``."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    return Path("data")


def read_idx(path: str | os.PathLike[str]) -> Tensor:
    """Read an IDX file (plain or gzipped) into a tensor, checking its header against its size.

    Raises:
        CorruptDataError: bad magic number, unknown type code, or a data size that does not
            match the header (a truncated download, for instance).
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (EOFError, OSError, gzip.BadGzipFile) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise CorruptDataError(f"Could not read IDX file {path}: {err}. Delete it and download again.") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise CorruptDataError(
            f"Expected an IDX file starting with two zero bytes, got {raw[:4]!r} in {path}"
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise CorruptDataError(f"Expected an IDX type code in {sorted(_IDX_DTYPES)}, got {code} in {path}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDataError(f"Expected a {header}-byte IDX header, got a {len(raw)}-byte file: {path}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        raise CorruptDataError(
            f"Expected {expected} data bytes for shape {shape} in {path}, got {got} "
            f"({'truncated' if got < expected else 'trailing bytes'}). Delete it and download again."
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def _find(raw_dir: Path, stem: str) -> Path | None:
    for candidate in (raw_dir / stem, raw_dir / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _download(dataset: str, root: Path) -> None:
    torchvision = require("torchvision", "lightning", "Downloading MNIST / Fashion-MNIST")  # only downloads need it

    cls = getattr(torchvision.datasets, DATASETS[dataset])
    try:
        cls(root=str(root), train=True, download=True)
        cls(root=str(root), train=False, download=True)
    except (RuntimeError, OSError) as err:
        raise DatasetNotFoundError(
            f"Could not download {dataset} into {root / DATASETS[dataset] / 'raw'}: {err}\n"
            f"Connect to a network, or point the data dir (--data-dir, --data.data_dir or "
            f"{ENV_DATA_DIR}) at a folder holding {DATASETS[dataset]}/raw/ with the IDX files."
        ) from err


def load_images(
    dataset: DatasetName = "mnist",
    split: Literal["train", "test"] = "train",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> tuple[Tensor, Tensor]:
    """Load one split as ``(images, labels)``: uint8 ``(N, 28, 28)`` and int64 ``(N,)``.

    Args:
        dataset: ``"mnist"`` or ``"fashion-mnist"``.
        split: ``"train"`` or ``"test"``.
        data_dir: the root holding ``MNIST/raw`` or ``FashionMNIST/raw``; see :func:`resolve_data_dir`.
        download: fetch the files through torchvision when they are missing.

    Raises:
        ValueError: an unknown dataset or split.
        DatasetNotFoundError: the files are missing (and could not be downloaded).
        CorruptDataError: a file is truncated or malformed, images and labels disagree, or a
            label is outside 0..9 (so training steps need not check them again).
    """
    if dataset not in DATASETS:
        raise ValueError(f"Expected dataset to be one of {sorted(DATASETS)}, got {dataset!r}")
    if split not in _FILES:
        raise ValueError(f"Expected split to be 'train' or 'test', got {split!r}")
    root = resolve_data_dir(data_dir)
    raw_dir = root / DATASETS[dataset] / "raw"
    stems = _FILES[split]
    paths = [_find(raw_dir, s) for s in stems]
    if any(p is None for p in paths) and download:
        _download(dataset, root)
        paths = [_find(raw_dir, s) for s in stems]
    if any(p is None for p in paths):
        missing = [s for s, p in zip(stems, paths, strict=True) if p is None]
        raise DatasetNotFoundError(
            f"Dataset {dataset!r} not found: looked in {raw_dir.resolve()} for {', '.join(missing)} "
            f"(or .gz). Download it with a network (download=True in Python, --download for "
            f"scripts/fit_distributed.py, --data.download true for the torchsvm CLI), or point the data dir "
            f"(--data-dir, --data.data_dir or {ENV_DATA_DIR}) at a folder holding {DATASETS[dataset]}/raw/."
        )
    images_path, labels_path = (p for p in paths if p is not None)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != torch.uint8:
        raise CorruptDataError(
            f"Expected uint8 images of shape (N, H, W) in {images_path}, got {images.dtype} {tuple(images.shape)}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise CorruptDataError(
            f"Expected {images.shape[0]} labels in {labels_path} to match {images_path}, "
            f"got shape {tuple(labels.shape)}"
        )
    labels = labels.long()
    if labels.numel() and not bool(((labels >= 0) & (labels < 10)).all()):
        raise CorruptDataError(f"Expected labels in 0..9 in {labels_path}, got values {sorted(set(labels.tolist()))[:12]}")
    return images, labels
