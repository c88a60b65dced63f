"""edgeagent: instruction + camera frame -> validated motion-primitive calls, in milliseconds."""

from edgeagent.camera import CameraModel
from edgeagent.errors import EdgeAgentError
from edgeagent.types import Call, Observation, Plan, Planner, Robot, StepResult

__version__ = "0.1.0"

__all__ = ["CameraModel", "Call", "EdgeAgentError", "Observation", "Plan", "Planner", "Robot", "StepResult",
           "__version__"]
