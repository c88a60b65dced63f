"""Board telemetry on a Jetson: tegrastats lines, the nvpmodel power mode, jetson_clocks state.

``parse_tegrastats`` turns one tegrastats line into a ``TegraStats``; ``BoardMonitor`` runs
``tegrastats --interval N`` in a subprocess, keeps the latest sample and calls back with a
``BoardWarning`` when the board starts running hot, throttling or short of memory. On a machine without
these tools (any x86 PC) every reader returns None and the monitor simply does not start.

A tegrastats line on an Orin (JetPack 6) looks like::

    08-28-2024 10:15:21 RAM 2751/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB)
    CPU [2%@729,1%@729,off,...] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] ... cpu@46.093C gpu@45.593C
    tj@46.093C VDD_IN 4752mW/4752mW VDD_CPU_GPU_CV 476mW/476mW VDD_SOC 1428mW/1428mW

Older releases print upper-case sensor names (``CPU@41.5C``), ``GR3D_FREQ 61%`` without a frequency,
and rails without units (``VDD_IN 5336/4970``); all of these parse. A sensor at -256 °C is powered off.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CpuCore:
    """One CPU core: load in % of its current frequency, frequency in MHz; both None when offline."""

    load_pct: int | None
    freq_mhz: int | None

    @property
    def online(self) -> bool:
        return self.load_pct is not None


@dataclass(frozen=True)
class Rail:
    """One power rail: instantaneous and running-average power in mW (average None if not printed)."""

    current_mw: int
    average_mw: int | None


@dataclass(frozen=True)
class TegraStats:
    """One tegrastats sample. Missing fields are None (or empty) rather than guessed."""

    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    swap_used_mb: int | None = None
    swap_total_mb: int | None = None
    cpus: tuple[CpuCore, ...] = ()
    gpu_load_pct: int | None = None
    gpu_freq_mhz: int | None = None
    emc_load_pct: int | None = None
    emc_freq_mhz: int | None = None
    # Sensor name (lower case, e.g. "cpu", "gpu", "tj", "soc0") -> degrees Celsius.
    temps_c: dict[str, float] = field(default_factory=dict)
    # Rail name as printed (e.g. "VDD_IN") -> power.
    rails: dict[str, Rail] = field(default_factory=dict)
    # The line's own timestamp ("MM-DD-YYYY HH:MM:SS") when tegrastats printed one.
    timestamp: str | None = None

    @property
    def cpu_load_pct(self) -> float | None:
        """Mean load over online cores."""
        loads = [c.load_pct for c in self.cpus if c.load_pct is not None]
        return sum(loads) / len(loads) if loads else None

    @property
    def max_temp_c(self) -> float | None:
        """Hottest sensor; ``tj`` (junction) is already the maximum where the board reports it."""
        return max(self.temps_c.values()) if self.temps_c else None

    @property
    def ram_used_pct(self) -> float | None:
        if not self.ram_total_mb or self.ram_used_mb is None:
            return None
        return 100.0 * self.ram_used_mb / self.ram_total_mb

    @property
    def total_power_mw(self) -> int | None:
        """Module input power where tegrastats reports it: VDD_IN (Orin Nano/NX) or POM_5V_IN (older
        modules). None on AGX Orin, whose rails (VDD_GPU_SOC, VDD_CPU_CV, ...) cover parts only."""
        for name in ("VDD_IN", "POM_5V_IN"):
            if name in self.rails:
                return self.rails[name].current_mw
        return None

    def to_dict(self) -> dict:
        """JSON-ready form (for ``health``)."""
        d = asdict(self)
        d.update(cpu_load_pct=self.cpu_load_pct, max_temp_c=self.max_temp_c, ram_used_pct=self.ram_used_pct,
                 total_power_mw=self.total_power_mw)
        return d


_TIMESTAMP = re.compile(r"^(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"\bCPU \[([^\]]*)\](?:@(\d+))?")
_CORE = re.compile(r"^(\d+)%(?:@(\d+))?$")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%(?:@(\d+))?")
_GR3D = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?([\d,]+)\]?)?")
_TEMP = re.compile(r"\b([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(mW)?(?:/(\d+)(?:mW)?)?(?=\s|$)")
# Words followed by numbers that are not power rails.
_NOT_RAILS = {"RAM", "SWAP", "APE", "EMC_FREQ", "GR3D_FREQ", "MTS", "VIC", "VIC_FREQ", "PVA0_FREQ", "NVDEC",
              "NVENC", "NVJPG", "NVJPG1", "OFA", "NVDLA0", "NVDLA1", "MSENC", "IRAM"}
#: Temperatures at or below this are tegrastats' marker for a powered-off sensor (-256C).
_SENSOR_OFF_C = -200.0


def parse_tegrastats(line: str) -> TegraStats:
    """Parse one tegrastats line. Raises ValueError when the line has none of RAM, CPU or GR3D."""
    text = line.strip()
    ram, swap, cpu, gr3d = _RAM.search(text), _SWAP.search(text), _CPU.search(text), _GR3D.search(text)
    if not (ram or cpu or gr3d):
        raise ValueError(f"not a tegrastats line: {text[:80]!r}")
    ts = _TIMESTAMP.match(text)
    emc = _EMC.search(text)
    cores = _parse_cores(cpu.group(1), cpu.group(2)) if cpu else ()
    gpu_freqs = [int(f) for f in gr3d.group(2).split(",") if f] if gr3d and gr3d.group(2) else []
    temps = {name.lower(): float(value) for name, value in _TEMP.findall(text) if float(value) > _SENSOR_OFF_C}
    rails = {}
    for name, current, unit, average in _RAIL.findall(text):
        # Unit-less pairs ("VDD_IN 5336/4970") are rails on old releases; a lone unit-less number is not.
        if name in _NOT_RAILS or (not unit and not average):
            continue
        rails[name] = Rail(int(current), int(average) if average else None)
    return TegraStats(
        ram_used_mb=int(ram.group(1)) if ram else None,
        ram_total_mb=int(ram.group(2)) if ram else None,
        swap_used_mb=int(swap.group(1)) if swap else None,
        swap_total_mb=int(swap.group(2)) if swap else None,
        cpus=cores,
        gpu_load_pct=int(gr3d.group(1)) if gr3d else None,
        gpu_freq_mhz=max(gpu_freqs) if gpu_freqs else None,
        emc_load_pct=int(emc.group(1)) if emc else None,
        emc_freq_mhz=int(emc.group(2)) if emc and emc.group(2) else None,
        temps_c=temps,
        rails=rails,
        timestamp=ts.group(1) if ts else None,
    )


def _parse_cores(body: str, shared_freq: str | None) -> tuple[CpuCore, ...]:
    cores = []
    for item in body.split(","):
        item = item.strip()
        match = _CORE.match(item)
        if match:
            freq = match.group(2) or shared_freq  # old format: CPU [x%,y%]@freq
            cores.append(CpuCore(int(match.group(1)), int(freq) if freq else None))
        else:  # "off" (core powered down) or something unknown
            cores.append(CpuCore(None, None))
    return tuple(cores)


# -- nvpmodel and clocks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerMode:
    """The nvpmodel power mode: its name (e.g. "15W", "MAXN_SUPER") and numeric id."""

    name: str
    id: int | None


_NVP_MODE = re.compile(r"NV Power Mode:\s*(\S.*?)\s*$", re.MULTILINE)


def parse_nvpmodel(text: str) -> PowerMode:
    """Parse ``nvpmodel -q`` output: the "NV Power Mode: NAME" line, then the mode id on its own line."""
    match = _NVP_MODE.search(text)
    if not match:
        raise ValueError(f"no 'NV Power Mode:' line in nvpmodel output: {text.strip()[:80]!r}")
    mode_id = None
    for rest in text[match.end():].splitlines():
        if rest.strip():
            mode_id = int(rest.strip()) if rest.strip().isdigit() else None
            break
    return PowerMode(match.group(1), mode_id)


def _run(cmd: Sequence[str], timeout_s: float = 5.0) -> str | None:
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("%s failed: %s", cmd[0], exc)
        return None
    return done.stdout if done.returncode == 0 else None


def read_power_mode() -> PowerMode | None:
    """The current nvpmodel mode, or None where nvpmodel is absent or says nothing usable."""
    out = _run(["nvpmodel", "-q"])
    if out is None:
        return None
    try:
        return parse_nvpmodel(out)
    except ValueError as exc:
        log.debug("%s", exc)
        return None


@dataclass(frozen=True)
class ClockState:
    """Whether clocks are pinned at their maximum, as ``jetson_clocks`` leaves them (min == max)."""

    # Every online CPU core's minimum frequency equals its maximum.
    cpu_pinned: bool
    # The GPU's devfreq minimum equals its maximum (None: no GPU devfreq node found).
    gpu_pinned: bool | None

    @property
    def jetson_clocks_active(self) -> bool:
        return self.cpu_pinned and self.gpu_pinned is not False


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def read_clock_state(root: str | Path = "/") -> ClockState | None:
    """Read cpufreq and the GPU's devfreq limits under ``root`` (needs no root privileges).

    Returns None when there is no cpufreq information (containers, some VMs). Only meaningful on a
    Jetson: a PC whose governor pins clocks would read as "pinned" too, so callers check the board first.
    """
    root = Path(root)
    cpus = sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq"))
    limits = [(_read_int(c / "scaling_min_freq"), _read_int(c / "scaling_max_freq")) for c in cpus]
    limits = [(lo, hi) for lo, hi in limits if lo is not None and hi is not None]
    if not limits:
        return None
    gpu_pinned = None
    # Orin's GPU devfreq node is 17000000.gpu (JetPack 6) or 17000000.ga10b (JetPack 5).
    for node in sorted((root / "sys/class/devfreq").glob("*")):
        if "gpu" in node.name or "ga10b" in node.name or "gv11b" in node.name:
            lo, hi = _read_int(node / "min_freq"), _read_int(node / "max_freq")
            if lo is not None and hi is not None:
                gpu_pinned = lo == hi
                break
    return ClockState(all(lo == hi for lo, hi in limits), gpu_pinned)


# -- the monitor ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardWarning:
    """Something the operator should know: ``kind`` is "throttling", "hot" or "memory"."""

    kind: str
    message: str
    sample: TegraStats


@dataclass(frozen=True)
class MonitorConfig:
    """Thresholds for ``BoardMonitor`` warnings."""

    # tegrastats sampling interval in milliseconds.
    interval_ms: int = 1000
    # Warn "hot" at this temperature (°C, hottest sensor): time to check the fan before throttling.
    hot_c: float = 85.0
    # Warn "throttling" at this temperature: Orin modules start software clock throttling near 99 °C
    # junction temperature (see the Jetson Orin thermal design guide), so plans get slower.
    throttle_c: float = 97.0
    # Warn "memory" when RAM use passes this percentage: the GPU shares it, and the OOM killer is next.
    memory_pct: float = 95.0


def board_warnings(sample: TegraStats, cfg: MonitorConfig) -> dict[str, str]:
    """Conditions ``sample`` meets now: kind -> message."""
    found = {}
    temp = sample.max_temp_c
    if temp is not None and temp >= cfg.throttle_c:
        found["throttling"] = (f"board at {temp:.1f} °C (>= {cfg.throttle_c:.0f} °C): clocks are being throttled, "
                               "plans will be slower; improve cooling or choose a lower nvpmodel mode")
    elif temp is not None and temp >= cfg.hot_c:
        found["hot"] = f"board at {temp:.1f} °C (>= {cfg.hot_c:.0f} °C): check the fan and airflow"
    used = sample.ram_used_pct
    if used is not None and used >= cfg.memory_pct:
        found["memory"] = (f"RAM {sample.ram_used_mb}/{sample.ram_total_mb} MB ({used:.0f}%) in use; the GPU shares "
                           "it: stop other processes or lower the TensorRT workspace")
    return found


class BoardMonitor:
    """Reads ``tegrastats`` in the background; ``latest`` is the newest sample.

    ``on_warning`` is called (from the reader thread) when a warning condition starts; it is called
    again only after the condition has cleared. ``command`` replaces the tegrastats command line
    (default ``tegrastats --interval N``). Without tegrastats, ``start()`` returns False and nothing runs.
    """

    def __init__(self, on_warning: Callable[[BoardWarning], None] | None = None,
                 config: MonitorConfig | None = None, command: Sequence[str] | None = None):
        self.config = config or MonitorConfig()
        self.on_warning = on_warning
        self.command = list(command) if command is not None else ["tegrastats", "--interval",
                                                                   str(self.config.interval_ms)]
        self.latest: TegraStats | None = None
        self.samples = 0
        self._active: set[str] = set()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        """Whether the command exists on this machine."""
        return shutil.which(self.command[0]) is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start the reader; False (with a log line) where tegrastats does not exist."""
        if self.running:
            return True
        exe = shutil.which(self.command[0])
        if exe is None:
            log.info("%s not found: no board telemetry (normal off a Jetson)", self.command[0])
            return False
        self._proc = subprocess.Popen([exe, *self.command[1:]], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._thread = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._thread.start()
        return True

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                sample = parse_tegrastats(line)
            except ValueError:
                log.debug("ignoring tegrastats line %r", line[:80])
                continue
            with self._lock:
                self.latest = sample
                self.samples += 1
            self._check(sample)

    def _check(self, sample: TegraStats) -> None:
        now = board_warnings(sample, self.config)
        started = [kind for kind in now if kind not in self._active]
        self._active = set(now)
        for kind in started:
            log.warning("%s", now[kind])
            if self.on_warning is not None:
                try:
                    self.on_warning(BoardWarning(kind, now[kind], sample))
                except Exception:  # a faulty callback must not stop telemetry
                    log.exception("board warning callback failed")

    def stop(self) -> None:
        """Stop tegrastats and the reader thread (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        # The process is gone, so the reader sees end-of-file and returns; close the pipe only after.
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> "BoardMonitor":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
