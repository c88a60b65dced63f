"""Every error edgeagent raises on purpose.

Hierarchy::

    EdgeAgentError
    ├── ConfigError              a config file or value is wrong (names the file and key)
    ├── ScenarioError            a scenario file is wrong (names the file, scenario and field)
    ├── CallError                a primitive call cannot be run
    │   ├── UnknownPrimitive     the name is not registered / not enabled
    │   ├── InvalidCall          wrong argument names, types or bounds
    │   └── PreconditionFailed   e.g. ``place`` while nothing is held
    ├── SafetyLimit              a call would leave the robot's configured limits
    ├── ModelError               a planner file cannot be used
    │   └── ContractMismatch     manifest vs registry / hash / shapes disagree
    ├── DependencyMissing        an optional dependency (tensorrt, torch, CUDA) is absent
    ├── ProtocolError            a wire message is malformed (carries a code for the reply)
    ├── OffloadError             the workstation planner could not answer usefully
    │   └── OffloadTimeout       ... in time
    ├── ServiceError             the robot service answered a request with an error reply (code, request id)
    │   └── ServiceTimeout       ... or did not answer in time
    └── Cancelled                a run was cancelled

Every message says what was wrong, where (file, field, request id) and what to do.
"""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Base of every error raised by edgeagent on purpose."""


class ConfigError(EdgeAgentError):
    """A configuration file or value is invalid."""


class ScenarioError(EdgeAgentError):
    """A scenario file or scenario is invalid."""


class CallError(EdgeAgentError):
    """A primitive call cannot be executed."""


class UnknownPrimitive(CallError):
    """The call names a primitive that is not registered or not enabled."""


class InvalidCall(CallError):
    """The call's arguments have wrong names, types or values."""


class PreconditionFailed(CallError):
    """A declared precondition of the primitive does not hold."""


class SafetyLimit(EdgeAgentError):
    """The call would take the robot outside its configured limits."""


class ModelError(EdgeAgentError):
    """A planner model file cannot be loaded or run."""


class ContractMismatch(ModelError):
    """The model's manifest disagrees with the registry, its file or its shapes."""


class InstructionError(EdgeAgentError):
    """The instruction names nothing the planner can act on (no block, bowl, colour or place it knows)."""


class DependencyMissing(EdgeAgentError):
    """An optional dependency is not installed; the message says how to install it."""


class ProtocolError(EdgeAgentError):
    """A wire-protocol message is malformed. ``code`` goes into the error reply."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class OffloadError(EdgeAgentError):
    """The workstation planner failed, answered garbage or answered an invalid plan."""


class OffloadTimeout(OffloadError):
    """The workstation planner did not answer within the deadline."""


class ServiceError(EdgeAgentError):
    """A service answered with an error reply; ``code`` and ``request_id`` come from the reply."""

    def __init__(self, code: str, message: str, request_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.request_id = request_id


class ServiceTimeout(ServiceError):
    """No reply within the timeout (server down, unreachable, or a CURVE key it refuses)."""

    def __init__(self, message: str, request_id: str | None = None):
        super().__init__("timeout", message, request_id)


class Cancelled(EdgeAgentError):
    """The run was cancelled."""
