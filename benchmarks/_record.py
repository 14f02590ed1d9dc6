"""What every benchmark shares: the device's name and clock sync, and its record in benchmarks/results."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def save_record(stem: str, record: dict, markdown_lines: list[str], tag: str = "") -> Path:
    """Write ``record`` as JSON and ``markdown_lines`` as Markdown under ``<stem>[-<tag>]``; return the path without suffix.

    Both get the commit they were measured at. An existing record of the same name is kept: the
    new one gets the first free ``-2``, ``-3``, ... suffix.
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = f"{stem}-{tag}" if tag else stem
    path, n = RESULTS / base, 1
    while path.with_suffix(".json").exists() or path.with_suffix(".md").exists():
        n += 1
        path = RESULTS / f"{base}-{n}"
    commit = git_revision()
    path.with_suffix(".json").write_text(json.dumps({**record, "commit": commit}, indent=2) + "\n")
    path.with_suffix(".md").write_text("\n".join([*markdown_lines, "", f"Measured at commit {commit}."]) + "\n")
    print(f"wrote {path}.json and .md")
    return path


def git_revision() -> str:
    """``$TORCHSVM_COMMIT`` where set (a copy of the tree on another machine, whose git may not be
    the tree's), else ``git describe --always --dirty`` of the checkout, else "unknown"."""
    if os.environ.get("TORCHSVM_COMMIT"):
        return os.environ["TORCHSVM_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=RESULTS.parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


# torch is imported where it is needed: a benchmark's child process in an anchors' environment has none.


def device_name(device: Any) -> str:
    """The GPU's name, or the CPU's with the thread count, for the record."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def device_sync(device: Any) -> Callable[[], None]:
    """What to call before reading the clock: CUDA work is asynchronous."""
    import torch

    return torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)


def timed(fn: Callable, sync: Callable[[], None]) -> tuple:
    """``(fn(), seconds)``, the clock read after ``sync`` on both sides (CUDA work is asynchronous)."""
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


def add_record_arguments(p: argparse.ArgumentParser) -> None:
    """--tag (suffix of the record's file name) and --no-save."""
    p.add_argument("--tag", default="", help="suffix of the results file name, e.g. fashion-20k")
    p.add_argument("--no-save", action="store_true", help="print only, write nothing")


def timed_fit_predict(fit: Callable[[], Any], X_test: Any, sync: Callable[[], None] = lambda: None) -> tuple[Any, Any, dict]:
    """``(model, predictions, figures)``: ``fit()`` timed (device work synced on both sides) with the peak
    resident memory it added, then ``model.predict(X_test)`` timed; figures ``fit_s``, ``predict_s``,
    ``peak_added_mib``. Predictions as a NumPy array."""
    import numpy as np

    baseline = reset_peak_memory()
    sync()
    start = time.perf_counter()
    model = fit()
    sync()
    fit_s = time.perf_counter() - start
    added = peak_memory_added(baseline)
    start = time.perf_counter()
    pred = np.asarray(model.predict(X_test))
    predict_s = time.perf_counter() - start
    return model, pred, {"fit_s": fit_s, "predict_s": predict_s, "peak_added_mib": added}


def reset_peak_memory() -> float:
    """Reset this process's peak resident size (Linux: /proc/self/clear_refs 5) and return the current
    resident size in MiB: the baseline of :func:`peak_memory_added`."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mib("VmRSS")


def peak_memory_added(baseline: float) -> float:
    """MiB of peak resident size above ``baseline`` (from :func:`reset_peak_memory`) since that call."""
    return _status_mib("VmHWM") - baseline


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")
