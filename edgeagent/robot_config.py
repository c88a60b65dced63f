"""The robot's YAML config: which primitives it enables and how far its workspace reaches.

Other sections (backend, camera, planner, service) are added by the parts that read them; every
section is a frozen dataclass and unknown keys are errors naming the file and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeagent.config import from_mapping, read_yaml
from edgeagent.errors import ConfigError


@dataclass(frozen=True)
class PrimitivesConfig:
    # Primitive names the robot may run; empty = every registered one.
    enabled: tuple[str, ...] = ()
    # Reachable rectangle [x_min, x_max, y_min, y_max] in metres; must lie inside the default workspace.
    workspace: tuple[float, ...] = ()

    def registry(self, where: str = "config"):
        from edgeagent.primitives import Workspace, registry

        unknown = [n for n in self.enabled if n not in registry]
        if unknown:
            raise ConfigError(f"{where}: primitives.enabled names unknown primitive {unknown[0]!r}; "
                              f"registered: {', '.join(registry.names())}")
        ws = None
        if self.workspace:
            if len(self.workspace) != 4:
                raise ConfigError(f"{where}: primitives.workspace must be [x_min, x_max, y_min, y_max]")
            ws = Workspace(*self.workspace)
        try:
            return registry.subset(self.enabled or None, workspace=ws)
        except ValueError as exc:
            raise ConfigError(f"{where}: primitives: {exc}") from exc


def load_robot_config(path: str | Path) -> PrimitivesConfig:
    """The `primitives` section of a robot config file."""
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return from_mapping(PrimitivesConfig, data.get("primitives"), f"{path}: primitives")
