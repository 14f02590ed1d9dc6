"""Write small IDX data sets for tests: torchvision's folder layout, real file format."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    codes = {np.dtype("uint8"): 0x08, np.dtype("int32"): 0x0C}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def write_dataset(root: Path, folder: str = "MNIST", n_train: int = 60, n_test: int = 20, seed: int = 0,
                  gz: bool = False) -> Path:
    """Images whose class is readable from the pixels (a bright stripe at row 2*label)."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
        images[np.arange(n), 2 * labels + 3, :] = 255
        write_idx(raw / f"{split}-images-idx3-ubyte", images, gz)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels, gz)
    return root
