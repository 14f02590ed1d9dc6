"""The benchmarks' record writer: a second record of the same name must not replace the first."""

import importlib.util
import json
from pathlib import Path

import pytest

_RECORD = Path(__file__).resolve().parents[1] / "benchmarks" / "_record.py"


@pytest.fixture()
def record_module(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_record", _RECORD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    return module


def test_save_record_keeps_an_existing_record_and_names_the_commit(record_module):
    first = record_module.save_record("bench-cpu-2026-01-01", {"x": 1}, ["# first"])
    second = record_module.save_record("bench-cpu-2026-01-01", {"x": 2}, ["# second"])
    assert first.name == "bench-cpu-2026-01-01" and second.name == "bench-cpu-2026-01-01-2"
    assert json.loads(first.with_suffix(".json").read_text())["x"] == 1
    assert json.loads(second.with_suffix(".json").read_text())["x"] == 2
    assert "commit" in json.loads(second.with_suffix(".json").read_text())
    assert second.with_suffix(".md").read_text().startswith("# second")
    tagged = record_module.save_record("bench-cpu-2026-01-01", {}, ["# t"], tag="fashion-20k")
    assert tagged.name == "bench-cpu-2026-01-01-fashion-20k"
