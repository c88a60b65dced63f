"""``benchmarks/run.py`` writes what the README includes: per-figure JSON with the machine, the versions
and median/min/max per measure, and RESULTS.md. A cheap figure in --quick mode; no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(60)
def test_quick_run_of_a_cheap_figure_writes_json_and_the_markdown_table(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--only", "router",
                           "--out", str(out)], capture_output=True, text=True, timeout=50, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "[1/1] router" in proc.stderr  # progress goes to stderr

    record = json.loads((out / "router.json").read_text())
    assert record["figure"] == "router" and record["quick"] is True
    for key in ("cpu", "cores", "platform", "python", "numpy", "onnxruntime", "torch", "transformers", "pyzmq"):
        assert key in record["machine"], key
    assert record["rows"], record
    # The record names the shipped model by its path in the repository, not this checkout's location.
    assert record["model"]["int8"] == "models/shipped/int8"
    assert str(ROOT) not in json.dumps(record)
    for row in record["rows"]:
        assert row["unit"]
        assert row["min"] <= row["median"] <= row["max"]
        assert row["runs"] == len(row["samples"]) >= 3
        assert row["run"]
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))  # atomic writes leave nothing behind

    table = (out / "RESULTS.md").read_text()
    assert "| figure | measure | unit | median | min | max | runs | a run | budget |" in table
    assert "router (quick)" in table and "A run is" in table


def test_unknown_figure_is_refused_with_the_list(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--only", "nope",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=50)
    assert proc.returncode == 2 and "plan, vlm, cycles" in proc.stderr
