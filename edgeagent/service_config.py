"""Configs of the robot service (``edgeagent serve``) and the workstation offload server, as YAML.

A robot config file holds the ``primitives`` section of ``robot_config`` unchanged, plus the sections
below; a workstation file holds ``endpoint``, ``planner``, ``primitives``, ``security`` and the worker
pool. Every section is a frozen dataclass; unknown keys and wrong values are errors naming the file and
key. ``examples/robot.yaml`` and ``examples/workstation.yaml`` show every key with its default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgeagent.config import from_mapping, read_yaml
from edgeagent.errors import ConfigError
from edgeagent.jetson.providers import ProviderConfig
from edgeagent.robot_config import PrimitivesConfig

#: DESIGN §7 default endpoints.
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_EVENTS = "tcp://127.0.0.1:5556"
DEFAULT_OFFLOAD = "tcp://127.0.0.1:5557"


@dataclass(frozen=True)
class SimSceneConfig:
    # Blocks on the simulated table: colours, or {color: red, at: [x, y]} (metres).
    blocks: tuple[Any, ...] = ("red", "green", "blue")
    # Bowls on the simulated table, same forms as blocks.
    bowls: tuple[Any, ...] = ("yellow", "purple")
    # Seeds the positions of objects given without `at`.
    seed: int = 0
    # Probability that a grasp fails, to exercise re-planning.
    grasp_failure: float = 0.0
    # Take the scene from this scenario file instead (DESIGN §9) ...
    scenario_file: str | None = None
    # ... and this scenario in it (default: the first).
    scenario: str | None = None


@dataclass(frozen=True)
class BridgeConfig:
    # The external controller's ROUTER/REP endpoint (docs/protocol.md, "Robot bridge").
    endpoint: str = "tcp://127.0.0.1:5560"
    # How long one primitive may take on the real robot before the bridge gives up, seconds.
    timeout_s: float = 30.0


@dataclass(frozen=True)
class BackendConfig:
    # sim | zmq-bridge | a Python class "package.module:Class" (constructed with `options`).
    kind: str = "sim"
    # The simulated scene (kind sim).
    sim: SimSceneConfig = field(default_factory=SimSceneConfig)
    # The external controller (kind zmq-bridge).
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    # Keyword arguments for an import-path class.
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CameraConfig:
    # sim: the backend's own images (the simulator's renderer; a user class's observe()) | opencv | folder
    kind: Literal["sim", "opencv", "folder"] = "sim"
    # opencv: a device index (0), a GStreamer pipeline string (contains "!") or a video file.
    device: str | int = 0
    # folder: a folder of .jpg/.png frames, served in name order, cycling.
    folder: str | None = None
    # opencv / folder: a YAML or JSON file with the calibrated CameraModel (width, height, K, R, t).
    calibration: str | None = None


@dataclass(frozen=True)
class PlannerConfig:
    # model (an ONNX planner folder) | expert (simulator demo: plans from the sim scenario's goal and
    # ignores the instruction) | a Python class "package.module:Class" (constructed with `options`).
    kind: str = "model"
    # Model folder (planner.onnx + manifest.json); null = the shipped model.
    model: str | None = None
    # onnxruntime | tensorrt
    engine: str = "onnxruntime"
    # onnxruntime execution providers and their options (jetson/providers.py).
    providers: ProviderConfig = field(default_factory=ProviderConfig)
    # model: refuse an instruction naming a block or bowl that the model's object map scores below this
    # everywhere in the first frame of a task (models/README.md, "Absent objects"); 0 turns it off;
    # null = the model manifest's absent_below (the shipped model's: 0.05).
    absent_below: float | None = None
    # Keyword arguments for an import-path class.
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CacheConfig:
    # Reuse plans for the same instruction and scene.
    enabled: bool = True
    # Entries kept (least recently used goes first).
    size: int = 256
    # Largest per-pixel difference (0-255) of the scene thumbnails for a hit.
    tolerance: int = 12


@dataclass(frozen=True)
class RouterConfig:
    # local | remote | auto | hedge (DESIGN §6).
    mode: Literal["local", "remote", "auto", "hedge"] = "auto"
    # Deadline of one plan request, milliseconds (a request may ask for its own).
    deadline_ms: float = 200.0
    # Local confidence at or above which the local plan is used; null = the model's calibrated value.
    confidence_threshold: float | None = None
    # The workstation's offload server, e.g. tcp://192.168.1.20:5557; null = no workstation.
    offload: str | None = None
    # Heartbeat period to the workstation, milliseconds.
    heartbeat_ms: float = 500.0
    # The link counts as down after this long without an answered heartbeat, milliseconds.
    heartbeat_timeout_ms: float = 2000.0
    # Time kept free before the deadline to hand the answer back, milliseconds.
    margin_ms: float = 5.0
    # How frames travel to the workstation: jpeg (small) or png (lossless).
    image_format: Literal["jpeg", "png"] = "jpeg"
    # The plan cache.
    cache: CacheConfig = field(default_factory=CacheConfig)


@dataclass(frozen=True)
class SecurityConfig:
    # This side's secret key file (NAME.key_secret from `edgeagent keys generate`); null = no CURVE,
    # and then the server binds to loopback addresses only.
    secret_key: str | None = None
    # Public keys of allowed clients: key files, folders of *.key files, or Z85 strings.
    allow: tuple[str, ...] = ()
    # The workstation's public key (file or Z85), to reach an offload server that uses CURVE.
    offload_server_key: str | None = None


@dataclass(frozen=True)
class ServiceSection:
    # Requests (ROUTER).
    endpoint: str = DEFAULT_ENDPOINT
    # Events (PUB).
    events: str = DEFAULT_EVENTS
    # Threads answering plan / reload requests.
    workers: int = 1
    # Requests that may wait for a worker; beyond, the reply is `busy`.
    queue: int = 32
    # Default step budget of a `run`.
    max_steps: int = 20


@dataclass(frozen=True)
class RobotServiceConfig:
    """Everything ``edgeagent serve`` reads from a robot config file."""

    primitives: PrimitivesConfig = field(default_factory=PrimitivesConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    router: RouterConfig = field(default_factory=RouterConfig)
    service: ServiceSection = field(default_factory=ServiceSection)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    # The file it came from ("" for defaults); relative paths in it are relative to its folder.
    source: str = ""


@dataclass(frozen=True)
class OffloadServerConfig:
    """Everything ``edgeagent offload-server`` reads from a workstation config file."""

    # Requests from robots (ROUTER).
    endpoint: str = DEFAULT_OFFLOAD
    # The workstation's planner.
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    # Primitives the workstation's planner may propose (robots validate again with their own).
    primitives: PrimitivesConfig = field(default_factory=PrimitivesConfig)
    # Threads planning at once (several robots).
    workers: int = 2
    # Requests that may wait; beyond, the reply is `busy`.
    queue: int = 64
    security: SecurityConfig = field(default_factory=SecurityConfig)
    source: str = ""


def load_service_config(path: str | Path | None) -> RobotServiceConfig:
    """A robot config file (None: all defaults). Errors name the file and key."""
    if path is None:
        return check_service_config(RobotServiceConfig())
    data = _mapping(path)
    if "source" in data:
        raise ConfigError(f"{path}: unknown key 'source'")
    cfg = from_mapping(RobotServiceConfig, data, str(path))
    return check_service_config(dataclasses.replace(cfg, source=str(path)))


def load_offload_config(path: str | Path | None) -> OffloadServerConfig:
    """A workstation config file (None: all defaults). Errors name the file and key."""
    if path is None:
        return check_offload_config(OffloadServerConfig())
    data = _mapping(path)
    if "source" in data:
        raise ConfigError(f"{path}: unknown key 'source'")
    cfg = from_mapping(OffloadServerConfig, data, str(path))
    return check_offload_config(dataclasses.replace(cfg, source=str(path)))


def _mapping(path: str | Path) -> dict:
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def resolve(cfg: RobotServiceConfig | OffloadServerConfig, value: str | None) -> str | None:
    """A path from the config file, taken relative to the file's folder (as docker-compose does)."""
    if value is None or not cfg.source or Path(value).expanduser().is_absolute():
        return None if value is None else str(Path(value).expanduser())
    return str(Path(cfg.source).parent / value)


def base_dir(cfg: RobotServiceConfig | OffloadServerConfig) -> Path | None:
    """The config file's folder (relative paths in the file are relative to it); None for defaults."""
    return Path(cfg.source).parent if cfg.source else None


def _where(cfg, key: str) -> str:
    return f"{cfg.source or 'config'}: {key}"


_BACKENDS = ("sim", "zmq-bridge")
_PLANNERS = ("model", "expert")


def is_import_path(kind: str) -> bool:
    """True for "package.module:Class"."""
    mod, sep, name = kind.partition(":")
    return bool(sep) and bool(mod) and name.isidentifier() and all(p.isidentifier() for p in mod.split("."))


def check_service_config(cfg: RobotServiceConfig) -> RobotServiceConfig:
    """Cross-field checks of a robot config; returns it unchanged or raises ConfigError naming the key."""
    b, c, p, r, s = cfg.backend, cfg.camera, cfg.planner, cfg.router, cfg.service
    if b.kind not in _BACKENDS and not is_import_path(b.kind):
        raise ConfigError(f"{_where(cfg, 'backend.kind')}: unknown backend {b.kind!r}; choose sim, zmq-bridge or a "
                          "Python class as 'package.module:Class'")
    if c.kind == "sim" and b.kind == "zmq-bridge":
        raise ConfigError(f"{_where(cfg, 'camera.kind')}: the zmq-bridge backend sends no images; choose opencv or "
                          "folder and give camera.calibration")
    if c.kind in ("opencv", "folder") and not c.calibration:
        raise ConfigError(f"{_where(cfg, 'camera.calibration')}: a {c.kind} camera needs a calibration file "
                          "(YAML/JSON with width, height, K, R, t) so plans can map pixels to the table")
    if c.kind == "folder" and not c.folder:
        raise ConfigError(f"{_where(cfg, 'camera.folder')}: camera.kind folder needs the folder of images")
    _check_planner(cfg, p, "planner")
    if p.kind == "expert" and not (b.kind == "sim" and b.sim.scenario_file):
        raise ConfigError(f"{_where(cfg, 'planner.kind')}: 'expert' plans from a scenario's goal: it needs "
                          "backend.kind sim with backend.sim.scenario_file")
    if r.mode in ("remote", "hedge") and not r.offload:
        raise ConfigError(f"{_where(cfg, 'router.mode')}: mode {r.mode!r} needs router.offload (the workstation's "
                          "offload server endpoint); use mode local or auto without a workstation")
    for key, value in (("router.deadline_ms", r.deadline_ms), ("router.heartbeat_ms", r.heartbeat_ms),
                       ("router.heartbeat_timeout_ms", r.heartbeat_timeout_ms)):
        if value <= 0:
            raise ConfigError(f"{_where(cfg, key)}: must be > 0, got {value}")
    if r.confidence_threshold is not None and not 0.0 <= r.confidence_threshold <= 1.0:
        raise ConfigError(f"{_where(cfg, 'router.confidence_threshold')}: must be in [0, 1], got "
                          f"{r.confidence_threshold}")
    if r.cache.size < 1 or not 0 <= r.cache.tolerance <= 255:
        raise ConfigError(f"{_where(cfg, 'router.cache')}: size must be >= 1 and tolerance in [0, 255]")
    for key, value in (("service.workers", s.workers), ("service.queue", s.queue), ("service.max_steps", s.max_steps)):
        if value < 1:
            raise ConfigError(f"{_where(cfg, key)}: must be >= 1, got {value}")
    _check_bind(cfg, "service.endpoint", s.endpoint)
    _check_bind(cfg, "service.events", s.events)
    return cfg


def check_offload_config(cfg: OffloadServerConfig) -> OffloadServerConfig:
    """Cross-field checks of a workstation config."""
    _check_planner(cfg, cfg.planner, "planner")
    if cfg.planner.kind == "expert":
        raise ConfigError(f"{_where(cfg, 'planner.kind')}: the expert needs the simulator's world; a workstation "
                          "serves model or import-path planners")
    for key, value in (("workers", cfg.workers), ("queue", cfg.queue)):
        if value < 1:
            raise ConfigError(f"{_where(cfg, key)}: must be >= 1, got {value}")
    _check_bind(cfg, "endpoint", cfg.endpoint)
    return cfg


def _check_planner(cfg, p: PlannerConfig, key: str) -> None:
    if p.kind not in _PLANNERS and not is_import_path(p.kind):
        raise ConfigError(f"{_where(cfg, key + '.kind')}: unknown planner {p.kind!r}; choose model, expert or a "
                          "Python class as 'package.module:Class'")
    if p.engine not in ("onnxruntime", "tensorrt"):
        raise ConfigError(f"{_where(cfg, key + '.engine')}: choose onnxruntime or tensorrt, got {p.engine!r}")
    if p.absent_below is not None and not 0.0 <= p.absent_below < 1.0:
        raise ConfigError(f"{_where(cfg, key + '.absent_below')}: a probability in [0, 1) (0 turns the check off), "
                          f"got {p.absent_below}")


def _check_bind(cfg, key: str, endpoint: str) -> None:
    from edgeagent.transport import is_loopback

    if not endpoint.startswith(("tcp://", "ipc://", "inproc://")):
        raise ConfigError(f"{_where(cfg, key)}: {endpoint!r} is not a ZeroMQ endpoint such as tcp://127.0.0.1:5555")
    if cfg.security.secret_key is None and not is_loopback(endpoint):
        raise ConfigError(f"{_where(cfg, key)}: {endpoint} is reachable from other machines but no keys are "
                          "configured; without CURVE the server binds to loopback only. Bind to 127.0.0.1, or set "
                          "security.secret_key and security.allow (make keys with `edgeagent keys generate`)")
    if cfg.security.secret_key is not None and not cfg.security.allow:
        raise ConfigError(f"{_where(cfg, 'security.allow')}: with security.secret_key set, list the public keys of "
                          "the clients allowed in (files, folders of *.key, or Z85 strings)")


def with_overrides(cfg, **changes: Any):
    """A copy of a config with dotted keys replaced (None: kept), checked again.

    ``with_overrides(cfg, **{"service.endpoint": "tcp://127.0.0.1:6000"})``
    """
    for dotted, value in changes.items():
        if value is None:
            continue
        cfg = _replace_path(cfg, dotted.split("."), value)
    check = check_service_config if isinstance(cfg, RobotServiceConfig) else check_offload_config
    return check(cfg)


def _replace_path(obj, parts: list[str], value: Any):
    if len(parts) == 1:
        return dataclasses.replace(obj, **{parts[0]: value})
    return dataclasses.replace(obj, **{parts[0]: _replace_path(getattr(obj, parts[0]), parts[1:], value)})
