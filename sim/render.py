"""OpenCV renderer of the simulated tabletop (DESIGN §8).

``render(world, camera, style, seed)`` draws what ``camera`` sees: a textured table with the workspace
outlined, bowls as shallow projected cylinders, blocks as shaded cubes painted far to near so stacks
and occlusions look right, hard shadows under resting blocks, and the gripper (a dark two-finger
hand) with the held block between its fingers. ``RenderStyle`` holds the lighting, texture and noise; ``RenderStyle()`` is the
clean default, ``RenderStyle.random(rng)`` a randomized one for training data. The output depends only
on (world, camera, style, seed).

Speed matters (training renders tens of thousands of frames): the table background is computed once
per (camera, style) and cached, all corners are projected in one matrix product, and every shape is
one ``cv2.fillConvexPoly`` with sub-pixel precision so small images (96 x 96) stay accurate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edgeagent.camera import CameraModel
from edgeagent.sim.world import BLOCK_SIZE, BOWL_RADIUS, COLOR_BGR, COLORS, WORKSPACE, World

#: Bowl wall height (m): shallow, so a block in a bowl (bottom at z = 0) still shows above the rim.
BOWL_HEIGHT = 0.025
#: Visible table rectangle (m); large enough to fill the default camera's view.
TABLE_X = (-0.8, 0.8)
TABLE_Y = (-0.7, 0.9)
GRIPPER_BGR = (58, 58, 64)
# Sub-pixel precision of cv2 drawing: coordinates are given in 1/16 pixel.
_SHIFT = 4
_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 36, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 36, endpoint=False))], axis=1)
# Box corners: index bits (sx, sy, sz), each 0 for -half and 1 for +half.
_CORNERS = np.array([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], float) * 2 - 1
# Faces: outward normal and the corner indices in cyclic order.
_NORMALS = np.array([[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]], float)
_FACES = np.array([[0, 2, 3, 1], [4, 6, 7, 5], [0, 4, 5, 1], [2, 6, 7, 3], [0, 4, 6, 2], [1, 5, 7, 3]])


# -- camera -----------------------------------------------------------------------------------
def default_camera(width: int = 640, height: int = 480) -> CameraModel:
    """The simulator's camera: on the robot's side (y < 0), 0.65 m above the table, looking down at
    about 65 degrees. The workspace with bowl rims and 4-block stacks fills most of the image, the
    table's top (+y) is at the top of the image, and the gripper parked at home (0, -0.3, 0.25)
    hides at most the strip along the workspace's bottom edge (y < -0.25 near x = 0) rather than
    the middle of the table. Square pixels at any size: the focal length is chosen so the same
    region fits whatever the aspect ratio."""
    # Focal length (px) that frames the scene in a 640 x 480 image; scale it to fit width and height.
    f = 415.7 * min(width / 640, height / 480)
    fov_y_deg = math.degrees(2 * math.atan(height / 2 / f))
    return CameraModel.look_at((0.0, -0.33, 0.645), (0.0, -0.03, 0.0), fov_y_deg=fov_y_deg,
                               width=width, height=height)


# -- style ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RenderStyle:
    """Lighting, texture and noise of a rendering. Colours are BGR 0-255."""

    # Table top colour before lighting.
    table_bgr: tuple[float, float, float] = (188, 200, 208)
    # Colour outside the table (only seen by unusual cameras).
    floor_bgr: tuple[float, float, float] = (70, 70, 74)
    # Brightness: every colour is multiplied by gain * tint, then bias is added.
    gain: float = 1.0
    bias: float = 0.0
    # Per-channel white balance (B, G, R multipliers).
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # Direction towards the light in the table frame (any length, z > 0).
    light_dir: tuple[float, float, float] = (0.25, -0.3, 0.92)
    # Share of ambient light in [0, 1]: how bright faces turned away from the light stay.
    ambient: float = 0.55
    # Brightness change across the table, as a fraction, brighter towards the light.
    table_gradient: float = 0.06
    # How much shadows darken what they fall on, as a fraction.
    shadow: float = 0.25
    # Amplitude (levels) of the table's blotchy wood-like texture, and the pattern's seed.
    texture_amp: float = 5.0
    texture_seed: int = 0
    # Standard deviation (levels) of per-pixel noise; the pattern changes with the render seed.
    noise_sigma: float = 0.0
    # Largest per-channel offset (levels) added to each object's colour, drawn per render seed.
    color_jitter: float = 0.0

    @staticmethod
    def random(rng: np.random.Generator) -> "RenderStyle":
        """A randomized style for training data. The ranges keep the ten palette colours apart from
        each other and from the table (see tests/sim/test_render.py)."""
        base = rng.uniform(180, 222)
        table = tuple(float(v) for v in np.clip(base + rng.uniform(-9, 9, 3), 0, 255))
        az, el = rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(60, 88))
        light = (float(np.cos(el) * np.cos(az)), float(np.cos(el) * np.sin(az)), float(np.sin(el)))
        return RenderStyle(
            table_bgr=table, floor_bgr=tuple(float(v) for v in rng.uniform(40, 110, 3)),
            gain=float(rng.uniform(0.85, 1.12)), bias=float(rng.uniform(-10, 10)),
            tint=tuple(float(v) for v in rng.uniform(0.95, 1.05, 3)), light_dir=light,
            ambient=float(rng.uniform(0.45, 0.7)), table_gradient=float(rng.uniform(0.0, 0.15)),
            shadow=float(rng.uniform(0.15, 0.4)), texture_amp=float(rng.uniform(2, 12)),
            texture_seed=int(rng.integers(0, 2**31 - 1)), noise_sigma=float(rng.uniform(0, 6)),
            color_jitter=float(rng.uniform(0, 10)))

    def color(self, bgr) -> np.ndarray:
        """A base colour under this style's gain, tint and bias (float BGR, not clipped)."""
        return np.asarray(bgr, float) * self.gain * np.asarray(self.tint) + self.bias

    def light(self) -> np.ndarray:
        """Unit vector towards the light."""
        v = np.asarray(self.light_dir, float)
        return v / np.linalg.norm(v)

    def shades(self) -> np.ndarray:
        """Brightness factor of each box face (order of ``_NORMALS``), 1.0 for a top face."""
        light = self.light()

        def lit(cos):
            return self.ambient + (1 - self.ambient) * np.maximum(cos, 0.0)

        return np.minimum(lit(_NORMALS @ light) / lit(light[2]), 1.2)


DEFAULT_STYLE = RenderStyle()


# -- rendering --------------------------------------------------------------------------------
def render(world: World, camera: CameraModel, style: RenderStyle | None = None, seed: int = 0) -> np.ndarray:
    """Draw ``world`` as seen by ``camera``: H x W x 3 uint8 BGR, deterministic in all arguments."""
    style = style or DEFAULT_STYLE
    img = _background(camera, style).copy()
    view = _view(camera)
    rng = np.random.default_rng(seed)
    # One jitter row per (kind, palette colour) so an object's colour never depends on dict order.
    jitter = (rng.uniform(-style.color_jitter, style.color_jitter, (2 * len(COLORS), 3))
              if style.color_jitter > 0 else np.zeros((2 * len(COLORS), 3)))

    def colour(name: str, kind: int) -> np.ndarray:
        return style.color(COLOR_BGR[name]) + jitter[kind * len(COLORS) + COLORS.index(name)]

    for bowl in sorted(world.bowls.values(), key=lambda b: -view.depth((b.x, b.y, 0.0))):
        _draw_bowl(img, view, (bowl.x, bowl.y), colour(bowl.color, 1))

    # Boxes as (sort depth, order within group, centre, half sizes, colour, casts a shadow).
    half_block = np.full(3, BLOCK_SIZE / 2)
    boxes = []
    for b in world.on_table_blocks():
        centre = np.array([b.x, b.y, b.z + BLOCK_SIZE / 2])
        boxes.append((view.depth(centre), 0, centre, half_block, colour(b.color, 0), True))
    # The hand and its block are drawn as one group, block first, then fingers, palm, wrist. They
    # cast no shadow: a lifted hand's shadow lands far from it and reads as a phantom object.
    gx, gy, gz = world.gripper
    group_depth = view.depth((gx, gy, gz))
    if world.held is not None:
        centre = np.array([gx, gy, gz - BLOCK_SIZE / 2])
        boxes.append((group_depth, 0, centre, half_block, colour(world.held, 0), False))
    hand = style.color(GRIPPER_BGR)
    for i, (centre, half) in enumerate(_gripper_boxes(world), start=1):
        boxes.append((group_depth, i, centre, half, hand, False))
    boxes.sort(key=lambda item: (-item[0], item[1]))  # far to near; low to high within a stack

    centres = np.array([b[2] for b in boxes])
    halves = np.array([b[3] for b in boxes])
    corners = centres[:, None, :] + halves[:, None, :] * _CORNERS[None]  # (N, 8, 3)
    shadowed = [i for i, b in enumerate(boxes) if b[5]]
    if shadowed:
        _draw_shadows(img, view, corners[shadowed], style)
    _draw_boxes(img, view, centres, halves, corners, [b[4] for b in boxes], style)

    if style.noise_sigma > 0:
        img = _add_noise(img, style.noise_sigma, rng)
    return img


@dataclass(frozen=True)
class _View:
    """A camera as arrays, for fast projection."""

    P: np.ndarray  # 3x4 projection matrix K [R | t]
    eye: np.ndarray  # camera centre, table frame
    forward: np.ndarray  # optical axis, table frame

    def project(self, pts: np.ndarray) -> np.ndarray:
        """(..., 3) table points -> (..., 2) pixels."""
        uvw = pts @ self.P[:, :3].T + self.P[:, 3]
        return uvw[..., :2] / np.maximum(uvw[..., 2:3], 1e-6)

    def depth(self, p) -> float:
        return float((np.asarray(p, float) - self.eye) @ self.forward)


@lru_cache(maxsize=16)
def _view(camera: CameraModel) -> _View:
    K, R, t = np.array(camera.K), np.array(camera.R), np.array(camera.t)
    return _View(K @ np.column_stack([R, t]), -R.T @ t, R[2])


def _fixed(uv: np.ndarray) -> np.ndarray:
    """Pixels -> int32 points in 1/16 pixel for cv2 drawing with ``shift``."""
    return np.round(np.clip(uv, -1e5, 1e5) * (1 << _SHIFT)).astype(np.int32)


def _fill(img: np.ndarray, uv: np.ndarray, bgr) -> None:
    cv2.fillConvexPoly(img, _fixed(uv), np.clip(bgr, 0, 255).tolist(), cv2.LINE_AA, _SHIFT)


def _draw_bowl(img: np.ndarray, view: _View, xy, bgr: np.ndarray) -> None:
    """A shallow bowl: outer wall, lit rim, dark inside with a lit floor."""
    x, y = xy

    def ring(radius: float, z: float) -> np.ndarray:
        return view.project(np.column_stack([x + radius * _CIRCLE[:, 0], y + radius * _CIRCLE[:, 1],
                                             np.full(len(_CIRCLE), z)]))

    rim = ring(BOWL_RADIUS, BOWL_HEIGHT)
    wall = np.vstack([rim, ring(BOWL_RADIUS * 0.8, 0.0)])
    _fill(img, cv2.convexHull(wall.astype(np.float32))[:, 0, :], bgr * 0.72)
    _fill(img, rim, bgr)
    _fill(img, ring(BOWL_RADIUS * 0.84, BOWL_HEIGHT), bgr * 0.5)
    _fill(img, ring(BOWL_RADIUS * 0.5, 0.004), bgr * 0.68)


def _gripper_boxes(world: World) -> list[tuple[np.ndarray, np.ndarray]]:
    """Boxes (centre, half sizes) of the two-finger hand at ``world.gripper``, fingers along x.

    The gripper point is the fingertips' reference: a held block hangs with its top face there.
    """
    gx, gy, gz = world.gripper
    gap = 0.021 if world.held is not None else 0.006 if world.closed else 0.03  # half opening
    finger = np.array([0.004, 0.011, 0.024])
    # A thin palm bar, so the camera above still sees the top of a held block.
    palm = np.array([gap + 2 * finger[0], 0.006, 0.007])
    wrist = np.array([0.01, 0.01, 0.02])
    return [
        (np.array([gx - gap - finger[0], gy, gz - 0.012]), finger),
        (np.array([gx + gap + finger[0], gy, gz - 0.012]), finger),
        (np.array([gx, gy, gz + 0.012 + palm[2]]), palm),
        (np.array([gx, gy, gz + 0.012 + 2 * palm[2] + wrist[2]]), wrist),
    ]


def _draw_boxes(img, view: _View, centres, halves, corners, colours, style: RenderStyle) -> None:
    """Fill the camera-facing faces of each box, in the given (far to near) order."""
    uv = view.project(corners)  # (N, 8, 2)
    face_centres = centres[:, None, :] + halves[:, None, :] * _NORMALS[None]  # (N, 6, 3)
    facing = np.einsum("nfk,fk->nf", view.eye - face_centres, _NORMALS) > 1e-9
    shades = style.shades()
    for n, colour in enumerate(colours):
        if view.depth(centres[n]) <= 0.02:  # at or behind the camera
            continue
        for f in np.flatnonzero(facing[n]):
            _fill(img, uv[n, _FACES[f]], colour * shades[f])


def _draw_shadows(img, view: _View, corners: np.ndarray, style: RenderStyle) -> None:
    """Darken the table (and bowls) under each box, cast along the light direction."""
    if style.shadow <= 0:
        return
    light = style.light()
    flat = corners.copy()
    flat[..., :2] -= corners[..., 2:3] * light[:2] / max(light[2], 0.2)
    flat[..., 2] = 0.0
    uv = view.project(flat)
    h, w = img.shape[:2]
    lo = np.clip(np.floor(uv.reshape(-1, 2).min(0)).astype(int), 0, [w, h])
    hi = np.clip(np.ceil(uv.reshape(-1, 2).max(0)).astype(int) + 1, 0, [w, h])
    if np.any(hi - lo <= 0):
        return
    roi = img[lo[1]:hi[1], lo[0]:hi[0]]
    mask = np.zeros(roi.shape[:2], np.uint8)
    for pts in uv - lo:
        cv2.fillConvexPoly(mask, _fixed(cv2.convexHull(pts.astype(np.float32))[:, 0, :]), 255, cv2.LINE_8, _SHIFT)
    cv2.copyTo(cv2.convertScaleAbs(roi, alpha=1.0 - style.shadow), mask, roi)


def _add_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian pixel noise: a seed-chosen shifted, flipped window of a cached noise field."""
    h, w = img.shape[:2]
    bank = _noise_bank(h, w)
    dy, dx, flip = rng.integers(0, 64), rng.integers(0, 64), rng.integers(0, 4)
    window = bank[dy:dy + h, dx:dx + w]
    if flip & 1:
        window = window[::-1]
    if flip & 2:
        window = window[:, ::-1]
    noise = cv2.multiply(np.ascontiguousarray(window), 1.0, scale=sigma / _BANK_SIGMA, dtype=cv2.CV_16S)
    return cv2.add(img, noise, dtype=cv2.CV_8U)


_BANK_SIGMA = 16.0


@lru_cache(maxsize=4)
def _noise_bank(h: int, w: int) -> np.ndarray:
    # Drawing fresh Gaussian noise costs more than the rest of a frame; windows of one field
    # (64 x 64 shifts x 4 flips) vary enough for training data.
    bank = np.empty((h + 64, w + 64, 3), np.int16)
    cv2.setRNGSeed(12345)
    cv2.randn(bank, 0.0, _BANK_SIGMA)
    return bank


@lru_cache(maxsize=8)
def _background(camera: CameraModel, style: RenderStyle) -> np.ndarray:
    """The empty table seen by ``camera``: texture and lighting in table coordinates, warped."""
    # Texels per metre: about one texel per image pixel near the workspace, capped for speed.
    tpm = float(np.clip(max(camera.width, camera.height) / 1.4, 64, 320))
    tw = int((TABLE_X[1] - TABLE_X[0]) * tpm)
    th = int((TABLE_Y[1] - TABLE_Y[0]) * tpm)
    xs = (TABLE_X[0] + np.arange(tw) / tpm).astype(np.float32)
    ys = (TABLE_Y[1] - np.arange(th) / tpm).astype(np.float32)
    light = style.light()
    horizontal = max(float(np.hypot(light[0], light[1])), 1e-6)
    along = xs[None, :] * np.float32(light[0] / horizontal) + ys[:, None] * np.float32(light[1] / horizontal)
    # Two single-channel maps, coloured only after warping: lum (lighting) and texture (levels).
    lum = 1.0 + np.float32(style.table_gradient) * np.clip(along * np.float32(2.5), -1.5, 1.5)
    rng = np.random.default_rng(style.texture_seed)
    blotches = cv2.resize(rng.standard_normal((10, 10)).astype(np.float32), (tw, th), interpolation=cv2.INTER_CUBIC)
    # Fast along y, slow along x: streaks running left-right like wood grain.
    grain = cv2.resize(rng.standard_normal((60, 5)).astype(np.float32), (tw, th), interpolation=cv2.INTER_CUBIC)
    texture = cv2.addWeighted(blotches, 0.6 * style.texture_amp, grain, 0.5 * style.texture_amp, 0.0)
    # The workspace outline, subtle: a thin slightly darker line at |x|, |y| = WORKSPACE.
    def corner(x: float, y: float) -> tuple[int, int]:  # table point -> texel, 1/16 texel units
        return int(round((x - TABLE_X[0]) * tpm * 16)), int(round((TABLE_Y[1] - y) * tpm * 16))

    cv2.rectangle(lum, corner(-WORKSPACE, WORKSPACE), corner(WORKSPACE, -WORKSPACE), 0.86,
                  max(1, int(round(0.003 * tpm))), cv2.LINE_AA, 4)
    # Texture pixel (u, v) -> table (x, y) -> image pixel.
    tex_to_table = np.array([[1 / tpm, 0, TABLE_X[0]], [0, -1 / tpm, TABLE_Y[1]], [0, 0, 1]])
    M = camera.homography(0.0) @ tex_to_table
    # Outside the table: lum 0, texture 0 and a third "off the table" channel set to 1.
    maps = cv2.merge([lum, texture, np.zeros_like(lum)])
    maps = cv2.warpPerspective(maps, M, (camera.width, camera.height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0.0, 0.0, 1.0))
    # colour_c = table_c * gain * tint_c * lum + gain * tint_c * texture + floor_c * off + bias
    scale = style.gain * np.asarray(style.tint)
    m = np.column_stack([np.asarray(style.table_bgr) * scale, scale,
                         style.color(style.floor_bgr) - style.bias, np.full(3, style.bias)])
    out = cv2.transform(maps, m.astype(np.float32))
    return np.clip(out, 0, 255, out=out).astype(np.uint8)
