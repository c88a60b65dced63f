"""Motion primitives: the registry, argument types and the standard library.

``registry`` is the standard library's registry; a robot config narrows it with ``registry.subset``.
"""

from edgeagent.primitives.argtypes import Range, TablePoint, Workspace
from edgeagent.primitives.library import HOME, SAFE_Z, Arm, standard
from edgeagent.primitives.registry import Param, Primitive, Registry

registry = standard

__all__ = ["Arm", "HOME", "Param", "Primitive", "Range", "Registry", "SAFE_Z", "TablePoint", "Workspace", "registry"]
