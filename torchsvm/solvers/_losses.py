"""The primal solvers' losses as functions of the margin m = y f(x): value, first and second derivative."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["loss_terms"]


def loss_terms(margins: Tensor, loss: str, h: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """Loss value, first and second derivative with respect to the margin m = y f(x).

    ``hinge`` with ``h > 0`` is the quadratically smoothed hinge (0 for m >= 1, (1-m)^2 / 2h on
    1-h < m < 1, 1 - m - h/2 below), which differs from the hinge by at most h/2; with h = 0 it
    is the hinge itself with subgradient 0 at m = 1.
    """
    z = 1 - margins
    if loss == "hinge":
        if h <= 0:
            active = (z > 0).to(margins.dtype)
            return z.clamp_min(0), -active, torch.zeros_like(margins)
        t = (z / h).clamp(0, 1)
        value = torch.where(z >= h, z - h / 2, t * z / 2)
        return value, -t, ((z > 0) & (z < h)).to(margins.dtype) / h
    if loss == "squared_hinge":
        zp = z.clamp_min(0)
        return zp * zp, -2 * zp, 2 * (z > 0).to(margins.dtype)
    if loss == "logistic":
        s = torch.sigmoid(-margins)  # = -dL/dm
        return torch.nn.functional.softplus(-margins), -s, s * (1 - s)
    raise ValueError(f"Expected loss to be 'hinge', 'squared_hinge' or 'logistic', got {loss!r}")
