"""Pinhole camera model and the image <-> table mapping.

The table frame (DESIGN §8): origin at the workspace centre, x right, y away from the robot, z up,
metres. A `CameraModel` holds intrinsics ``K`` and the world->camera pose (``R``, ``t``) so that a
table point ``p`` projects as ``K (R p + t)``. On the table plane (z = 0, or any fixed height) the
mapping is a homography, which is what planners use to turn a pixel into a table point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CameraModel:
    """A calibrated camera looking at the table. Immutable; ``resized`` gives a scaled copy."""

    # Image size in pixels.
    width: int
    height: int
    # 3x3 intrinsics (fx, fy, cx, cy in pixels), row-major.
    K: tuple[tuple[float, ...], ...]
    # 3x3 rotation world->camera, row-major.
    R: tuple[tuple[float, ...], ...]
    # Translation world->camera in metres.
    t: tuple[float, float, float]

    # -- construction -------------------------------------------------------------------------
    @staticmethod
    def look_at(eye, target, *, fov_y_deg: float, width: int, height: int) -> "CameraModel":
        """A camera at ``eye`` (table frame, metres) looking at ``target``, with vertical FOV."""
        eye = np.asarray(eye, float)
        forward = np.asarray(target, float) - eye
        forward /= np.linalg.norm(forward)
        up_world = np.array([0.0, 0.0, 1.0])
        right = np.cross(forward, up_world)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        # Camera axes: x right, y down, z forward (OpenCV convention).
        R = np.stack([right, down, forward])
        t = -R @ eye
        fy = (height / 2) / np.tan(np.radians(fov_y_deg) / 2)
        K = np.array([[fy, 0, width / 2], [0, fy, height / 2], [0, 0, 1.0]])
        return CameraModel(width, height, _tup(K), _tup(R), tuple(float(v) for v in t))

    def resized(self, width: int, height: int) -> "CameraModel":
        """The same camera for an image resized (possibly anisotropically) to ``width x height``."""
        sx, sy = width / self.width, height / self.height
        K = np.array(self.K) * np.array([[sx], [sy], [1.0]])
        return CameraModel(width, height, _tup(K), self.R, self.t)

    # -- mapping ------------------------------------------------------------------------------
    def project(self, points_xyz) -> np.ndarray:
        """Table-frame points (N, 3) in metres -> pixels (N, 2)."""
        p = np.atleast_2d(np.asarray(points_xyz, float))
        cam = p @ np.array(self.R).T + np.array(self.t)
        uvw = cam @ np.array(self.K).T
        return uvw[:, :2] / uvw[:, 2:3]

    def depth(self, points_xyz) -> np.ndarray:
        """Distance along the optical axis (metres) of table-frame points (N, 3)."""
        p = np.atleast_2d(np.asarray(points_xyz, float))
        return (p @ np.array(self.R).T + np.array(self.t))[:, 2]

    def table_to_pixel(self, xy, z: float = 0.0) -> np.ndarray:
        """Table points (N, 2) at height ``z`` -> pixels (N, 2). A single point gives shape (2,)."""
        xy = np.asarray(xy, float)
        single = xy.ndim == 1
        xy = np.atleast_2d(xy)
        uv = self.project(np.column_stack([xy, np.full(len(xy), z)]))
        return uv[0] if single else uv

    def pixel_to_table(self, uv, z: float = 0.0) -> np.ndarray:
        """Pixels (N, 2) -> table points (N, 2) where the viewing ray meets the plane at height ``z``."""
        uv = np.asarray(uv, float)
        single = uv.ndim == 1
        uv = np.atleast_2d(uv)
        ones = np.ones((len(uv), 1))
        rays_cam = np.hstack([uv, ones]) @ np.linalg.inv(np.array(self.K)).T
        R = np.array(self.R)
        rays = rays_cam @ R  # camera -> world directions (R^T applied row-wise)
        origin = -R.T @ np.array(self.t)
        s = (z - origin[2]) / rays[:, 2]
        xy = origin[:2] + s[:, None] * rays[:, :2]
        return xy[0] if single else xy

    def homography(self, z: float = 0.0) -> np.ndarray:
        """3x3 matrix H with ``[u, v, 1] ~ H [x, y, 1]`` for table points at height ``z``."""
        K, R, t = np.array(self.K), np.array(self.R), np.array(self.t)
        return K @ np.column_stack([R[:, 0], R[:, 1], R[:, 2] * z + t])

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "K": [list(r) for r in self.K],
                "R": [list(r) for r in self.R], "t": list(self.t)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "CameraModel":
        try:
            return CameraModel(int(d["width"]), int(d["height"]), _tup(np.array(d["K"], float)),
                               _tup(np.array(d["R"], float)), tuple(float(v) for v in d["t"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"camera model needs width, height, K (3x3), R (3x3), t (3): {exc}") from exc


def _tup(m: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(m, float))
