"""What the planner sees of a camera frame: the model's S x S ``image`` input and the camera of it.

Two views, recorded in the manifest (``view``) and in every checkpoint and dataset, so training, the
runtime, calibration and the refit all feed a model the view it was trained on:

- ``camera``: the whole frame squeezed to S x S with ``cv2.INTER_AREA`` (the aspect ratio is not
  kept). Points decode through the robot's camera model. Models up to v13 use it.
- ``table``: the table rectified to a top-down S x S view through the camera model's homography on
  the plane ``plane_z_m`` (half a block's side, so a block's centre lands on its own x, y), showing
  the square ``[-half_extent_m, half_extent_m]`` of the table frame: x to the right, +y ("top", away
  from the robot) up. Every cell is the same square of table, so "the second block from the left",
  a line and "a little to the left" are straight pixel geometry, and the picture does not depend on
  where the camera is mounted: a robot whose camera sits elsewhere gives the model the same view
  once its camera model is calibrated.

``View.model_input(frame, camera, S)`` returns ``(image, camera_of_image)``: the S x S uint8 image and
a ``CameraModel`` of that image, through which the model's cells decode to table points and through
which training labels are made. For the table view it is a virtual camera far above the table
looking straight down (orthographic to within 0.1 mm over the workspace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from edgeagent.camera import CameraModel

#: The views a model can be trained on.
KINDS = ("camera", "table")
#: Height (m) of the virtual top-down camera of the table view: far enough that the scale differs by
#: under 0.03% between the table and a 0.12 m stack, near enough for exact float64 arithmetic.
_VIRTUAL_HEIGHT_M = 100.0
#: The table view is warped at this multiple of S and then area-averaged to S, so a frame shrunk by
#: about 4 does not alias (warpPerspective samples only bilinearly).
_SUPERSAMPLE = 2


@dataclass(frozen=True)
class View:
    """How a frame becomes the model's image. Frozen; ``to_dict``/``from_dict`` are its manifest form."""

    # "camera" (the frame squeezed to S x S) or "table" (the table rectified, top-down).
    kind: str = "camera"
    # Table view only: half the side (m) of the square of table shown, centred on the workspace centre;
    # the workspace is +-0.3 m, and the margin keeps a block at its edge whole.
    half_extent_m: float = 0.34
    # Table view only: height (m) of the plane the frame is rectified on.
    plane_z_m: float = 0.02
    # Table view only: the table point (x, y, metres) at the centre of the view. Anything above the
    # plane is seen displaced away from the camera, so a view can reach further on the far side.
    centre_m: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"view kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not 0.05 <= self.half_extent_m <= 2.0:
            raise ValueError(f"view half_extent_m {self.half_extent_m} must be in [0.05, 2.0] metres")
        if not -0.5 <= self.plane_z_m <= 0.5:
            raise ValueError(f"view plane_z_m {self.plane_z_m} must be in [-0.5, 0.5] metres")
        if len(self.centre_m) != 2 or not all(-1.0 <= c <= 1.0 for c in self.centre_m):
            raise ValueError(f"view centre_m {self.centre_m} must be two numbers in [-1, 1] metres")

    # -- manifest form -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        if self.kind == "camera":
            return {"kind": "camera"}
        return {"kind": self.kind, "half_extent_m": self.half_extent_m, "plane_z_m": self.plane_z_m,
                "centre_m": list(self.centre_m)}

    def describe(self) -> str:
        """What the model sees, in words (``model info``, error messages)."""
        if self.kind == "camera":
            return "camera view (the frame squeezed to S x S)"
        return (f"table view (the table top-down, {2 * self.half_extent_m:g} m square rectified on z = "
                f"{self.plane_z_m:g} m through the camera model, centred on ({self.centre_m[0]:g}, "
                f"{self.centre_m[1]:g}))")

    @staticmethod
    def from_dict(d: Mapping[str, Any] | None) -> "View":
        """Parse the manifest / checkpoint form; ``None`` (files older than views) is the camera view."""
        if d is None:
            return View()
        if not isinstance(d, Mapping):
            raise ValueError(f"view must be an object like {{\"kind\": \"table\"}}, got {d!r:.40}")
        unknown = sorted(set(d) - {"kind", "half_extent_m", "plane_z_m", "centre_m"})
        if unknown:
            raise ValueError(f"view has an unknown key {unknown[0]!r} (known: kind, half_extent_m, plane_z_m, "
                             "centre_m)")
        kw: dict[str, Any] = {"kind": d.get("kind", "camera")}
        for key in ("half_extent_m", "plane_z_m"):
            if key in d:
                v = d[key]
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ValueError(f"view {key} must be a number (metres), got {v!r:.20}")
                kw[key] = float(v)
        if "centre_m" in d:
            c = d["centre_m"]
            if (not isinstance(c, (list, tuple)) or len(c) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in c)):
                raise ValueError(f"view centre_m must be [x, y] in metres, got {c!r:.30}")
            kw["centre_m"] = (float(c[0]), float(c[1]))
        return View(**kw)

    # -- the model's input -----------------------------------------------------------------------
    def image_camera(self, S: int) -> CameraModel:
        """Table view: the virtual top-down camera of the S x S image (pixel u = 0 at x = cx - half_extent_m,
        v = 0 at y = cy + half_extent_m, on the plane ``plane_z_m``, where (cx, cy) is ``centre_m``)."""
        if self.kind != "table":
            raise ValueError("only the table view has a camera of its own; the camera view uses the robot's")
        h = _VIRTUAL_HEIGHT_M
        f = S * (h - self.plane_z_m) / (2 * self.half_extent_m)
        K = ((f, 0.0, S / 2), (0.0, f, S / 2), (0.0, 0.0, 1.0))
        # Camera axes in the table frame: x right = +x, y down the image = -y, forward = down (-z).
        R = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))
        cx, cy = self.centre_m
        return CameraModel(S, S, K, R, (-cx, cy, h))

    def model_input(self, frame: np.ndarray, camera: CameraModel, S: int) -> tuple[np.ndarray, CameraModel]:
        """A BGR frame (H x W x 3 uint8, any size) and its camera model -> ``(image, camera_of_image)``:
        the S x S uint8 image the model reads and the camera through which its pixels map to the table."""
        if not (isinstance(frame, np.ndarray) and frame.ndim == 3 and frame.shape[2] == 3
                and frame.dtype == np.uint8):
            got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ValueError(f"observation image must be an H x W x 3 uint8 BGR array, got {got}")
        import cv2

        H, W = frame.shape[:2]
        if (camera.width, camera.height) != (W, H):
            camera = camera.resized(W, H)
        if self.kind == "camera":
            if (H, W) != (S, S):
                frame = cv2.resize(frame, (S, S), interpolation=cv2.INTER_AREA)
            return np.ascontiguousarray(frame), camera.resized(S, S)
        return self.rectify(frame, camera, S), self.image_camera(S)

    def unseen_corners(self, camera: CameraModel, workspace) -> list[tuple[float, float]]:
        """The corners of ``workspace`` (x_min..y_max, metres) that ``camera`` does not see on the view's
        plane: outside its image or behind it. The table view is black there, so a model plans blind."""
        corners = [(x, y) for y in (workspace.y_max, workspace.y_min) for x in (workspace.x_min, workspace.x_max)]
        pts = np.column_stack([np.array(corners), np.full(4, self.plane_z_m)])
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = camera.project(pts)
        seen = ((camera.depth(pts) > 0) & (uv[:, 0] >= 0) & (uv[:, 0] <= camera.width)
                & (uv[:, 1] >= 0) & (uv[:, 1] <= camera.height))
        return [c for c, ok in zip(corners, seen) if not ok]

    def rectify(self, frame: np.ndarray, camera: CameraModel, S: int) -> np.ndarray:
        """The table view of ``frame`` (whose camera model is ``camera``, at the frame's size), S x S."""
        import cv2

        big = S * _SUPERSAMPLE
        z = self.plane_z_m
        # Frame pixel -> table plane -> view pixel, in continuous coordinates (a pixel spans [i, i + 1)).
        M = self.image_camera(big).homography(z) @ np.linalg.inv(camera.homography(z))
        # OpenCV indexes pixel centres: index i is continuous i + 0.5 in both images.
        shift, unshift = np.eye(3), np.eye(3)
        shift[:2, 2], unshift[:2, 2] = 0.5, -0.5
        M = unshift @ M @ shift
        warped = cv2.warpPerspective(frame, M, (big, big), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        return cv2.resize(warped, (S, S), interpolation=cv2.INTER_AREA)
