"""Building the service's robot, camera and planners from its config (``service_config``).

Each kind is one entry of a dict (``ROBOTS``, ``CAMERAS``, ``PLANNERS``); a "package.module:Class"
kind imports the user's class and constructs it with the section's ``options``. Nothing outside this
module knows which backend runs.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeagent.camera import CameraModel
from edgeagent.config import read_yaml
from edgeagent.errors import ConfigError, EdgeAgentError
from edgeagent.service_config import PlannerConfig, RobotServiceConfig, resolve
from edgeagent.types import Call, Observation, Robot, StepResult

log = logging.getLogger(__name__)

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def import_object(path: str, where: str) -> Any:
    """The object named by "package.module:Name"; ConfigError naming ``where`` when it cannot be imported."""
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"{where}: cannot import {module!r} ({exc}); is it installed or on PYTHONPATH?") from exc
    except AttributeError:
        raise ConfigError(f"{where}: module {module!r} has no {name!r}") from None


def construct(path: str, options: dict, where: str) -> Any:
    cls = import_object(path, where)
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"{where}: {path}(**options) failed: {exc}; check the options keys") from exc


# -- cameras -------------------------------------------------------------------------------------------------
class FolderCamera:
    """Frames from a folder of images, in name order, cycling (a replayed camera)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        files = sorted(f for f in self.folder.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES) \
            if self.folder.is_dir() else []
        if not files:
            raise ConfigError(f"camera.folder: {self.folder} holds no .jpg/.png images")
        self.files = files
        self._cycle = itertools.cycle(files)
        self._lock = threading.Lock()

    def read(self) -> np.ndarray:
        import cv2

        with self._lock:
            path = next(self._cycle)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise EdgeAgentError(f"camera.folder: {path} cannot be decoded as an image; remove or replace it")
        return image

    def close(self) -> None:
        pass


class OpenCVCamera:
    """Frames from ``cv2.VideoCapture``: a device index, a GStreamer pipeline or a video file."""

    def __init__(self, device: int | str):
        from edgeagent.jetson.camera import open_camera

        self.device = device
        self.cap = open_camera(device)
        self._lock = threading.Lock()

    def read(self) -> np.ndarray:
        with self._lock:
            ok, frame = self.cap.read()
        if not ok or frame is None:
            raise EdgeAgentError(f"camera {self.device!r} returned no frame; check the cable / pipeline")
        return frame

    def close(self) -> None:
        self.cap.release()


def load_calibration(path: str, where: str = "camera.calibration") -> CameraModel:
    """A CameraModel from a YAML or JSON file with width, height, K, R, t."""
    data = read_yaml(path)  # YAML is a superset of JSON
    try:
        return CameraModel.from_dict(data if isinstance(data, dict) else {})
    except ValueError as exc:
        raise ConfigError(f"{path}: {where}: {exc}") from exc


class CameraRobot:
    """A Robot whose observations take their image from a camera instead of the backend."""

    def __init__(self, robot: Robot, frames: Callable[[], np.ndarray], camera: CameraModel):
        self.robot = robot
        self.frames = frames
        self.camera = camera

    def observe(self) -> Observation:
        image = self.frames()
        h, w = image.shape[:2]
        cam = self.camera if (self.camera.width, self.camera.height) == (w, h) else self.camera.resized(w, h)
        return Observation(image, cam, self.robot.observe().holding)

    def execute(self, call: Call) -> StepResult:
        return self.robot.execute(call)

    def stop(self) -> None:
        self.robot.stop()

    def __enter__(self) -> "CameraRobot":
        self.robot.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.robot.__exit__(*exc)


class LockedRobot:
    """Serialises ``observe`` and ``execute`` (a `plan` request may look while a `run` moves).

    ``stop`` is not serialised: it must reach the robot while a primitive runs.
    """

    def __init__(self, robot: Robot):
        self.robot = robot
        self._lock = threading.Lock()

    def observe(self) -> Observation:
        with self._lock:
            return self.robot.observe()

    def execute(self, call: Call) -> StepResult:
        with self._lock:
            return self.robot.execute(call)

    def stop(self) -> None:
        self.robot.stop()

    def __enter__(self) -> "LockedRobot":
        self.robot.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.robot.__exit__(*exc)


# -- building from config --------------------------------------------------------------------------------------
def build_camera(cfg: RobotServiceConfig) -> tuple[Callable[[], np.ndarray], CameraModel, Callable[[], None]] | None:
    """(read frame, camera model, close) for opencv/folder cameras; None when the backend supplies images."""
    c = cfg.camera
    if c.kind == "sim":
        return None
    model = load_calibration(resolve(cfg, c.calibration), f"{cfg.source or 'config'}: camera.calibration")
    source = FolderCamera(resolve(cfg, c.folder)) if c.kind == "folder" else OpenCVCamera(c.device)
    return source.read, model, source.close


def _sim_robot(cfg: RobotServiceConfig, registry, camera) -> Robot:
    from edgeagent.sim.robot import SimRobot

    s = cfg.backend.sim
    if s.scenario_file:
        scenario = _scenario(cfg)
        world = scenario.build_world(grasp_failure=s.grasp_failure)
        return SimRobot(world, registry=registry, seed=scenario.scene.seed)
    where = f"{cfg.source or 'config'}: backend.sim"
    blocks = [_object(b, f"{where}.blocks[{i}]") for i, b in enumerate(s.blocks)]
    bowls = [_object(b, f"{where}.bowls[{i}]") for i, b in enumerate(s.bowls)]
    try:
        return SimRobot.from_scene(blocks, bowls, seed=s.seed, grasp_failure=s.grasp_failure, registry=registry)
    except (ValueError, KeyError, EdgeAgentError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _object(item: Any, where: str):
    """A scene object as the world takes it: "red" or ("red", (x, y)), from "red" or {color, at}."""
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and set(item) <= {"color", "at"} and isinstance(item.get("color"), str):
        at = item.get("at")
        if at is None:
            return item["color"]
        if isinstance(at, (list, tuple)) and len(at) == 2 and all(isinstance(v, (int, float)) for v in at):
            return item["color"], (float(at[0]), float(at[1]))
    raise ConfigError(f"{where}: expected a colour or {{color: red, at: [x, y]}} (metres), got {item!r}")


def _scenario(cfg: RobotServiceConfig):
    from edgeagent.sim.scenario import load_scenarios

    s = cfg.backend.sim
    scenarios = load_scenarios([resolve(cfg, s.scenario_file)])
    if s.scenario is None:
        return scenarios[0]
    for sc in scenarios:
        if sc.name == s.scenario:
            return sc
    raise ConfigError(f"{cfg.source or 'config'}: backend.sim.scenario: no scenario {s.scenario!r} in "
                      f"{s.scenario_file}; it has {', '.join(x.name for x in scenarios)}")


def _bridge_robot(cfg: RobotServiceConfig, registry, camera) -> Robot:
    from edgeagent.bridge import BridgeRobot

    if camera is None:
        raise ConfigError(f"{cfg.source or 'config'}: camera.kind: the zmq-bridge backend has no images; "
                          "configure an opencv or folder camera")
    read, model, _ = camera
    robot = BridgeRobot(cfg.backend.bridge.endpoint, frames=read, camera=model, timeout_s=cfg.backend.bridge.timeout_s)
    reply = robot.connect()
    log.info("robot controller %r at %s", reply.get("name", ""), cfg.backend.bridge.endpoint)
    return robot


#: backend.kind -> builder(config, registry, camera) -> Robot. Other kinds are import paths.
ROBOTS: dict[str, Callable[..., Robot]] = {"sim": _sim_robot, "zmq-bridge": _bridge_robot}


def build_robot(cfg: RobotServiceConfig, registry, camera=None) -> Robot:
    """The configured robot backend, with the configured camera's images when there is one."""
    kind = cfg.backend.kind
    if kind in ROBOTS:
        robot = ROBOTS[kind](cfg, registry, camera)
    else:
        robot = construct(kind, dict(cfg.backend.options), f"{cfg.source or 'config'}: backend.kind")
        if not isinstance(robot, Robot):
            raise ConfigError(f"{cfg.source or 'config'}: backend.kind: {kind} does not implement the Robot protocol "
                              "(observe, execute, stop, __enter__, __exit__)")
    if camera is not None and kind != "zmq-bridge":
        read, model, _ = camera
        robot = CameraRobot(robot, read, model)
    return robot


def build_planner(p: PlannerConfig, registry, *, source_cfg=None, robot=None, where: str = "planner") -> Any:
    """The configured planner: an ONNX model folder, the sim expert, or an import-path class."""
    if p.kind == "model":
        from edgeagent.models.runtime import ModelPlanner, default_model_dir

        folder = resolve(source_cfg, p.model) if source_cfg is not None else p.model
        return ModelPlanner(folder or default_model_dir(), registry=registry, provider_config=p.providers,
                            engine=p.engine, absent_below=p.absent_below)
    if p.kind == "expert":
        from edgeagent.sim.expert import ExpertPlanner

        sim = getattr(robot, "world", None)
        if sim is None:
            raise ConfigError(f"{where}.kind: 'expert' needs the sim backend")
        return ExpertPlanner(sim, _scenario(source_cfg).bound_goal(sim))
    return construct(p.kind, dict(p.options), where + ".kind")

