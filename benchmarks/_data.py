"""The image sets the benchmarks read from ../shared/data, flattened to pixels / 255."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from torchsvm.data import load_images

SETS = {"mnist-10k": ("mnist", "mnist-10k"), "fashion-mnist": ("fashion-mnist", "fashion-mnist")}


def load_flat(
    name: str, root: Path, n_train: int | None, dtype: torch.dtype = torch.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_test, y_test)`` as NumPy, images flattened and scaled to [0, 1]."""
    dataset, folder = SETS[name]
    X, y = load_images(dataset, "train", root / folder)
    Xt, yt = load_images(dataset, "test", root / folder)
    if n_train:
        X, y = X[:n_train], y[:n_train]
    flat = lambda a: (a.reshape(len(a), -1).to(dtype) / 255.0).numpy()  # noqa: E731
    return flat(X), y.numpy(), flat(Xt), yt.numpy()


def add_data_arguments(p: argparse.ArgumentParser, default_sets: list[str], allow_none: bool = False) -> None:
    """--data-root (../shared/data beside the repository), --datasets and --n-train."""
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--datasets", nargs="*" if allow_none else "+", default=default_sets, choices=sorted(SETS))
    p.add_argument("--n-train", type=int, default=None, help="first N training images only")
