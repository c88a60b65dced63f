"""tegrastats / nvpmodel / clock parsing on recorded output, and BoardMonitor on a real subprocess.

The sample lines follow the documented tegrastats format of each board and release (JetPack 6 prints a
timestamp, lower-case sensors and mW rails with averages; JetPack 5 on AGX Orin prints upper-case
sensors, -256C for powered-off ones and two GPC frequencies; older releases print unit-less rails).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from edgeagent.jetson.telemetry import (BoardMonitor, CpuCore, MonitorConfig, PowerMode, Rail, board_warnings,
                                        parse_nvpmodel, parse_tegrastats, read_clock_state)

ORIN_NANO = ("03-14-2025 09:12:41 RAM 3121/7620MB (lfb 12x4MB) SWAP 0/3810MB (cached 0MB) "
             "CPU [12%@1510,8%@1510,off,off,15%@1510,4%@1510] EMC_FREQ 11%@2133 GR3D_FREQ 47%@[624] "
             "NVDEC off NVJPG off VIC off APE 200 cpu@51.25C soc2@49.593C soc0@50.406C gpu@50.843C tj@51.25C "
             "soc1@49.875C VDD_IN 7204mW/6890mW VDD_CPU_GPU_CV 2210mW/1984mW VDD_SOC 1866mW/1801mW")
ORIN_NX = ("11-02-2024 17:40:03 RAM 5412/15656MB (lfb 3x4MB) SWAP 12/7828MB (cached 0MB) "
           "CPU [35%@1984,28%@1984,31%@1984,40%@1984,22%@1984,19%@1984,25%@1984,30%@1984] EMC_FREQ 18%@3199 "
           "GR3D_FREQ 76%@[918] NVENC off NVDEC off NVJPG off NVJPG1 off VIC off OFA off NVDLA0 off NVDLA1 off "
           "PVA0_FREQ off APE 174 cpu@63.5C soc2@59.812C soc0@61.187C gpu@62.031C tj@63.5C soc1@60.375C "
           "VDD_IN 14872mW/13990mW VDD_CPU_GPU_CV 7104mW/6515mW VDD_SOC 3120mW/3015mW")
AGX_ORIN_HOT = ("RAM 9843/62796MB (lfb 9620x4MB) SWAP 0/31398MB (cached 0MB) "
                "CPU [5%@2201,3%@2201,2%@2201,4%@2201,1%@2201,0%@2201,2%@2201,1%@2201,off,off,off,off] "
                "EMC_FREQ 2%@3199 GR3D_FREQ 99%@[1300,1300] VIC_FREQ 115 APE 174 CV0@-256C CPU@98.1C Tboard@41C "
                "SOC2@95.5C Tdiode@44.25C SOC0@96.125C CV1@-256C GPU@97.8C tj@98.1C SOC1@95.9C CV2@-256C "
                "VDD_GPU_SOC 28394mW/27510mW VDD_CPU_CV 6380mW/6020mW VIN_SYS_5V0 5620mW/5590mW "
                "VDDQ_VDD2_1V8AO 1210mW/1190mW")
LEGACY = ("RAM 3347/7467MB (lfb 896x4MB) SWAP 0/3733MB (cached 0MB) CPU [21%,19%,off,20%]@1190 EMC_FREQ 13%@2133 "
          "GR3D_FREQ 61% APE 150 MTS fg 0% bg 0% NVDLA0 OFF VIC 0%@115 VDD_IN 5336/4970 VDD_CPU_GPU_CV 2617/2336 "
          "VDD_SOC 1478/1318 CV0@-256C GPU@49.2C PMIC@50.0C AO@48.5C thermal@50.187C")


def test_orin_nano_line():
    s = parse_tegrastats(ORIN_NANO)
    assert s.timestamp == "03-14-2025 09:12:41"
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb, s.swap_total_mb) == (3121, 7620, 0, 3810)
    assert len(s.cpus) == 6 and [c.online for c in s.cpus] == [True, True, False, False, True, True]
    assert s.cpus[0] == CpuCore(12, 1510) and s.cpus[2] == CpuCore(None, None)
    assert s.cpu_load_pct == pytest.approx((12 + 8 + 15 + 4) / 4)
    assert (s.gpu_load_pct, s.gpu_freq_mhz, s.emc_load_pct, s.emc_freq_mhz) == (47, 624, 11, 2133)
    assert s.temps_c == {"cpu": 51.25, "soc2": 49.593, "soc0": 50.406, "gpu": 50.843, "tj": 51.25, "soc1": 49.875}
    assert s.rails == {"VDD_IN": Rail(7204, 6890), "VDD_CPU_GPU_CV": Rail(2210, 1984), "VDD_SOC": Rail(1866, 1801)}
    assert s.total_power_mw == 7204
    assert s.ram_used_pct == pytest.approx(100 * 3121 / 7620)


def test_orin_nx_line():
    s = parse_tegrastats(ORIN_NX)
    assert len(s.cpus) == 8 and all(c.online and c.freq_mhz == 1984 for c in s.cpus)
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (76, 918)
    assert set(s.rails) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}  # APE / PVA0_FREQ are not rails
    assert s.max_temp_c == 63.5 and s.swap_used_mb == 12


def test_agx_orin_line():
    s = parse_tegrastats(AGX_ORIN_HOT)
    assert s.timestamp is None
    assert len(s.cpus) == 12 and sum(c.online for c in s.cpus) == 8
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (99, 1300)
    assert "cv0" not in s.temps_c and "cv2" not in s.temps_c  # -256C: sensor powered off
    assert s.temps_c["tboard"] == 41.0 and s.temps_c["tj"] == 98.1 and s.max_temp_c == 98.1
    assert s.rails["VDD_GPU_SOC"] == Rail(28394, 27510) and set(s.rails) == {
        "VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}
    assert s.total_power_mw is None  # AGX rails cover parts of the module only


def test_legacy_line():
    s = parse_tegrastats(LEGACY)
    assert [c.load_pct for c in s.cpus] == [21, 19, None, 20]
    assert s.cpus[0].freq_mhz == 1190
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (61, None)
    assert s.rails["VDD_IN"] == Rail(5336, 4970) and "APE" not in s.rails and "VIC" not in s.rails
    assert s.temps_c["gpu"] == 49.2 and "cv0" not in s.temps_c


def test_single_value_rails_and_json():
    s = parse_tegrastats("RAM 2840/7620MB CPU [25%@1420,off] GR3D_FREQ 76% VDD_IN 5765mW VDD_SOC 1497mW")
    assert s.rails == {"VDD_IN": Rail(5765, None), "VDD_SOC": Rail(1497, None)}
    d = json.loads(json.dumps(parse_tegrastats(ORIN_NANO).to_dict()))
    assert d["rails"]["VDD_IN"] == {"current_mw": 7204, "average_mw": 6890}
    assert d["max_temp_c"] == 51.25 and d["total_power_mw"] == 7204 and len(d["cpus"]) == 6


def test_not_a_tegrastats_line():
    with pytest.raises(ValueError, match="not a tegrastats line"):
        parse_tegrastats("tegrastats: command not found")


def test_board_warnings():
    cfg = MonitorConfig()
    assert board_warnings(parse_tegrastats(ORIN_NX), cfg) == {}
    assert set(board_warnings(parse_tegrastats(AGX_ORIN_HOT), cfg)) == {"throttling"}
    assert set(board_warnings(parse_tegrastats(AGX_ORIN_HOT), MonitorConfig(throttle_c=99.0))) == {"hot"}
    full = ORIN_NANO.replace("RAM 3121/7620MB", "RAM 7400/7620MB")
    found = board_warnings(parse_tegrastats(full), cfg)
    assert set(found) == {"memory"} and "7400/7620 MB" in found["memory"]


@pytest.mark.parametrize("text, expected", [
    ("NV Fan Mode:quiet\nNV Power Mode: 15W\n0\n", PowerMode("15W", 0)),
    ("NV Power Mode: MAXN_SUPER\n2\n", PowerMode("MAXN_SUPER", 2)),
    ("NVPM WARN: patching tpc_pg_mask: (0x0:0x0)\nNV Power Mode: MAXN\n0", PowerMode("MAXN", 0)),
    ("NV Power Mode: 25W\n", PowerMode("25W", None)),
])
def test_nvpmodel(text, expected):
    assert parse_nvpmodel(text) == expected


def test_nvpmodel_garbage():
    with pytest.raises(ValueError, match="NV Power Mode"):
        parse_nvpmodel("nvpmodel: permission denied")


def _cpufreq(root, cpu, lo, hi):
    d = root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
    d.mkdir(parents=True)
    (d / "scaling_min_freq").write_text(f"{lo}\n")
    (d / "scaling_max_freq").write_text(f"{hi}\n")


def _gpu(root, lo, hi, name="17000000.gpu"):
    d = root / "sys/class/devfreq" / name
    d.mkdir(parents=True)
    (d / "min_freq").write_text(f"{lo}\n")
    (d / "max_freq").write_text(f"{hi}\n")


def test_clock_state_from_sysfs(tmp_path):
    assert read_clock_state(tmp_path) is None  # no cpufreq: unknown, not "off"
    pinned = tmp_path / "pinned"
    for cpu in range(6):
        _cpufreq(pinned, cpu, 1510400, 1510400)
    _gpu(pinned, 624750000, 624750000)
    state = read_clock_state(pinned)
    assert state.cpu_pinned and state.gpu_pinned and state.jetson_clocks_active
    scaling = tmp_path / "scaling"
    for cpu in range(6):
        _cpufreq(scaling, cpu, 729600 if cpu == 3 else 1510400, 1510400)
    _gpu(scaling, 306000000, 624750000, name="17000000.ga10b")
    state = read_clock_state(scaling)
    assert not state.cpu_pinned and state.gpu_pinned is False and not state.jetson_clocks_active


def _printer(lines, linger_s=0.0):
    """A real subprocess printing ``lines`` like tegrastats does, then lingering."""
    script = ("import sys, time\n"
              f"for line in {lines!r}:\n    print(line, flush=True)\n"
              "print('garbage that is not tegrastats', flush=True)\n"
              f"time.sleep({linger_s})\n")
    return [sys.executable, "-c", script]


def _wait(predicate, timeout_s=10.0):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not predicate():
        time.sleep(0.02)
    return predicate()


def test_monitor_reads_samples_and_warns_on_transitions():
    warnings = []
    lines = [ORIN_NX, AGX_ORIN_HOT, AGX_ORIN_HOT, ORIN_NX, AGX_ORIN_HOT]
    monitor = BoardMonitor(warnings.append, command=_printer(lines))
    with monitor:
        assert _wait(lambda: monitor.samples == len(lines))
    assert monitor.latest == parse_tegrastats(AGX_ORIN_HOT)
    # Edge-triggered: one warning per time the board crosses into the condition.
    assert [w.kind for w in warnings] == ["throttling", "throttling"]
    assert "98.1 °C" in warnings[0].message and warnings[0].sample.max_temp_c == 98.1


def test_monitor_stops_a_running_process():
    monitor = BoardMonitor(command=_printer([ORIN_NANO], linger_s=60))
    assert monitor.start()
    assert _wait(lambda: monitor.samples == 1)
    t0 = time.monotonic()
    monitor.stop()
    assert time.monotonic() - t0 < 5 and not monitor.running
    monitor.stop()  # idempotent


def test_monitor_survives_a_failing_callback():
    def boom(_):
        raise RuntimeError("callback bug")

    with BoardMonitor(boom, command=_printer([AGX_ORIN_HOT, ORIN_NX])) as monitor:
        assert _wait(lambda: monitor.samples == 2)


def test_monitor_absent_tool():
    monitor = BoardMonitor(command=["edgeagent-no-such-tegrastats"])
    assert not monitor.available and not monitor.start() and monitor.latest is None
    monitor.stop()
    default = BoardMonitor(config=MonitorConfig(interval_ms=500))
    assert default.command == ["tegrastats", "--interval", "500"]
    assert default.available == (shutil.which("tegrastats") is not None)


def _stats(env):
    return subprocess.run([sys.executable, "-m", "edgeagent.cli", "jetson", "stats"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env})


def test_stats_command_with_a_tegrastats_on_path(tmp_path):
    # A stand-in tegrastats (a real executable on PATH) printing a recorded Orin Nano line, then running on.
    tool = tmp_path / "tegrastats"
    tool.write_text(f"#!/bin/sh\necho '{ORIN_NANO}'\nexec sleep 30\n")
    tool.chmod(0o755)
    done = _stats({"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tegrastats"]["rails"]["VDD_IN"]["current_mw"] == 7204
    assert report["tegrastats"]["gpu_load_pct"] == 47


@pytest.mark.skipif(shutil.which("tegrastats") is not None, reason="this machine has tegrastats")
def test_stats_command_without_tegrastats():
    done = _stats({})
    assert done.returncode == 2 and "tegrastats not found" in done.stderr
