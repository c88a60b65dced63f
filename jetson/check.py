"""``edgeagent jetson check``: what this machine has for running edgeagent on the GPU, and how to fix gaps.

Runs anywhere (an x86 laptop included): each check returns a ``CheckItem`` with a status
("ok", "warn", "missing" or "info"), what was found and, when something is wrong, the command that
fixes it. Nothing here raises for a missing component.
"""

from __future__ import annotations

import platform
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from edgeagent.jetson.camera import OPENCV_GSTREAMER_FIX, gstreamer_available
from edgeagent.jetson.providers import ORT_GPU_INSTALL, PROVIDER_NAMES
from edgeagent.jetson.telemetry import read_clock_state, read_power_mode
from edgeagent.jetson.trt_runner import CUDA_PYTHON_INSTALL, TENSORRT_INSTALL

STATUSES = ("ok", "warn", "missing", "info")

#: L4T (Jetson Linux) release -> JetPack release, from NVIDIA's JetPack archive.
JETPACK_FOR_L4T = {
    "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2", "35.5.0": "5.1.3",
    "35.6.0": "5.1.4", "36.2.0": "6.0 DP", "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2", "36.4.4": "6.2.1",
}


@dataclass(frozen=True)
class CheckItem:
    """One line of the report."""

    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Board:
    """What the device tree and the L4T release file say about this machine."""

    model: str | None
    l4t: str | None

    @property
    def is_jetson(self) -> bool:
        return self.l4t is not None or "jetson" in (self.model or "").lower()


def parse_nv_tegra_release(text: str) -> str | None:
    """``/etc/nv_tegra_release`` ("# R36 (release), REVISION: 4.3, ...") -> "36.4.3"."""
    match = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    major, minor, patch = match.group(1), match.group(2), match.group(3) or "0"
    return f"{major}.{minor}.{patch}"


def jetpack_for(l4t: str) -> str | None:
    """The JetPack release shipping L4T ``l4t``, or None when the table does not know it."""
    return JETPACK_FOR_L4T.get(l4t)


def read_board(root: str | Path = "/") -> Board:
    """Board model from ``/proc/device-tree/model`` and L4T release from ``/etc/nv_tegra_release``."""
    root = Path(root)
    try:
        model = (root / "proc/device-tree/model").read_bytes().rstrip(b"\x00\n").decode(errors="replace") or None
    except OSError:
        model = None
    try:
        l4t = parse_nv_tegra_release((root / "etc/nv_tegra_release").read_text(errors="replace"))
    except OSError:
        l4t = None
    return Board(model, l4t)


# -- the checks: each takes the board and returns one item ----------------------------------------


def _platform(board: Board) -> CheckItem:
    return CheckItem("platform", "info", f"{platform.system()} {platform.machine()}, Python "
                                         f"{platform.python_version()} ({sys.executable})")


def _board(board: Board) -> CheckItem:
    if board.is_jetson:
        return CheckItem("board", "ok", board.model or "Jetson (model unknown)")
    return CheckItem("board", "info", f"not a Jetson ({board.model or 'no /proc/device-tree/model'}): "
                                      "GPU items below are expected to be missing here")


def _jetpack(board: Board) -> CheckItem:
    if board.l4t is None:
        return CheckItem("jetpack", "missing" if board.is_jetson else "info", "no /etc/nv_tegra_release",
                         "flash JetPack 6 (SDK Manager or the SD-card image)" if board.is_jetson else "")
    jetpack = jetpack_for(board.l4t)
    detail = f"L4T R{board.l4t}" + (f" (JetPack {jetpack})" if jetpack else " (JetPack release not in our table)")
    if not board.l4t.startswith("36."):
        return CheckItem("jetpack", "warn", detail, "edgeagent's deploy notes target JetPack 6 (L4T R36); upgrade")
    return CheckItem("jetpack", "ok", detail)


def _numpy(board: Board) -> CheckItem:
    try:
        import numpy
    except ImportError:
        return CheckItem("numpy", "missing", "not importable", "pip install 'numpy<2'")
    major = int(numpy.__version__.split(".")[0])
    if board.is_jetson and major >= 2:
        return CheckItem("numpy", "warn", f"{numpy.__version__}: JetPack's OpenCV and TensorRT bindings are built "
                                          "against numpy 1.x", "pip install 'numpy<2' in the venv")
    return CheckItem("numpy", "ok", numpy.__version__)


def _tensorrt(board: Board) -> CheckItem:
    try:
        import tensorrt
    except Exception as exc:  # ImportError, or OSError when libnvinfer does not load
        return CheckItem("tensorrt", "missing", f"not importable ({type(exc).__name__}: {exc})", TENSORRT_INSTALL)
    return CheckItem("tensorrt", "ok", f"{tensorrt.__version__} ({Path(tensorrt.__file__).parent})")


def _cuda_python(board: Board) -> CheckItem:
    from edgeagent.errors import DependencyMissing
    from edgeagent.jetson.trt_runner import import_cudart

    try:
        cudart = import_cudart()
    except DependencyMissing as exc:
        return CheckItem("cuda-python", "missing", str(exc).split(";")[0], CUDA_PYTHON_INSTALL)
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess:
        return CheckItem("cuda-python", "warn", f"installed, but CUDA reports {err}",
                         "check the driver (JetPack) and that the user is in groups video and render")
    return CheckItem("cuda-python", "ok", f"installed, {count} CUDA device(s)")


def _onnxruntime(board: Board) -> CheckItem:
    try:
        import onnxruntime
    except ImportError as exc:
        return CheckItem("onnxruntime", "missing", f"not importable ({exc})", ORT_GPU_INSTALL)
    providers = onnxruntime.get_available_providers()
    detail = f"{onnxruntime.__version__}, providers: {', '.join(providers)}"
    if PROVIDER_NAMES["tensorrt"] in providers:
        return CheckItem("onnxruntime", "ok", detail)
    if PROVIDER_NAMES["cuda"] in providers:
        return CheckItem("onnxruntime", "warn", detail + " (no TensorRT provider)", ORT_GPU_INSTALL)
    return CheckItem("onnxruntime", "missing", detail + " (CPU only)", ORT_GPU_INSTALL)


def _gstreamer(board: Board) -> CheckItem:
    try:
        import cv2
    except ImportError as exc:
        return CheckItem("opencv-gstreamer", "missing", f"cv2 not importable ({exc})", OPENCV_GSTREAMER_FIX)
    if gstreamer_available():
        return CheckItem("opencv-gstreamer", "ok", f"cv2 {cv2.__version__} has GStreamer")
    return CheckItem("opencv-gstreamer", "missing", f"cv2 {cv2.__version__} has no GStreamer "
                                                    "(CSI cameras need it; USB works via V4L2)", OPENCV_GSTREAMER_FIX)


def _tool(name: str, purpose: str) -> CheckItem | str:
    path = shutil.which(name)
    if path is None:
        return CheckItem(name, "missing", f"not found ({purpose})",
                         "part of JetPack (nvidia-l4t-tools); only exists on a Jetson")
    return path


def _tegrastats(board: Board) -> CheckItem:
    found = _tool("tegrastats", "board telemetry in health")
    return found if isinstance(found, CheckItem) else CheckItem("tegrastats", "ok", found)


def _nvpmodel(board: Board) -> CheckItem:
    found = _tool("nvpmodel", "power mode")
    if isinstance(found, CheckItem):
        return found
    mode = read_power_mode()
    if mode is None:
        return CheckItem("nvpmodel", "warn", f"{found}: `nvpmodel -q` gave no mode", "run sudo nvpmodel -q to see why")
    return CheckItem("nvpmodel", "ok", f"mode {mode.name} (id {mode.id})")


def _jetson_clocks(board: Board) -> CheckItem:
    found = _tool("jetson_clocks", "pins clocks for steady latency")
    if isinstance(found, CheckItem):
        return found
    state = read_clock_state()
    if state is None:
        return CheckItem("jetson_clocks", "info", f"{found}; clock limits not readable")
    if state.jetson_clocks_active:
        return CheckItem("jetson_clocks", "ok", "active: CPU and GPU clocks pinned at maximum")
    return CheckItem("jetson_clocks", "info", "not active: clocks scale with load (latency varies more)",
                     "sudo jetson_clocks (steadier plan latency, more power)")


#: The report, in order.
CHECKS: tuple[Callable[[Board], CheckItem], ...] = (
    _platform, _board, _jetpack, _numpy, _tensorrt, _cuda_python, _onnxruntime, _gstreamer,
    _tegrastats, _nvpmodel, _jetson_clocks,
)


def run_checks(root: str | Path = "/") -> list[CheckItem]:
    """Every check's result; a check that crashes is reported as a warning, never raised.

    ``root`` relocates the board files (device-tree model, L4T release) for testing; tools and Python
    packages are always looked up on this machine.
    """
    board = read_board(root)
    items = []
    for check in CHECKS:
        try:
            items.append(check(board))
        except Exception as exc:
            name = check.__name__.lstrip("_").replace("_", "-")
            items.append(CheckItem(name, "warn", f"check failed: {type(exc).__name__}: {exc}"))
    return items


def format_table(items: list[CheckItem]) -> str:
    """A fixed-width table: component, status, detail, and an indented fix line where there is one."""
    width = max(len(item.name) for item in items)
    lines = [f"{'component':<{width}}  {'status':<7}  detail", f"{'-' * width}  {'-' * 7}  {'-' * 6}"]
    for item in items:
        lines.append(f"{item.name:<{width}}  {item.status:<7}  {item.detail}")
        if item.fix:
            lines.append(f"{'':<{width}}  {'':<7}  fix: {item.fix}")
    counts = {s: sum(item.status == s for item in items) for s in STATUSES}
    lines.append(f"\n{counts['ok']} ok, {counts['warn']} warnings, {counts['missing']} missing")
    return "\n".join(lines)


def as_json(items: list[CheckItem]) -> list[dict]:
    """JSON-ready list of the items."""
    return [asdict(item) for item in items]
