"""mkdocs hook: the benchmarks page's plots, drawn from the records in benchmarks/results at build time
(plots are not committed; the records are)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def scale_rows(device: str) -> list[dict]:
    """Fit time per (library, N) over every ``scale-<device>-*`` record: the median of the runs."""
    runs: dict[tuple[str, int], list[float]] = {}
    for path in sorted((ROOT / "benchmarks" / "results").glob(f"scale-{device}-*.json")):
        for r in json.loads(path.read_text())["rows"]:
            if r.get("fit_s") is not None:
                runs.setdefault((r["library"], r["rows"]), []).append(r["fit_s"])
    return [{"library": lib, "rows": n, "fit_s": statistics.median(t)} for (lib, n), t in sorted(runs.items())]


def on_pre_build(config, **kwargs) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_scale import plot

    out = Path(config["docs_dir"]) / "img"
    out.mkdir(exist_ok=True)
    plot(scale_rows("cpu"), out / "scale-cpu.png", "2-core CPU; run medians")
