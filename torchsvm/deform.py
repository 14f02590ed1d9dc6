"""Deformed digits at any scale: InfiMNIST's recipe (elastic deformations and small affine maps of real
images) on torch, so that 10^5-10^7-row problems exist on any machine.

Each new image is a source image warped by a random smooth displacement field (Simard, Steinkraus and
Platt 2003: a field uniform in [-1, 1] per pixel, smoothed by a Gaussian of width ``sigma`` pixels and
scaled by ``alpha`` pixels) composed with a random affine map (rotation, scale, shear, translation),
resampled bilinearly. Loosli, Canu and Bottou (2007) built InfiMNIST (mnist8m: 8.1M rows) this way.

Row ``i`` deforms source image ``i % n_sources``; rows are made in fixed chunks of 4,096, chunk ``c`` from a
generator seeded by ``(seed, c)``: the same seed gives the same rows whatever ``batch_size``, and any range
of rows can be made without the rows before it (on one device type: CPU and CUDA random streams differ).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["deform", "deformed_images"]

_CHUNK = 4096  # rows per seeded chunk (fixed: it defines which random numbers a row gets)


def _smoothing_matrix(size: int, sigma: float, device: torch.device) -> Tensor:
    """``(size, size)``: Gaussian smoothing along one axis with zero padding as a matrix (``S f S^T``
    smooths an image: ten times faster than the two convolutions on a CPU)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    d = torch.arange(size, device=device)
    d = d[:, None] - d[None, :]
    return torch.where(d.abs() <= radius, k[(d + radius).clamp(0, 2 * radius)], torch.zeros((), device=device))


def deform(
    images: Tensor,
    generator: torch.Generator | None = None,
    alpha: float = 34.0,
    sigma: float = 4.0,
    max_rotation: float = 10.0,
    max_scale: float = 0.1,
    max_shear: float = 0.1,
    max_shift: float = 1.5,
) -> Tensor:
    """Each image of a batch warped by its own random elastic field and affine map (the module's recipe).

    What :func:`deformed_images` makes its rows with, for a batch already in memory: data augmentation
    on the device the images are on (the few-shot module's episodes).

    Args:
        images: float ``(B, H, W)``, background 0 (the warp pads with 0).
        generator: of the random fields, on the images' device (default: torch's global one).
        alpha, sigma, max_rotation, max_scale, max_shear, max_shift: as :func:`deformed_images`.

    Returns:
        ``(B, H, W)`` in the images' dtype.
    """
    if images.ndim != 3 or not images.dtype.is_floating_point:
        raise ValueError(f"Expected float images of shape (B, H, W), got {images.dtype} {tuple(images.shape)}")
    if sigma <= 0:
        raise ValueError(f"Expected sigma > 0, got {sigma}")
    B, H, W = images.shape
    dev = images.device
    src = images.float()

    def uniform(*shape: int) -> Tensor:  # U(-1, 1)
        return torch.rand(*shape, generator=generator, device=dev).mul_(2).sub_(1)

    # The elastic field: per-pixel U(-1, 1) displacements (x, y), smoothed separably, in pixels.
    field = _smoothing_matrix(H, sigma, dev) @ uniform(B, 2, H, W) @ _smoothing_matrix(W, sigma, dev)  # S^T = S
    field = field.permute(0, 2, 3, 1).mul_(alpha)  # (B, H, W, 2) pixels
    # The affine map, in grid_sample's normalized coordinates ([-1, 1] across the image).
    angle = uniform(B) * math.radians(max_rotation)
    scale = 1 + uniform(B) * max_scale
    shear = uniform(B) * max_shear
    shift = uniform(B, 2) * max_shift
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([
        torch.stack([cos / scale, (-sin + shear * cos) / scale, shift[:, 0] * 2 / W], 1),
        torch.stack([sin / scale, (cos + shear * sin) / scale, shift[:, 1] * 2 / H], 1),
    ], 1)  # (B, 2, 3): output pixel -> source pixel
    grid = F.affine_grid(theta, [B, 1, H, W], align_corners=False)
    grid = grid + field * torch.tensor([2 / W, 2 / H], device=dev)
    warped = F.grid_sample(src.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return warped.squeeze(1).to(images.dtype)


def deformed_images(
    images: Tensor,
    labels: Tensor,
    n: int,
    seed: int = 0,
    start: int = 0,
    alpha: float = 34.0,
    sigma: float = 4.0,
    max_rotation: float = 10.0,
    max_scale: float = 0.1,
    max_shear: float = 0.1,
    max_shift: float = 1.5,
    device: str | torch.device | None = None,
) -> tuple[Tensor, Tensor]:
    """``n`` deformed copies of ``images`` with their labels: rows ``start .. start + n`` of the seeded
    stream (row ``i`` deforms image ``i % len(images)``).

    Args:
        images: uint8 ``(M, H, W)`` (as :func:`torchsvm.data.load_images` gives them) or float in [0, 1].
        labels: ``(M,)``.
        n: rows to make.
        seed: the stream's seed.
        start: the first row's index in the stream (make a large set in pieces, or a disjoint one).
        alpha, sigma: the elastic field's scale and smoothness, in pixels (Simard et al.'s 34 and 4).
        max_rotation: degrees; max_scale, max_shear: relative; max_shift: pixels; each drawn uniformly
            in [-max, max].
        device: where the images are made (default: the images' device); a GPU makes them in batches.

    Returns:
        uint8 ``(n, H, W)`` images (float sources: float32) and int64 ``(n,)`` labels, on ``device``.

    Raises:
        ValueError: images not ``(M, H, W)``, labels of another length, n or start negative, sigma <= 0.
    """
    if images.ndim != 3 or images.shape[0] == 0:
        raise ValueError(f"Expected images of shape (M, H, W) with M >= 1, got {tuple(images.shape)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"Expected labels of shape ({images.shape[0]},), got {tuple(labels.shape)}")
    if n < 0 or start < 0:
        raise ValueError(f"Expected n >= 0 and start >= 0, got n={n}, start={start}")
    if sigma <= 0:
        raise ValueError(f"Expected sigma > 0, got {sigma}")
    dev = torch.device(device) if device is not None else images.device
    as_uint8 = images.dtype == torch.uint8
    src = images.to(dev, torch.float32)
    if as_uint8:
        src = src / 255
    M = src.shape[0]
    out = torch.empty((n, *images.shape[1:]), dtype=torch.uint8 if as_uint8 else torch.float32, device=dev)
    gen = torch.Generator(device=dev)
    for c in range(start // _CHUNK, (start + n + _CHUNK - 1) // _CHUNK):
        # Chunk c's own stream; SeedSequence mixes (seed, c) into 32 bits (torch's CPU generator keeps 32).
        gen.manual_seed(int(np.random.SeedSequence([seed, c]).generate_state(1)[0]))
        rows = torch.arange(c * _CHUNK, (c + 1) * _CHUNK, device=dev)
        made = deform(src[rows % M], gen, alpha, sigma, max_rotation, max_scale, max_shear, max_shift)
        lo, hi = max(start, c * _CHUNK), min(start + n, (c + 1) * _CHUNK)
        part = made[lo - c * _CHUNK : hi - c * _CHUNK]
        out[lo - start : hi - start] = part.mul(255).round_().clamp_(0, 255) if as_uint8 else part.clamp_(0, 1)
    index = torch.arange(start, start + n, device=labels.device) % M
    return out, labels[index].to(dev)
