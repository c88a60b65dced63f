"""Service and workstation configs: the examples load, and every mistake names the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeagent.errors import ConfigError
from edgeagent.service_config import (load_offload_config, load_service_config, resolve, with_overrides)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_examples_load():
    robot = load_service_config(EXAMPLES / "robot.yaml")
    assert robot.backend.kind == "sim" and robot.service.endpoint == "tcp://127.0.0.1:5555"
    assert robot.service.events == "tcp://127.0.0.1:5556" and robot.router.offload == "tcp://127.0.0.1:5557"
    ws = load_offload_config(EXAMPLES / "workstation.yaml")
    assert ws.endpoint == "tcp://127.0.0.1:5557"


def test_defaults_follow_the_design():
    cfg = load_service_config(None)
    assert (cfg.service.endpoint, cfg.service.events) == ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556")
    assert cfg.router.mode == "auto" and cfg.router.offload is None and cfg.camera.kind == "sim"
    assert load_offload_config(None).endpoint == "tcp://127.0.0.1:5557"
    assert cfg.planner.absent_below is None  # the model manifest's


@pytest.mark.parametrize("text, match", [
    ("backend: {kind: sim, speed: 3}\n", r"robot.yaml.backend: unknown key 'speed'"),
    ("routr: {mode: local}\n", r"robot.yaml: unknown key 'routr'"),
    ("router: {mode: fastest}\n", r"robot.yaml.router.mode: must be one of 'local', 'remote', 'auto', 'hedge'"),
    ("router: {deadline_ms: soon}\n", r"robot.yaml.router.deadline_ms: expected a number"),
    ("router: {deadline_ms: -5}\n", r"robot.yaml: router.deadline_ms: must be > 0"),
    ("router: {mode: remote}\n", r"robot.yaml: router.mode: mode 'remote' needs router.offload"),
    ("router: {confidence_threshold: 1.5}\n", r"router.confidence_threshold: must be in \[0, 1\]"),
    ("backend: {kind: robot}\n", r"robot.yaml: backend.kind: unknown backend 'robot'"),
    ("backend: {kind: zmq-bridge}\n", r"robot.yaml: camera.kind: the zmq-bridge backend sends no images"),
    ("camera: {kind: folder, folder: x}\n", r"robot.yaml: camera.calibration: a folder camera needs a calibration"),
    ("camera: {kind: webcam}\n", r"robot.yaml.camera.kind: must be one of 'sim', 'opencv', 'folder'"),
    ("planner: {kind: expert}\n", r"robot.yaml: planner.kind: 'expert' plans from a scenario's goal"),
    ("planner: {kind: 'my planner'}\n", r"robot.yaml: planner.kind: unknown planner 'my planner'"),
    ("planner: {providers: {order: [gpu]}}\n", r"robot.yaml.planner.providers: order: unknown provider 'gpu'"),
    ("planner: {absent_below: 5}\n", r"robot.yaml: planner.absent_below: a probability in \[0, 1\)"),
    ("service: {endpoint: 'tcp://0.0.0.0:5555'}\n", r"robot.yaml: service.endpoint: tcp://0.0.0.0:5555 is reachable "
                                                    r"from other machines but no keys are configured"),
    ("service: {events: '5556'}\n", r"robot.yaml: service.events: '5556' is not a ZeroMQ endpoint"),
    ("service: {workers: 0}\n", r"robot.yaml: service.workers: must be >= 1"),
    ("security: {secret_key: robot.key_secret}\n", r"robot.yaml: security.allow: with security.secret_key set"),
    ("primitives: {enabled: [fly]}\n", None),  # checked when the registry is built (robot_config)
])
def test_mistakes_name_the_file_and_key(tmp_path, text, match):
    f = tmp_path / "robot.yaml"
    f.write_text(text)
    if match is None:
        cfg = load_service_config(f)
        with pytest.raises(ConfigError, match=r"robot.yaml: primitives.enabled names unknown primitive 'fly'"):
            cfg.primitives.registry(str(f))
        return
    with pytest.raises(ConfigError, match=match):
        load_service_config(f)


def test_workstation_mistakes(tmp_path):
    f = tmp_path / "ws.yaml"
    f.write_text("planner: {kind: expert}\n")
    with pytest.raises(ConfigError, match=r"ws.yaml: planner.kind: the expert needs the simulator"):
        load_offload_config(f)
    f.write_text("endpoint: tcp://192.168.1.5:5557\n")
    with pytest.raises(ConfigError, match=r"ws.yaml: endpoint: .* no keys are configured"):
        load_offload_config(f)
    f.write_text("endpoint: tcp://192.168.1.5:5557\nsecurity: {secret_key: ws.key_secret, allow: [robots/]}\n")
    assert load_offload_config(f).security.allow == ("robots/",)


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "conf").mkdir()
    f = tmp_path / "conf" / "robot.yaml"
    f.write_text("planner: {model: models/tiny}\n")
    cfg = load_service_config(f)
    assert resolve(cfg, cfg.planner.model) == str(tmp_path / "conf" / "models" / "tiny")
    assert resolve(cfg, "/abs/path") == "/abs/path"


def test_overrides_are_checked_like_the_file():
    cfg = with_overrides(load_service_config(None), **{"service.endpoint": "tcp://127.0.0.1:6000", "router.mode": None})
    assert cfg.service.endpoint == "tcp://127.0.0.1:6000" and cfg.router.mode == "auto"
    with pytest.raises(ConfigError, match="no keys are configured"):
        with_overrides(cfg, **{"service.events": "tcp://*:6001"})
