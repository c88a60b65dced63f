"""Config loading: YAML into frozen dataclasses, errors naming the file and key."""

from dataclasses import dataclass

import pytest

from edgeagent.config import from_mapping, load
from edgeagent.errors import ConfigError
from edgeagent.robot_config import load_robot_config


@dataclass(frozen=True)
class Inner:
    rate_hz: float = 10.0


@dataclass(frozen=True)
class Outer:
    name: str = "robot"
    retries: int = 3
    inner: Inner = Inner()
    mode: str | None = None


def test_defaults_and_nested_values(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("name: arm\ninner: {rate_hz: 5}\n")
    cfg = load(Outer, f)
    assert cfg == Outer(name="arm", retries=3, inner=Inner(rate_hz=5.0))


@pytest.mark.parametrize("text, match", [
    ("nmae: x\n", r"c.yaml: unknown key 'nmae'; known keys: inner, mode, name, retries"),
    ("retries: many\n", r"c.yaml.retries: expected an integer, got 'many'"),
    ("inner: {rate_hz: fast}\n", r"c.yaml.inner.rate_hz: expected a number"),
    ("inner: {speed: 1}\n", r"c.yaml.inner: unknown key 'speed'"),
    ("- 1\n- 2\n", r"expected a mapping"),
    ("a: [1,\n", r"c.yaml: not valid YAML"),
])
def test_errors_name_file_and_key(tmp_path, text, match):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load(Outer, f)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(Outer, tmp_path / "nope.yaml")


def test_from_mapping_accepts_none_as_defaults():
    assert from_mapping(Outer, None, "x") == Outer()


def test_robot_config_narrows_primitives(tmp_path):
    f = tmp_path / "robot.yaml"
    f.write_text("primitives:\n  enabled: [pick, place]\n  workspace: [-0.2, 0.2, -0.2, 0.2]\n")
    reg = load_robot_config(f).registry(str(f))
    assert reg.names() == ["pick", "place"]
    assert reg.workspace.x_max == 0.2
    f.write_text("primitives:\n  enabled: [pick, teleport]\n")
    with pytest.raises(ConfigError, match="unknown primitive 'teleport'"):
        load_robot_config(f).registry(str(f))
