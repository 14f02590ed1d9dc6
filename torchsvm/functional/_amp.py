"""Autocast support for the hand-written Functions.

A custom ``autograd.Function`` is not on autocast's op lists, so its wrapper applies the
same rule torch applies to the op it replaces: ``linear`` runs in the autocast dtype (like
``torch.nn.functional.linear``), ``cross_entropy`` in float32 (like torch's softmax family).
The casts happen before ``.apply`` as ordinary differentiable ``.to`` calls, so the
gradients flow back to the caller's dtype exactly as they do for torch's own ops.
"""

from __future__ import annotations

from typing import overload

import torch
from torch import Tensor


def autocast_dtype(t: Tensor) -> torch.dtype | None:
    """The dtype autocast would cast ``t`` to for a lower-precision op, or None if it is off."""
    device_type = t.device.type
    if device_type not in ("cuda", "cpu", "xpu", "mps") or not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)


@overload
def cast_floating(t: Tensor, dtype: torch.dtype | None) -> Tensor: ...
@overload
def cast_floating(t: None, dtype: torch.dtype | None) -> None: ...
def cast_floating(t: Tensor | None, dtype: torch.dtype | None) -> Tensor | None:
    """Cast a floating tensor to ``dtype`` (no-op for None, non-floating or no dtype)."""
    if t is None or dtype is None or not t.is_floating_point() or t.dtype == dtype:
        return t
    return t.to(dtype)
