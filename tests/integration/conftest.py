"""Integration fixtures: real ZeroMQ sockets on 127.0.0.1 (random ports, linger 0) and real processes.

Every test here gets a timeout. ``tiny_model`` is a random-weight planner folder made once per session
by the project's own export path (``PlannerNet`` -> checkpoint -> ``export_onnx``), so the service runs
the real ONNX runtime on images and text. ``plugins.py`` holds a user's robot class and workstation
planners that misbehave on purpose; subprocesses import them through PYTHONPATH.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
#: Seconds any one integration test may take.
TEST_TIMEOUT_S = 60
#: Seconds a subprocess may take to print its ready line.
READY_TIMEOUT_S = 30


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S))


def build_tiny_model(out_dir: Path, *, seed: int = 0, name: str = "tiny-random", threshold: float = 0.5) -> Path:
    """A random-weight planner folder made the way real ones are: checkpoint -> ``export_onnx``."""
    import torch

    from edgeagent.models.dataset import primitive_table
    from edgeagent.models.export import export_onnx
    from edgeagent.models.net import NetConfig, PlannerNet
    from edgeagent.models.tokenizer import build_vocab

    vocab = build_vocab(["put the red block in the blue bowl", "pick up the green block",
                         "stack all blocks", "move the yellow block a little to the left"])
    prims = primitive_table()
    cfg = NetConfig(vocab_size=len(vocab), P=1 + len(prims), S=32, G=8, T=12, K=2, A=2, width=32, heads=2,
                    layers=1, mlp=2, cycles=1, stem=(16,))
    torch.manual_seed(seed)
    net = PlannerNet(cfg)
    ckpt = out_dir.parent / f"{out_dir.name}.pt"
    torch.save({"config": cfg.to_dict(), "model": net.state_dict(), "vocab": vocab, "primitives": prims,
                "cycles": 1, "confidence_threshold": threshold, "training": {"data": "none: random weights"}}, ckpt)
    export_onnx(ckpt, out_dir, name=name, objects=False)  # an untrained object map would call all absent
    return out_dir


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_model_b(tmp_path_factory) -> Path:
    """A second model (other weights, other name): what `reload` swaps to."""
    return build_tiny_model(tmp_path_factory.mktemp("models_b") / "tiny_b", seed=1, name="tiny-random-b")


@pytest.fixture
def zmq_context():
    import zmq

    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PYTHONUNBUFFERED"] = "1"
    # One inference thread per process: the test machine has 2 cores shared by everything.
    env["OMP_NUM_THREADS"] = "1"
    return env


class Process:
    """An ``edgeagent`` subprocess; ``ready`` holds the key=value pairs of its ready line."""

    def __init__(self, args: list[str], cwd: Path | None = None):
        self.args = args
        self.proc = subprocess.Popen([sys.executable, "-m", "edgeagent.cli", *args], cwd=cwd, env=subprocess_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True).start()
        self.ready = self._wait_ready()

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink.put(line) if isinstance(sink, queue.Queue) else sink.append(line)

    def _wait_ready(self) -> dict[str, str]:
        try:
            while True:
                line = self.lines.get(timeout=READY_TIMEOUT_S)
                if ": ready " in line:
                    return dict(part.split("=", 1) for part in line.split(": ready ", 1)[1].split() if "=" in part)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"edgeagent {' '.join(self.args)} did not get ready; stderr:\n"
                                 f"{''.join(self.stderr)}") from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9


@pytest.fixture
def processes():
    """Start ``edgeagent`` subprocesses with ``processes(args)``; all are killed at teardown."""
    started: list[Process] = []

    def start(args: list[str], cwd: Path | None = None) -> Process:
        p = Process(args, cwd)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()
