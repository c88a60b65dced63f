"""Running edgeagent on a Jetson: inference backends, TensorRT engines, cameras, board telemetry.

Modules (each importable on any machine; tensorrt, CUDA and GStreamer are needed only when used):

- ``providers``: ``ProviderConfig``, onnxruntime provider lists, ``create_session``, ``warm_up``,
  ``OrtBackend``.
- ``trt_runner``: ``TensorRTBackend`` running a serialized engine with cuda-python buffers.
- ``backends``: the ``Backend`` protocol and ``make_backend(engine, path, cfg)``.
- ``engine``: ``edgeagent jetson build-engine`` (argument checks, TensorRT build).
- ``camera``: GStreamer pipelines for CSI and USB cameras, ``open_camera``.
- ``telemetry``: tegrastats / nvpmodel / clock readers and ``BoardMonitor``.
- ``check``: what ``edgeagent jetson check`` reports.
"""

from edgeagent.jetson.backends import Backend, make_backend
from edgeagent.jetson.providers import OrtBackend, ProviderConfig, create_session, provider_list, warm_up
from edgeagent.jetson.trt_runner import TensorRTBackend

__all__ = ["Backend", "OrtBackend", "ProviderConfig", "TensorRTBackend", "create_session", "make_backend",
           "provider_list", "warm_up"]
