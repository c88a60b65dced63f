"""The local planner runtime: preprocessing, slot decoding through the camera, ModelPlanner end to end."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_planner import A, G, K, PRIMITIVES, S, T, VOCAB, camera, scene_image, write_model

import edgeagent.models.runtime as runtime
from edgeagent.camera import CameraModel
from edgeagent.errors import ConfigError, ContractMismatch, ModelError
from edgeagent.models.manifest import END, Manifest
from edgeagent.models.runtime import ModelPlanner, OnnxPlanner, decode, default_model_dir, model_input
from edgeagent.models.view import View
from edgeagent.primitives import Workspace, registry
from edgeagent.sim.render import default_camera
from edgeagent.types import UNKNOWN, Observation, Planner

MANIFEST = Manifest(name="tiny", S=S, T=T, K=K, G=G, A=A, vocab=VOCAB, primitives=PRIMITIVES, precision="fp32",
                    sha256="0" * 64)
NARROW = registry.subset(workspace=Workspace(-0.2, 0.2, -0.15, 0.25))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def planner(model_dir):
    return ModelPlanner(model_dir)


def outputs(prim_choice, cells, offsets=0.5, confidence=0.8):
    """Model outputs choosing ``prim_choice[k]`` per slot and cell ``cells[k][a]`` per point argument."""
    prim = np.zeros((1, K, 1 + len(PRIMITIVES)), np.float32)
    prim[0, np.arange(K), prim_choice] = 5.0
    pts = np.zeros((1, K, A, G * G), np.float32)
    for k, row in enumerate(cells):
        for a, c in enumerate(row):
            pts[0, k, a, c] = 3.0
    off = np.full((1, K, A, G * G, 2), offsets, np.float32)
    return {"prim_logits": prim, "point_logits": pts, "point_offset": off,
            "confidence": np.array([[confidence]], np.float32)}


def cell_of(cam, xy, image_size):
    """Model-grid cell of table point ``xy`` seen by ``cam`` in an image of ``image_size``."""
    W, H = image_size
    u, v = cam.resized(W, H).table_to_pixel(np.asarray(xy))
    return int(v * G / H) * G + int(u * G / W)


# -- preprocessing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (333, 187), (96, 64), (S, S)])
def test_preprocess_squeezes_any_resolution_to_the_model_input(size):
    W, H = size
    image = np.random.default_rng(W).integers(0, 256, (H, W, 3), dtype=np.uint8)
    x, cam = model_input(image, camera(W, H), MANIFEST)
    assert (cam.width, cam.height) == (S, S)
    assert x.shape == (1, S, S, 3) and x.dtype == np.uint8 and x.flags.c_contiguous
    assert np.array_equal(x[0], cv2.resize(image, (S, S), interpolation=cv2.INTER_AREA) if size != (S, S) else image)


@pytest.mark.parametrize("image", [np.zeros((48, 64), np.uint8), np.zeros((48, 64, 3), np.float32),
                                   np.zeros((48, 64, 4), np.uint8)])
def test_preprocess_rejects_frames_that_are_not_bgr_uint8(image):
    with pytest.raises(ValueError, match="H x W x 3 uint8 BGR"):
        model_input(image, camera(64, 48), MANIFEST)


# -- decoding -------------------------------------------------------------------------------------
@pytest.mark.parametrize("image_size, cam", [((640, 480), camera()), ((1280, 720), camera(1280, 720)),
                                             ((320, 240), camera(640, 480))])  # camera model at another size
def test_points_follow_the_contract_formula_through_the_camera(image_size, cam):
    W, H = image_size
    cell, dx, dy = 3 * G + 4, 0.25, 0.75
    out = outputs([1, END, END], [[cell, 0]], offsets=0.0)
    out["point_offset"][0, 0, 0, cell] = (dx, dy)
    calls, done, conf, notes = decode(out, MANIFEST, cam, image_size, registry)
    assert not done and notes == "" and conf == pytest.approx(0.8)
    assert [c.primitive for c in calls] == ["pick"]
    row, col = divmod(cell, G)
    expected_uv = ((col + dx) * W / G, (row + dy) * H / G)
    assert cam.resized(W, H).table_to_pixel(calls[0].args["at"]) == pytest.approx(expected_uv, abs=1e-6)


def test_end_in_slot_zero_means_done():
    calls, done, conf, notes = decode(outputs([END, 1, 1], [[20, 20]] * 3), MANIFEST, camera(), (640, 480), registry)
    assert calls == () and done and conf == pytest.approx(0.8)


def test_an_invalid_first_call_gives_an_empty_unsure_plan():
    # Cell (0, 0) is the top-left of the image: beyond the far edge of the workspace.
    calls, done, conf, notes = decode(outputs([1, 2, END], [[0, 0], [27, 0]]), MANIFEST, camera(), (640, 480),
                                      registry)
    assert calls == () and not done and conf == 0.0
    assert "slot 0 (pick) rejected" in notes and "outside the workspace" in notes


def test_calls_after_an_invalid_slot_are_dropped():
    cam, size = camera(), (640, 480)
    good = cell_of(cam, (0.05, -0.1), size)
    calls, done, conf, notes = decode(outputs([1, 2, 1], [[good, 0], [0, 0], [good, 0]]), MANIFEST, cam, size,
                                      registry)
    assert [c.primitive for c in calls] == ["pick"] and not done and conf == pytest.approx(0.8)
    assert notes.startswith("slot 1 (place) rejected")


@pytest.mark.parametrize("holding, first", [(None, "pick"), ("red block", "place"), (UNKNOWN, "place")])
def test_slot_0_takes_the_best_primitive_the_gripper_state_allows(holding, first):
    # The model scores place first and pick second: with an empty gripper the robot would refuse the
    # place (and the same frame would ask for it again), so the pick is planned; unknown: unchanged.
    cam, size = camera(), (640, 480)
    good = cell_of(cam, (0.05, -0.1), size)
    out = outputs([2, END, END], [[good, 0]])
    out["prim_logits"][0, 0, 1] = 4.0  # pick, second best
    calls, done, _, _ = decode(out, MANIFEST, cam, size, registry, holding)
    assert [c.primitive for c in calls] == [first] and not done


def test_with_an_empty_gripper_a_place_yields_to_done_when_that_scores_next():
    cam, size = camera(), (640, 480)
    out = outputs([2, END, END], [[cell_of(cam, (0.05, -0.1), size), 0]])
    out["prim_logits"][0, 0, END] = 4.0
    calls, done, _, _ = decode(out, MANIFEST, cam, size, registry, None)
    assert calls == () and done


def test_push_gets_both_points_in_argument_order():
    cam, size = camera(), (640, 480)
    start, end = cell_of(cam, (-0.1, 0.0), size), cell_of(cam, (0.15, 0.1), size)
    calls, *_ = decode(outputs([3, END, END], [[start, end]]), MANIFEST, cam, size, registry)
    assert calls[0].primitive == "push" and list(calls[0].args) == ["start", "end"]
    assert calls[0].args["start"][0] < 0 < calls[0].args["end"][0]


SIZES = [(640, 480), (1280, 720), (320, 240), (96, 96)]


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from(SIZES), scale=st.floats(0.1, 50.0),
       narrow=st.booleans(), sim_camera=st.booleans())
def test_random_logits_never_yield_an_unvalidated_call(seed, size, scale, narrow, sim_camera):
    rng = np.random.default_rng(seed)
    reg = NARROW if narrow else registry
    cam = default_camera(*size) if sim_camera else camera(*size)
    out = {"prim_logits": rng.normal(0, scale, (1, K, 1 + len(PRIMITIVES))).astype(np.float32),
           "point_logits": rng.normal(0, scale, (1, K, A, G * G)).astype(np.float32),
           "point_offset": rng.uniform(-0.3, 1.3, (1, K, A, G * G, 2)).astype(np.float32),
           "confidence": rng.uniform(-0.5, 1.5, (1, 1)).astype(np.float32)}
    # Quantised or broken models emit non-finite values now and then.
    for key in ("point_logits", "point_offset", "confidence"):
        mask = rng.random(out[key].shape) < 0.03
        out[key][mask] = rng.choice([np.nan, np.inf, -np.inf], mask.sum())
    calls, done, conf, notes = decode(out, MANIFEST, cam, size, reg)
    choice = out["prim_logits"][0].argmax(-1)
    assert 0.0 <= conf <= 1.0
    assert done == (choice[0] == END)
    if done:
        assert calls == ()
    planned = next((k for k in range(K) if choice[k] == END), K)
    assert len(calls) <= planned
    for k, call in enumerate(calls):
        assert call.primitive == PRIMITIVES[choice[k] - 1].name
        assert reg.validate(call) == call
        for x, y in call.args.values():
            assert reg.workspace.contains(x, y)
    if not done and not calls:
        assert conf == 0.0 and notes.startswith("no valid call")
    if 0 < len(calls) < planned:
        assert notes.startswith(f"slot {len(calls)} ")


# -- ModelPlanner -----------------------------------------------------------------------------------
def test_model_planner_plans_end_to_end_on_onnxruntime(model_dir, caplog):
    with caplog.at_level(logging.INFO):
        planner = ModelPlanner(model_dir)
    assert isinstance(planner, Planner) and OnnxPlanner is ModelPlanner
    assert planner.provider == "CPUExecutionProvider"
    assert any("runs on CPUExecutionProvider" in r.getMessage() for r in caplog.records)
    cam = camera()
    obs = Observation(scene_image(cam, (0.1, -0.05)), cam)
    plan = planner.plan(obs, "Pick up the red block and put it in the bowl, please.")
    assert plan.source == "local" and plan.model == f"tiny@{planner.manifest.sha256[:8]}"
    assert [c.primitive for c in plan.calls] == ["pick", "place"] and not plan.done
    assert plan.confidence == pytest.approx(0.8808, abs=1e-3)
    assert set(plan.timings_ms) == {"preprocess", "inference", "decode"}
    assert plan.latency_ms >= max(plan.timings_ms.values()) >= 0


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (320, 240), (200, 200)])
@pytest.mark.parametrize("xy", [(0.1, -0.05), (-0.2, 0.15), (0.0, 0.25)])
def test_plans_point_at_the_object_from_any_camera_resolution(planner, size, xy):
    cam = camera(*size)
    plan = planner.plan(Observation(scene_image(cam, xy), cam), "pick the red block")
    (call,) = plan.calls
    assert call.primitive == "pick"
    # The tiny model points at the reddest patch: the returned point lies in the square's grid cell.
    assert cell_of(cam, call.args["at"], size) == cell_of(cam, xy, size)


@pytest.mark.parametrize("eye", [(0.0, -0.6, 0.7), (0.35, -0.45, 0.6), (-0.3, -0.7, 0.9)])
@pytest.mark.parametrize("xy", [(0.1, -0.05), (-0.2, 0.15), (0.2, 0.22)])
def test_a_table_view_model_points_at_the_object_wherever_the_camera_is_mounted(tmp_path_factory, eye, xy):
    # A model of the table view sees the table rectified through the camera model, so the cell it
    # points at (the reddest) is the object's table cell whatever the camera's pose and resolution.
    view = View("table")
    planner = ModelPlanner(write_model(tmp_path_factory.mktemp("table"), view=view))
    cam = CameraModel.look_at(eye, (0.0, 0.0, 0.0), fov_y_deg=55, width=800, height=600)
    plan = planner.plan(Observation(scene_image(cam, xy, size_m=0.09), cam), "pick the red block")
    (call,) = plan.calls
    grid = view.image_camera(G)
    assert np.array_equal(np.floor(grid.table_to_pixel(call.args["at"], z=view.plane_z_m)),
                          np.floor(grid.table_to_pixel(xy, z=view.plane_z_m)))


def test_a_camera_that_misses_part_of_the_workspace_is_warned_about_once(tmp_path, caplog):
    planner = ModelPlanner(write_model(tmp_path, view=View("table")))
    # Low and close, looking at the far half: the near corners fall below the image.
    cam = CameraModel.look_at((0.0, -0.25, 0.35), (0.0, 0.15, 0.0), fov_y_deg=40, width=640, height=480)
    obs = Observation(scene_image(cam, (0.0, 0.15)), cam)
    with caplog.at_level(logging.WARNING):
        planner.plan(obs, "pick the red block")
        planner.plan(obs, "pick the red block")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "(-0.30, -0.30), (+0.30, -0.30)" in warnings[0]
    assert "check the camera's calibration" in warnings[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        planner.plan(Observation(scene_image(camera(), (0.0, 0.15)), camera()), "pick the red block")
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_the_table_view_is_the_table_seen_from_above():
    view, cam = View("table"), camera()
    frame = scene_image(cam, (0.15, 0.2), size_m=0.1)
    image, image_cam = model_input(frame, cam, MANIFEST.replace(view=view))
    assert image.shape == (1, S, S, 3) and (image_cam.width, image_cam.height) == (S, S)
    # x grows to the right and y upwards: the red square is in the top right quarter, and the pixel its
    # centre maps to is red.
    u, v = image_cam.table_to_pixel((0.15, 0.2), z=view.plane_z_m)
    assert u > S / 2 and v < S / 2
    b, g, r = image[0, int(v), int(u)].astype(int)
    assert r > 150 and b < 100 and g < 100
    # The plane's corners land on the image's corners.
    e = view.half_extent_m
    assert np.allclose(image_cam.table_to_pixel([(-e, e), (e, -e)], z=view.plane_z_m), [(0, 0), (S, S)], atol=1e-6)


def test_done_and_unusable_plans(planner):
    cam = camera()
    assert planner.plan(Observation(scene_image(cam, (0.0, 0.0)), cam), "done with the red block").done
    # The only red thing lies beyond the workspace's far edge: no call, not done, zero confidence.
    beyond = Observation(scene_image(cam, red_pixel=(40, 30)), cam)
    plan = planner.plan(beyond, "pick the red block")
    assert plan.calls == () and not plan.done and plan.confidence == 0.0 and "outside the workspace" in plan.reason


def test_loading_refuses_a_model_the_robot_cannot_run(model_dir):
    with pytest.raises(ContractMismatch, match="'push'"):
        ModelPlanner(model_dir, registry=registry.subset(["pick", "place"]))


def test_engines_are_chosen_by_name(model_dir):
    with pytest.raises(ModelError, match="build-engine"):
        ModelPlanner(model_dir, engine="tensorrt")
    with pytest.raises(ConfigError, match="unknown engine 'tflite'"):
        ModelPlanner(model_dir, engine="tflite")


def test_default_model_dir_is_the_shipped_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "SHIPPED", tmp_path)
    with pytest.raises(ModelError, match="no int8 planner is shipped.*edgeagent model train"):
        default_model_dir()
    write_model(tmp_path / "fp32")
    assert default_model_dir("fp32") == tmp_path / "fp32"
    with pytest.raises(ValueError, match="'int8' or 'fp32'"):
        default_model_dir("int4")
