"""What every figure shares: the run settings, timing in runs, the figure record, skipping.

A *run* is a batch of repetitions of one call; its sample is the median time per call over the batch.
A figure reports, per measure, the median, min and max of the run samples (``summary`` of
``bench_service``), so one slow run (the machine busy elsewhere) shows in the max, not in the median.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench_service import summary

ROOT = Path(__file__).resolve().parents[1]
#: Runs per measure (full and --quick).
RUNS, QUICK_RUNS = 5, 3


class Skip(Exception):
    """A figure that cannot be measured here; the message says why and what to install or pass."""


@dataclass(frozen=True)
class Context:
    """What the figures are measured with (from run.py's options)."""

    # Model folders; None when that precision is not available.
    fp32: Path | None
    int8: Path | None
    # Training checkpoint (final.pt) of that model, when there is one.
    checkpoint: Path | None
    quick: bool = False
    # Scratch folder for exports made during the run.
    scratch: Path = field(default_factory=lambda: Path("/tmp"))

    @property
    def runs(self) -> int:
        return QUICK_RUNS if self.quick else RUNS

    def reps(self, full: int, quick: int) -> int:
        """Repetitions per run: ``full`` normally, ``quick`` with --quick."""
        return quick if self.quick else full

    def model(self, precision: str = "int8") -> Path:
        """The model folder of ``precision``, falling back to the other one; Skip when there is none."""
        order = (self.int8, self.fp32) if precision == "int8" else (self.fp32, self.int8)
        for folder in order:
            if folder is not None:
                return folder
        raise Skip("no model: pass --model DIR (a folder with planner.onnx + manifest.json, or with fp32/ and "
                   "int8/ inside) or ship one in models/shipped/")


def time_runs(fn: Callable[[], Any], runs: int, reps: int, *, warmup: int = 3, scale: float = 1e3,
              pooled: list[float] | None = None) -> list[float]:
    """Per-run medians of ``fn``'s wall time (seconds x ``scale``: ms by default); ``pooled`` gets every call."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        batch = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            batch.append((time.perf_counter() - t) * scale)
        samples.append(statistics.median(batch))
        if pooled is not None:
            pooled.extend(batch)
    return samples


def chunk_medians(values: list[float], runs: int) -> list[float]:
    """``values`` (one per call, in order) cut into ``runs`` consecutive runs: the median of each."""
    n = max(1, len(values) // runs)
    return [statistics.median(values[i * n:(i + 1) * n]) for i in range(min(runs, len(values)))]


def percentile(values: list[float], q: float) -> float:
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q / 100 * len(v)))], 4)


def measure(name: str, unit: str, samples: list[float], run: str, **extra: Any) -> dict[str, Any]:
    """One row: ``name`` in ``unit``, the median/min/max of the run ``samples``, what a run was."""
    return {"name": name, "unit": unit, **summary(samples), "runs": len(samples), "run": run,
            "samples": [round(s, 4) for s in samples], **extra}


def value(name: str, unit: str, v: float, run: str, **extra: Any) -> dict[str, Any]:
    """A row that is one deterministic number (a success rate): median = min = max = it."""
    return {"name": name, "unit": unit, "median": v, "min": v, "max": v, "runs": 1, "run": run, **extra}
