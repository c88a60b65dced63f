"""The tabletop renderer: determinism, styles, and that objects are drawn where and how they are."""

import numpy as np
import pytest

from edgeagent.primitives import registry
from edgeagent.sim.render import RenderStyle, default_camera, render
from edgeagent.sim.world import BLOCK_SIZE, COLOR_BGR, COLORS, World
from edgeagent.types import Call

CAM = default_camera()
# One block of every colour on a 5 x 2 grid, well apart.
ALL_COLOURS = [(c, (-0.24 + 0.12 * (i % 5), -0.12 + 0.24 * (i // 5))) for i, c in enumerate(COLORS)]


def scene() -> World:
    """Four blocks (red on green), two bowls."""
    return World.from_scene([("green", (0.1, -0.05)), ("red", (0.1, -0.05)), ("blue", (-0.2, 0.2)),
                             ("yellow", (0.2, 0.22))], [("blue", (-0.15, -0.15)), ("orange", (0.05, 0.18))])


def run(world: World, name: str, **args) -> None:
    call = registry.validate(Call(name, args))
    registry.get(name).fn(world, **call.args)


def pixel(img: np.ndarray, cam, xyz) -> np.ndarray:
    u, v = np.round(cam.project([xyz])[0]).astype(int)
    return img[v, u].astype(int)


def colour_mask(img: np.ndarray, colour: str, style: RenderStyle, tol: int = 10) -> np.ndarray:
    """Pixels matching ``colour`` under any face shade of ``style``."""
    mask = np.zeros(img.shape[:2], bool)
    for shade in np.unique(style.shades().round(3)):
        target = np.clip(style.color(COLOR_BGR[colour]) * shade, 0, 255)
        mask |= np.abs(img.astype(int) - target).max(axis=2) <= tol
    return mask


@pytest.mark.parametrize("size", [(640, 480), (128, 128), (96, 96)])
def test_render_shape_and_determinism(size):
    cam = CAM.resized(*size)
    style = RenderStyle.random(np.random.default_rng(5))
    for st in (None, style):
        a = render(scene(), cam, st, seed=3)
        assert a.shape == (size[1], size[0], 3) and a.dtype == np.uint8
        assert np.array_equal(a, render(scene(), cam, st, seed=3))


def test_returned_image_is_a_fresh_copy():
    a = render(scene(), CAM)
    a[:] = 0
    assert render(scene(), CAM).max() > 0


def test_random_styles_differ_and_reproduce_by_seed():
    s1, s1b, s2 = (RenderStyle.random(np.random.default_rng(s)) for s in (1, 1, 2))
    assert s1 == s1b and s1 != s2
    assert s1 != RenderStyle()
    w = scene()
    assert np.array_equal(render(w, CAM, s1, seed=4), render(w, CAM, s1b, seed=4))
    assert not np.array_equal(render(w, CAM, s1, seed=4), render(w, CAM, s2, seed=4))


def test_pixel_noise_changes_with_seed_only_when_styled():
    w = scene()
    noisy = RenderStyle(noise_sigma=4.0)
    assert not np.array_equal(render(w, CAM, noisy, seed=0), render(w, CAM, noisy, seed=1))
    assert np.array_equal(render(w, CAM, seed=0), render(w, CAM, seed=1))


@pytest.mark.parametrize("size", [(640, 480), (128, 128)])
def test_block_top_face_shows_the_block_colour(size):
    cam = CAM.resized(*size)
    w = World.from_scene(ALL_COLOURS, [])
    img = render(w, cam)
    for b in w.blocks.values():
        got = pixel(img, cam, (b.x, b.y, BLOCK_SIZE))
        assert np.abs(got - COLOR_BGR[b.color]).max() <= 12, f"{b.color}: {got} vs {COLOR_BGR[b.color]}"


@pytest.mark.parametrize("seed", range(12))
def test_random_styles_keep_palette_colours_apart(seed):
    style = RenderStyle.random(np.random.default_rng(seed))
    cam = CAM.resized(128, 128)
    w = World.from_scene(ALL_COLOURS, [])
    img = render(w, cam, style, seed=seed)
    tops = {b.color: pixel(img, cam, (b.x, b.y, BLOCK_SIZE)) for b in w.blocks.values()}
    table = pixel(img, cam, (0.0, 0.0, 0.0))
    palette = {c: style.color(COLOR_BGR[c]) for c in COLORS}
    for c, got in tops.items():
        nearest = min(palette, key=lambda p: np.linalg.norm(palette[p] - got))
        assert nearest == c, f"{c} block looks {nearest} under {style}"
        assert np.linalg.norm(got - table) > 40, f"{c} block blends into the table"
    values = list(tops.values())
    gaps = [np.linalg.norm(a - b) for i, a in enumerate(values) for b in values[i + 1:]]
    assert min(gaps) > 40


def test_stacked_block_is_drawn_above_its_support():
    w = scene()
    assert w.support("red") == "block:green"
    img = render(w, CAM)
    style = RenderStyle()
    red, green = colour_mask(img, "red", style), colour_mask(img, "green", style)
    assert red.sum() > 100 and green.sum() > 100
    red_rows, green_rows = np.nonzero(red)[0], np.nonzero(green)[0]
    assert red_rows.mean() < green_rows.mean()
    assert red_rows.min() < green_rows.min()
    # The top block's top face is the red one.
    assert np.abs(pixel(img, CAM, (0.1, -0.05, 2 * BLOCK_SIZE)) - COLOR_BGR["red"]).max() <= 12


def test_near_block_occludes_far_block():
    w = World.from_scene([("blue", (0.0, 0.045)), ("yellow", (0.0, 0.0))], [])
    img = render(w, CAM)
    # The far block's front face centre is hidden behind the near block's top.
    assert np.abs(pixel(img, CAM, (0.0, 0.025, 0.02)) - COLOR_BGR["yellow"]).max() <= 12


def test_held_block_is_drawn_at_the_gripper():
    w = scene()
    run(w, "pick", at=(0.2, 0.22))
    run(w, "move_to", at=(-0.05, 0.0))
    assert w.held == "yellow"
    img = render(w, CAM)
    yellow = colour_mask(img, "yellow", RenderStyle())
    assert yellow.sum() > 100
    rows, cols = np.nonzero(yellow)
    gx, gy, gz = w.gripper
    u, v = CAM.project([(gx, gy, gz - BLOCK_SIZE / 2)])[0]
    assert abs(cols.mean() - u) < 15 and abs(rows.mean() - v) < 15
    # Nothing yellow is left where the block stood, and the dark hand is drawn at the gripper.
    u0, v0 = np.round(CAM.table_to_pixel((0.2, 0.22))).astype(int)
    assert not yellow[v0, u0]
    palm = pixel(img, CAM, (gx + 0.021 + 0.004, gy, gz + 0.019))
    assert palm.max() < 90


def test_bowl_is_drawn_with_its_colour_and_block_inside_stays_visible():
    w = World.from_scene([("red", (0.1, 0.1))], [("blue", (0.1, 0.1)), ("green", (-0.15, -0.1))])
    img = render(w, CAM)
    floor = pixel(img, CAM, (-0.15, -0.1, 0.004))
    target = np.array(COLOR_BGR["green"]) * 0.68
    assert np.abs(floor - target).max() <= 12
    assert w.support("red") == "bowl:blue"
    assert np.abs(pixel(img, CAM, (0.1, 0.1, BLOCK_SIZE)) - COLOR_BGR["red"]).max() <= 12


def test_empty_table_shows_no_objects():
    img = render(World(), CAM)
    # Only table tones (light pixels) apart from the small dark hand parked at home.
    light = img.min(axis=2) > 120
    assert light.mean() > 0.9
