"""`edgeagent jetson check`, the board readers, the systemd unit and the deploy notes."""

from __future__ import annotations

import configparser
import importlib.resources
import importlib.util
import json
import re
import subprocess
import sys

import numpy
import pytest

from edgeagent.cli import build_parser
from edgeagent.jetson.check import (STATUSES, Board, format_table, jetpack_for, parse_nv_tegra_release, read_board,
                                    run_checks)

COMPONENTS = ["platform", "board", "jetpack", "numpy", "tensorrt", "cuda-python", "onnxruntime", "opencv-gstreamer",
              "tegrastats", "nvpmodel", "jetson_clocks"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edgeagent.cli", "jetson", "check", *args],
                          capture_output=True, text=True, timeout=60)


def test_check_runs_anywhere_and_exits_0():
    done = _cli()
    assert done.returncode == 0, done.stderr
    for name in COMPONENTS:
        assert re.search(rf"^{re.escape(name)}\s+({'|'.join(STATUSES)})\s", done.stdout, re.MULTILINE), name


def test_check_json_matches_this_machine():
    done = _cli("--json")
    assert done.returncode == 0, done.stderr
    items = {item["name"]: item for item in json.loads(done.stdout)}
    assert list(items) == COMPONENTS
    assert all(item["status"] in STATUSES for item in items.values())
    has_trt = importlib.util.find_spec("tensorrt") is not None
    assert (items["tensorrt"]["status"] == "ok") == has_trt
    if not has_trt:
        assert "python3-libnvinfer" in items["tensorrt"]["fix"]
    import onnxruntime

    if "TensorrtExecutionProvider" not in onnxruntime.get_available_providers():
        assert items["onnxruntime"]["status"] != "ok" and "onnxruntime-gpu" in items["onnxruntime"]["fix"]


DATE = "Wed Jan  8 01:49:37 UTC 2025"


@pytest.mark.parametrize("text, l4t", [
    ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64"
     f", DATE: {DATE}",
     "36.4.3"),
    ("# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64"
     f", DATE: {DATE}",
     "36.3.0"),
    ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64"
     f", DATE: {DATE}",
     "35.4.1"),
    ("garbage", None),
])
def test_nv_tegra_release(text, l4t):
    assert parse_nv_tegra_release(text) == l4t


def test_jetpack_table():
    assert jetpack_for("36.4.3") == "6.2" and jetpack_for("36.3.0") == "6.0" and jetpack_for("35.4.1") == "5.1.2"
    assert jetpack_for("99.0.0") is None


def _fake_board(root, model: bytes, release: str | None):
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_bytes(model)
    if release is not None:
        (root / "etc").mkdir()
        (root / "etc/nv_tegra_release").write_text(release + "\n")


def test_checks_on_a_jetson_tree(tmp_path):
    _fake_board(tmp_path, b"NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\x00",
                "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: x")
    board = read_board(tmp_path)
    assert board == Board("NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super", "36.4.3")
    items = {item.name: item for item in run_checks(tmp_path)}
    assert items["board"].status == "ok" and items["board"].detail.startswith("NVIDIA Jetson Orin Nano")
    assert items["jetpack"].status == "ok" and items["jetpack"].detail == "L4T R36.4.3 (JetPack 6.2)"
    # On a Jetson, numpy 2 breaks JetPack's bindings: the check says so.
    expected = "warn" if int(numpy.__version__.split(".")[0]) >= 2 else "ok"
    assert items["numpy"].status == expected


def test_checks_on_an_old_jetpack_and_on_a_pc(tmp_path):
    old = tmp_path / "old"
    _fake_board(old, b"NVIDIA Jetson AGX Orin Developer Kit\x00", "# R35 (release), REVISION: 4.1, GCID: 1")
    jetpack = {i.name: i for i in run_checks(old)}["jetpack"]
    assert jetpack.status == "warn" and "JetPack 5.1.2" in jetpack.detail and "JetPack 6" in jetpack.fix
    pc = tmp_path / "pc"
    pc.mkdir()
    items = {i.name: i for i in run_checks(pc)}
    assert items["board"].status == "info" and "not a Jetson" in items["board"].detail
    assert items["jetpack"].status == "info" and items["numpy"].status == "ok"


def test_table_shows_fixes_and_counts(tmp_path):
    table = format_table(run_checks(tmp_path))
    assert table.splitlines()[0].split() == ["component", "status", "detail"]
    missing = sum(1 for line in table.splitlines() if re.match(r"^\S+\s+missing\s", line))
    assert f"{missing} missing" in table.splitlines()[-1]
    assert table.count("fix: ") >= missing


def test_systemd_unit():
    text = (importlib.resources.files("edgeagent.jetson") / "edgeagent.service").read_text()
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(text)
    assert "network-online.target" in unit["Unit"]["After"] and "network-online.target" in unit["Unit"]["Wants"]
    service = unit["Service"]
    assert service["ExecStart"].endswith("edgeagent serve --config /etc/edgeagent/robot.yaml")
    assert service["Restart"] == "on-failure"
    assert service["User"] == "edgeagent" and service["User"] != "root"
    assert service["MemoryMax"] and service["LimitNOFILE"]
    assert "PrivateDevices" not in service  # it would hide the GPU device nodes
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_readme_commands_exist():
    readme = (importlib.resources.files("edgeagent.jetson") / "README.md").read_text()
    for needle in ("--system-site-packages", "numpy<2", "onnxruntime-gpu --index-url", "python3-libnvinfer",
                   "edgeagent.service", "edgeagent jetson check"):
        assert needle in readme, needle
    mentioned = set(re.findall(r"edgeagent jetson ([a-z][a-z-]+)", readme))
    assert {"check", "build-engine", "stats"} <= mentioned
    for sub in mentioned:  # each one the README tells users to run is a real sub-command
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args(["jetson", sub, "--help"])
        assert done.value.code == 0, sub
