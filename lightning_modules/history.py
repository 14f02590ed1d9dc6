"""Read the per-epoch curves back from a TensorBoard run, for plots and scripts."""

from __future__ import annotations

import os

__all__ = ["read_scalars"]


def read_scalars(log_dir: str | os.PathLike[str], tags: list[str]) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` for each tag that the event files in ``log_dir`` hold."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    present = set(acc.Tags()["scalars"])
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags if t in present}
