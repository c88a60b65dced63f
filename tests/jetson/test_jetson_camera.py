"""GStreamer pipeline strings, the GStreamer check and open_camera on a real video file."""

from __future__ import annotations

import shutil
import subprocess

import cv2
import numpy as np
import pytest

from edgeagent.errors import ConfigError, DependencyMissing
from edgeagent.jetson.camera import (APPSINK, csi_pipeline, gstreamer_available, gstreamer_in_build_info, open_camera,
                                     usb_pipeline)

HAS_GSTREAMER = gstreamer_available()


def test_csi_pipeline_defaults():
    assert csi_pipeline() == (
        "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM), width=(int)1280, height=(int)720, "
        "framerate=(fraction)30/1, format=(string)NV12 ! nvvidconv flip-method=0 ! video/x-raw, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! appsink drop=true max-buffers=1")


def test_csi_pipeline_arguments():
    p = csi_pipeline(sensor_id=1, width=1920, height=1080, fps=60, flip=2)
    assert p.startswith("nvarguscamerasrc sensor-id=1 ! ")
    assert "width=(int)1920, height=(int)1080, framerate=(fraction)60/1" in p
    assert "nvvidconv flip-method=2 !" in p
    assert p.endswith(APPSINK) and p.count("appsink") == 1


def test_usb_pipelines():
    mjpg = usb_pipeline("/dev/video1", 1280, 720, 30, format="MJPG")
    assert mjpg == ("v4l2src device=/dev/video1 ! image/jpeg, width=(int)1280, height=(int)720, "
                    "framerate=(fraction)30/1 ! jpegdec ! videoconvert ! video/x-raw, format=(string)BGR ! "
                    "appsink drop=true max-buffers=1")
    yuyv = usb_pipeline(format="YUYV")
    assert "v4l2src device=/dev/video0 ! video/x-raw, format=(string)YUY2, width=(int)640, height=(int)480" in yuyv
    assert "jpegdec" not in yuyv and yuyv.endswith(APPSINK)
    assert "device=/dev/v4l/by-id/usb-Cam_0-video-index0 " in usb_pipeline("/dev/v4l/by-id/usb-Cam_0-video-index0")


@pytest.mark.parametrize("call, message", [
    (lambda: usb_pipeline("/dev/video0 ! fakesink"), "must be a /dev path"),
    (lambda: usb_pipeline("video0"), "must be a /dev path"),
    (lambda: usb_pipeline(format="H264"), "format must be one of MJPG, YUYV"),
    (lambda: usb_pipeline(width=0), "width must be a positive integer"),
    (lambda: csi_pipeline(fps=2.5), "fps must be a positive integer"),
    (lambda: csi_pipeline(flip=8), "flip-method 0-7"),
    (lambda: csi_pipeline(sensor_id=-1), "sensor_id"),
])
def test_bad_pipeline_arguments(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


@pytest.mark.skipif(shutil.which("gst-inspect-1.0") is None, reason="GStreamer tools not installed")
def test_usb_pipeline_parses_in_gstreamer():
    # The generic elements exist in any GStreamer install; replace the camera and sink to run offline.
    pipeline = usb_pipeline(format="YUYV").replace("v4l2src device=/dev/video0", "videotestsrc num-buffers=2")
    pipeline = pipeline.replace(APPSINK, "fakesink")
    done = subprocess.run(["gst-launch-1.0", "-q", *pipeline.split()], capture_output=True, timeout=20)
    assert done.returncode == 0, done.stderr.decode()


def test_gstreamer_detection_from_build_info():
    yes = "  Video I/O:\n    DC1394:                      NO\n    GStreamer:                   YES (1.20.3)\n"
    no = "  Video I/O:\n    GStreamer:                   NO\n    v4l/v4l2:                    YES\n"
    assert gstreamer_in_build_info(yes)
    assert not gstreamer_in_build_info(no)
    assert not gstreamer_in_build_info("no video section at all")
    assert HAS_GSTREAMER == gstreamer_in_build_info(cv2.getBuildInformation())


@pytest.mark.skipif(HAS_GSTREAMER, reason="this cv2 has GStreamer: the missing-GStreamer message cannot occur")
def test_pipeline_without_gstreamer_points_to_jetpack_opencv():
    with pytest.raises(DependencyMissing, match="without GStreamer.*nvidia-opencv"):
        open_camera(csi_pipeline())


def test_open_camera_reads_a_video_file(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened()
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    cap = open_camera(str(path))
    try:
        ok, frame = cap.read()
        assert ok and frame.shape == (48, 64, 3)
    finally:
        cap.release()


def test_open_camera_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        open_camera(str(tmp_path / "absent.avi"))
    with pytest.raises(ConfigError, match="device index, a pipeline or a path"):
        open_camera(3.5)  # type: ignore[arg-type]
