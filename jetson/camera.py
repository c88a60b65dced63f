"""Camera capture on a Jetson: GStreamer pipelines for CSI and USB cameras, opened through OpenCV.

Every pipeline ends in ``appsink drop=true max-buffers=1``: the planner wants the newest frame, and a
queue of old frames would add latency equal to its length. pip's opencv-python wheels are built without
GStreamer; JetPack's OpenCV has it (``gstreamer_available`` tells which one is installed).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from edgeagent.errors import ConfigError, DependencyMissing

log = logging.getLogger(__name__)

#: Every pipeline's sink: newest frame only, never block the camera.
APPSINK = "appsink drop=true max-buffers=1"

OPENCV_GSTREAMER_FIX = ("this OpenCV was built without GStreamer (pip's opencv-python wheels are). On a Jetson use "
                        "JetPack's OpenCV: sudo apt install nvidia-opencv, pip uninstall -y opencv-python "
                        "opencv-python-headless in the venv, and create the venv with --system-site-packages "
                        "(jetson/README.md)")

# A device node or by-id path: no spaces or pipeline syntax, so it cannot inject GStreamer elements.
_DEVICE = re.compile(r"^/dev/[\w./:-]+$")


def _check_size(width: int, height: int, fps: int) -> None:
    for name, value in (("width", width), ("height", height), ("fps", fps)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"camera {name} must be a positive integer, got {value!r}")


def csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0) -> str:
    """A pipeline for a MIPI CSI camera (IMX219, IMX477, ...) through the Argus ISP.

    The frame arrives in NVMM memory as NV12; ``nvvidconv`` (hardware) flips and converts it to BGRx,
    and ``videoconvert`` drops the padding byte to give OpenCV its BGR. ``flip`` is nvvidconv's
    flip-method: 0 none, 1 rotate 90° counter-clockwise, 2 rotate 180°, 3 rotate 90° clockwise,
    4 horizontal flip, 5 upper-right diagonal, 6 vertical flip, 7 upper-left diagonal.
    """
    if isinstance(sensor_id, bool) or not isinstance(sensor_id, int) or sensor_id < 0:
        raise ConfigError(f"camera sensor_id must be an integer >= 0, got {sensor_id!r}")
    _check_size(width, height, fps)
    if isinstance(flip, bool) or flip not in range(8):
        raise ConfigError(f"camera flip must be nvvidconv's flip-method 0-7, got {flip!r}")
    return (f"nvarguscamerasrc sensor-id={sensor_id} ! "
            f"video/x-raw(memory:NVMM), width=(int){width}, height=(int){height}, "
            f"framerate=(fraction){fps}/1, format=(string)NV12 ! "
            f"nvvidconv flip-method={flip} ! video/x-raw, format=(string)BGRx ! "
            f"videoconvert ! video/x-raw, format=(string)BGR ! {APPSINK}")


#: USB pixel format -> (caps the camera must deliver, elements turning it into raw video).
_USB_FORMATS = {
    # Most UVC cameras deliver 720p/1080p at 30 fps only as MJPEG (USB 2 bandwidth).
    "MJPG": ("image/jpeg", "jpegdec ! "),
    # Uncompressed 4:2:2; GStreamer calls V4L2's YUYV "YUY2".
    "YUYV": ("video/x-raw, format=(string)YUY2", ""),
}


def usb_pipeline(device: str = "/dev/video0", width: int = 640, height: int = 480, fps: int = 30,
                 format: str = "MJPG") -> str:
    """A pipeline for a USB (UVC) camera through v4l2src, in ``format`` "MJPG" or "YUYV"."""
    if not isinstance(device, str) or not _DEVICE.match(device):
        raise ConfigError(f"camera device must be a /dev path such as /dev/video0, got {device!r}")
    _check_size(width, height, fps)
    try:
        caps, decode = _USB_FORMATS[format]
    except KeyError:
        raise ConfigError(f"camera format must be one of {', '.join(_USB_FORMATS)}, got {format!r}") from None
    return (f"v4l2src device={device} ! "
            f"{caps}, width=(int){width}, height=(int){height}, framerate=(fraction){fps}/1 ! "
            f"{decode}videoconvert ! video/x-raw, format=(string)BGR ! {APPSINK}")


def gstreamer_in_build_info(build_info: str) -> bool:
    """Whether an OpenCV build-information text reports GStreamer support (``GStreamer: YES ...``)."""
    match = re.search(r"^\s*GStreamer:\s*(\S+)", build_info, re.MULTILINE)
    return bool(match) and match.group(1).upper() == "YES"


def gstreamer_available() -> bool:
    """Whether the installed cv2 can open GStreamer pipelines (False when cv2 itself is missing)."""
    try:
        import cv2
    except ImportError:
        return False
    return gstreamer_in_build_info(cv2.getBuildInformation())


def _is_pipeline(source: str) -> bool:
    return "!" in source


def open_camera(source: int | str):
    """A ``cv2.VideoCapture`` for a device index, a GStreamer pipeline string or a video file path.

    An int (or a string of digits) opens that V4L2 device; a string containing ``!`` is a GStreamer
    pipeline (see ``csi_pipeline`` / ``usb_pipeline``); anything else is a file or URL. Raises
    DependencyMissing when a pipeline is requested but cv2 lacks GStreamer, ConfigError when the source
    does not open.
    """
    try:
        import cv2
    except ImportError as exc:
        raise DependencyMissing(f"OpenCV (cv2) is not importable ({exc}); pip install opencv-python-headless, or on "
                                "a Jetson use JetPack's python3-opencv") from exc
    if isinstance(source, str) and source.strip().isdigit():
        source = int(source.strip())
    if isinstance(source, bool) or not isinstance(source, (int, str)):
        raise ConfigError(f"camera source must be a device index, a pipeline or a path, got {source!r}")
    if isinstance(source, int):
        cap = cv2.VideoCapture(source, cv2.CAP_V4L2)
        where, fix = f"camera device {source}", f"check that /dev/video{source} exists and the user is in group video"
    elif _is_pipeline(source):
        if not gstreamer_available():
            raise DependencyMissing(f"camera pipeline {source!r} needs GStreamer, but {OPENCV_GSTREAMER_FIX}")
        cap = cv2.VideoCapture(source, cv2.CAP_GSTREAMER)
        where, fix = f"camera pipeline {source!r}", "test it with gst-launch-1.0 (replace appsink by fakesink)"
    else:
        if "://" not in source and not Path(source).exists():
            raise ConfigError(f"camera source {source!r}: no such file; give a device index, a pipeline or a path")
        cap = cv2.VideoCapture(source)
        where, fix = f"camera source {source!r}", "check that OpenCV can decode it"
    if not cap.isOpened():
        cap.release()
        raise ConfigError(f"{where} could not be opened; {fix}")
    log.info("opened %s", where)
    return cap
