"""Input checks shared by the public API: one place for "Expected ..., got ..." messages."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "check_tensor",
    "check_ndim",
    "check_same_device",
    "check_same_dtype",
    "check_finite",
    "check_floating",
]


def check_tensor(name: str, value: object) -> Tensor:
    """Return ``value`` if it is a tensor, else raise ``TypeError`` naming the argument."""
    if not isinstance(value, Tensor):
        raise TypeError(f"Expected {name} to be a torch.Tensor, got {type(value).__name__}")
    return value


def check_ndim(name: str, value: Tensor, ndim: int | Sequence[int], shape_hint: str) -> None:
    """Raise ``ValueError`` unless ``value.ndim`` is ``ndim`` (or one of them)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if value.ndim not in allowed:
        raise ValueError(
            f"Expected {name} of shape {shape_hint} ({' or '.join(map(str, allowed))}-D), "
            f"got shape {tuple(value.shape)}"
        )


def check_floating(name: str, value: Tensor) -> None:
    """Raise ``TypeError`` unless ``value`` has a floating-point dtype."""
    if not value.is_floating_point():
        raise TypeError(f"Expected {name} to have a floating-point dtype, got {value.dtype}")


def check_same_device(**tensors: Tensor | None) -> None:
    """Raise ``ValueError`` if the given tensors are on different devices."""
    present = {k: v for k, v in tensors.items() if v is not None}
    devices = {k: v.device for k, v in present.items()}
    if len(set(devices.values())) > 1:
        listed = ", ".join(f"{k} on {d}" for k, d in devices.items())
        raise ValueError(f"Expected all tensors on one device, got {listed}")


def check_same_dtype(**tensors: Tensor | None) -> None:
    """Raise ``TypeError`` if the given tensors have different dtypes."""
    present = {k: v for k, v in tensors.items() if v is not None}
    dtypes = {k: v.dtype for k, v in present.items()}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{k} is {d}" for k, d in dtypes.items())
        raise TypeError(f"Expected all tensors to have one dtype, got {listed}")


def check_finite(name: str, value: Tensor) -> None:
    """Raise ``ValueError`` if ``value`` holds NaN or infinity (one device sync)."""
    if not bool(torch.isfinite(value).all()):
        n_bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"Expected {name} to be finite, got {n_bad} NaN or infinite entries")
