"""edgeagent: instruction + camera frame -> validated motion-primitive calls, in milliseconds."""

from edgeagent.camera import CameraModel
from edgeagent.errors import EdgeAgentError
from edgeagent.types import Call, Observation, Plan, Planner, Robot, StepResult

__version__ = "0.1.0"

__all__ = ["CameraModel", "Call", "Client", "EdgeAgentError", "Observation", "Plan", "Planner", "Robot", "StepResult",
           "__version__"]


def __getattr__(name: str):
    # The client pulls in pyzmq: imported on first use so `import edgeagent` stays light.
    if name == "Client":
        from edgeagent.client import Client

        return Client
    raise AttributeError(f"module 'edgeagent' has no attribute {name!r}")
