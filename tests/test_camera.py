"""The camera model with the simulator's default camera: table <-> pixel mapping and framing."""

import numpy as np
import pytest

from edgeagent.camera import CameraModel
from edgeagent.sim.render import default_camera

GRID = np.array([(x, y) for x in np.linspace(-0.36, 0.36, 13) for y in np.linspace(-0.36, 0.36, 13)])
CAMERAS = {
    "640x480": default_camera(),
    "resized-128": default_camera().resized(128, 128),
    "resized-96": default_camera().resized(96, 96),
    "square-320": default_camera(320, 320),
}


@pytest.fixture(params=list(CAMERAS))
def camera(request) -> CameraModel:
    return CAMERAS[request.param]


@pytest.mark.parametrize("z", [0.0, 0.04])
def test_table_pixel_table_round_trip(camera, z):
    uv = camera.table_to_pixel(GRID, z)
    assert np.all((uv >= 0) & (uv < [camera.width, camera.height])), "workspace plus bowl rims must be in view"
    back = camera.pixel_to_table(uv, z)
    assert np.abs(back - GRID).max() < 0.005


@pytest.mark.parametrize("z", [0.0, 0.04])
def test_pixel_table_pixel_round_trip(camera, z):
    corners = camera.table_to_pixel(np.array([(-0.3, -0.3), (0.3, 0.3)]), z)
    us = np.linspace(camera.width * 0.2, camera.width * 0.8, 9)
    vs = np.linspace(corners[1, 1], corners[0, 1], 9)
    uv = np.array([(u, v) for u in us for v in vs])
    xy = camera.pixel_to_table(uv, z)
    assert np.abs(camera.table_to_pixel(xy, z) - uv).max() < 1e-6 * max(camera.width, camera.height)
    # A pixel's footprint on the table: moving one pixel moves the table point by under 5 mm.
    step = camera.pixel_to_table(uv + 1.0, z) - xy
    if camera.width >= 640:
        assert np.abs(step).max() < 0.005


def test_rounded_pixels_locate_table_points_within_5mm():
    cam = default_camera()
    uv = np.round(cam.table_to_pixel(GRID))
    assert np.abs(cam.pixel_to_table(uv) - GRID).max() < 0.005


@pytest.mark.parametrize("z", [0.0, 0.04, 0.12])
def test_homography_agrees_with_project(camera, z):
    H = camera.homography(z)
    uvw = np.column_stack([GRID, np.ones(len(GRID))]) @ H.T
    expected = camera.project(np.column_stack([GRID, np.full(len(GRID), z)]))
    np.testing.assert_allclose(uvw[:, :2] / uvw[:, 2:], expected, atol=1e-6)


def test_image_orientation_top_of_table_is_top_of_image(camera):
    left, right, bottom, top = camera.table_to_pixel(np.array([(-0.3, 0), (0.3, 0), (0, -0.3), (0, 0.3)]))
    assert right[0] > left[0]
    assert top[1] < bottom[1]


def test_default_camera_frames_tall_stacks_and_fills_the_image(camera):
    # The top of a 4-block stack at each workspace corner is in view.
    tops = camera.project([(x, y, 0.16) for x in (-0.3, 0.3) for y in (-0.3, 0.3)])
    assert np.all((tops >= 0) & (tops < [camera.width, camera.height]))
    uv = camera.table_to_pixel(GRID)
    span = (uv.max(0) - uv.min(0)) / [camera.width, camera.height]
    assert np.all(span > 0.6), f"workspace fills only {span} of the image"


def test_default_camera_looks_down_from_the_robot_side():
    cam = default_camera()
    R, t = np.array(cam.R), np.array(cam.t)
    eye, forward = -R.T @ t, R[2]
    assert eye[1] < 0 and eye[2] > 0.3
    elevation = np.degrees(np.arcsin(-forward[2]))
    assert 50 <= elevation <= 66


def test_camera_serialises_round_trip():
    cam = default_camera().resized(128, 96)
    again = CameraModel.from_dict(cam.to_dict())
    assert again == cam
    np.testing.assert_allclose(again.table_to_pixel((0.1, -0.2)), cam.table_to_pixel((0.1, -0.2)))
