"""The inference-backend protocol and the engine name -> backend lookup.

A backend runs one static-shape model: ``provider`` names what runs it and ``run(feeds)`` maps input
name -> array to output name -> array. The model runtime does all pre- and post-processing, so any
backend here can sit under the same planner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from edgeagent.errors import ConfigError
from edgeagent.jetson.providers import OrtBackend, ProviderConfig
from edgeagent.jetson.trt_runner import TensorRTBackend


@runtime_checkable
class Backend(Protocol):
    """Anything that runs the model: ``provider`` and ``run(feeds) -> outputs``."""

    provider: str

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def _onnxruntime(path: str | Path, cfg: ProviderConfig | None) -> Backend:
    return OrtBackend(path, cfg)


def _tensorrt(path: str | Path, cfg: ProviderConfig | None) -> Backend:
    # The engine was built with its own precision and workspace settings; cfg does not apply.
    return TensorRTBackend(path)


#: Engine name (config key ``engine``) -> constructor taking (model or engine path, ProviderConfig).
ENGINES: dict[str, Callable[[str | Path, ProviderConfig | None], Backend]] = {
    "onnxruntime": _onnxruntime,
    "tensorrt": _tensorrt,
}


def make_backend(engine: str, path: str | Path, cfg: ProviderConfig | None = None) -> Backend:
    """The backend for ``engine`` ("onnxruntime": an .onnx file; "tensorrt": an engine file)."""
    try:
        build = ENGINES[engine]
    except KeyError:
        raise ConfigError(f"engine: unknown engine {engine!r}; choose one of {', '.join(ENGINES)}") from None
    return build(path, cfg)
