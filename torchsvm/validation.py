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
    "check_pm1_labels",
    "check_positive",
    "check_symmetric",
    "check_gram_and_labels",
    "per_sample_costs",
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
    _check_same(tensors, "device", "on", ValueError, "Expected all tensors on one device")


def check_same_dtype(**tensors: Tensor | None) -> None:
    """Raise ``TypeError`` if the given tensors have different dtypes."""
    _check_same(tensors, "dtype", "is", TypeError, "Expected all tensors to have one dtype")


def _check_same(tensors: dict[str, Tensor | None], attribute: str, verb: str, error: type[Exception],
                expected: str) -> None:
    """The tensors given (None: left out) agree on ``attribute``; else ``error`` listing each one's."""
    values = {k: getattr(v, attribute) for k, v in tensors.items() if v is not None}
    if len(set(values.values())) > 1:
        raise error(f"{expected}, got " + ", ".join(f"{k} {verb} {value}" for k, value in values.items()))


def check_finite(name: str, value: Tensor) -> None:
    """Raise ``ValueError`` if ``value`` holds NaN or infinity (one device sync)."""
    # The extremes of a floating tensor are finite exactly when every entry is (NaN propagates):
    # one pass without the boolean temporary of isfinite.
    if value.is_floating_point() and value.numel():
        extremes = torch.stack(torch.aminmax(value.detach()))
        if bool(torch.isfinite(extremes).all()):
            return
    if not bool(torch.isfinite(value).all()):
        n_bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"Expected {name} to be finite, got {n_bad} NaN or infinite entries")


def check_pm1_labels(y: Tensor, name: str = "y") -> None:
    """Raise ``ValueError`` unless every entry of ``y`` is -1 or +1."""
    if y.numel() and not bool(((y == 1) | (y == -1)).all()):
        found = torch.unique(y.detach()).tolist()
        raise ValueError(f"Expected {name} to hold only -1 and +1, got values {found[:6]}")


def per_sample_costs(C: float | Tensor, y: Tensor, validate: bool = True) -> Tensor:
    """Broadcast ``C`` (scalar, ``(N,)`` or ``(N, K)``) to ``y``'s ``(N, K)`` shape, checking C > 0
    (a tensor's values only with ``validate``: one device sync)."""
    N, K = y.shape
    if isinstance(C, Tensor):
        if C.ndim == 0:
            C = C.expand(N, K)
        elif C.ndim == 1 and C.shape[0] == N:
            C = C.unsqueeze(1).expand(N, K)
        elif tuple(C.shape) != (N, K):
            raise ValueError(f"Expected C to be a scalar, ({N},) or ({N}, {K}), got shape {tuple(C.shape)}")
        if validate:
            check_positive("C", C)
        return C
    check_positive("C", C)
    return torch.full((N, K), float(C), dtype=y.dtype, device=y.device)


def check_positive(name: str, value: float | Tensor) -> None:
    """Raise ``ValueError`` unless ``value`` (a number, or every entry of a tensor) is > 0 (a tensor: one sync)."""
    if isinstance(value, Tensor):
        if value.numel() and not bool((value > 0).all()):
            raise ValueError(f"Expected {name} > 0 everywhere, got minimum {float(value.detach().min()):.4g}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"Expected {name} > 0, got {value!r}")


def check_positive_int(name: str, value: object, at_least: int = 1) -> None:
    """Raise ``ValueError`` unless ``value`` is an int (not a bool) >= ``at_least``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < at_least:
        wanted = "a positive int" if at_least == 1 else f"an int >= {at_least}"
        raise ValueError(f"Expected {name} to be {wanted}, got {value!r}")


def check_symmetric(name: str, K: Tensor, rtol: float = 1e-6) -> None:
    """Raise ``ValueError`` unless the (batch of) square matrices ``K`` is symmetric to ``rtol`` of its scale."""
    if not K.numel():
        return
    asym = float(torch.sub(K, K.mT).abs_().amax())
    scale = float(torch.stack(torch.aminmax(K)).abs().amax())
    if asym > rtol * max(1.0, scale):
        raise ValueError(f"Expected a symmetric {name}, got max |{name} - {name}^T| = {asym:.3g}")


def check_gram_and_labels(K: Tensor, y: Tensor) -> tuple[Tensor, Tensor, bool]:
    """The shape checks of a dual layer's inputs: ``K`` ``(N, N)`` or ``(B, N, N)`` floating,
    ``y`` ``(N,)`` or ``(B, N)``. Returns ``(K as (B, N, N), y as (1 or B, N), single)``."""
    check_tensor("K", K)
    check_tensor("y", y)
    check_floating("K", K)
    if K.ndim not in (2, 3) or K.shape[-1] != K.shape[-2]:
        raise ValueError(f"Expected a square K of shape (N, N) or (B, N, N), got shape {tuple(K.shape)}")
    single = K.ndim == 2
    Kb = K.unsqueeze(0) if single else K
    B, N = Kb.shape[0], Kb.shape[-1]
    Y = y.reshape(1, -1) if y.ndim == 1 else y
    if Y.ndim != 2 or Y.shape[-1] != N or Y.shape[0] not in (1, B):
        raise ValueError(f"Expected y of shape ({N},) or ({B}, {N}) to match K {tuple(K.shape)}, got {tuple(y.shape)}")
    return Kb, Y, single
