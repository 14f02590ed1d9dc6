"""Writing a benchmark's record to benchmarks/results/<stem>.{json,md}."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def save_record(stem: str, record: dict, markdown_lines: list[str]) -> Path:
    """Write ``record`` as JSON and ``markdown_lines`` as Markdown; return the path without suffix."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / stem
    path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    path.with_suffix(".md").write_text("\n".join(markdown_lines) + "\n")
    print(f"wrote {path}.json and .md")
    return path
