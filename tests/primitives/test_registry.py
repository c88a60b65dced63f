"""Registry: registration rules, validation errors that say what is wrong, JSON Schema, narrowing."""

import enum
from typing import Annotated

import pytest

from edgeagent.errors import InvalidCall, PreconditionFailed, UnknownPrimitive
from edgeagent.primitives import Range, Registry, TablePoint, Workspace, registry
from edgeagent.types import Call


class Speed(enum.Enum):
    SLOW = "slow"
    FAST = "fast"


@pytest.fixture
def reg():
    r = Registry()

    @r.primitive(requires=("empty",))
    def grab(arm, at: TablePoint, force_n: Annotated[float, Range(0.0, 20.0)], speed: Speed):
        """Grab something."""

    @r.primitive(requires=("holding",))
    def drop(arm, at: TablePoint):
        """Drop it."""

    return r


def test_standard_library_has_the_documented_primitives():
    assert {"pick", "place", "move_to", "push", "open_gripper", "close_gripper", "home"} <= set(registry.names())
    assert registry.get("push").point_params == ("start", "end")


def test_duplicate_registration_raises(reg):
    with pytest.raises(ValueError, match="already registered"):
        @reg.primitive
        def grab(arm, at: TablePoint):
            pass


def test_unannotated_or_unsupported_parameter_is_refused(reg):
    with pytest.raises(ValueError, match="needs a type annotation"):
        @reg.primitive
        def wave(arm, height):
            pass
    with pytest.raises(ValueError, match="unsupported type"):
        @reg.primitive
        def wave2(arm, height: int):
            pass


def test_valid_call_is_normalised(reg):
    call = reg.validate(Call("grab", {"at": [0.1, -0.2], "force_n": 5, "speed": "fast"}))
    assert call.args["at"] == (0.1, -0.2) and isinstance(call.args["at"], TablePoint)
    assert call.args["force_n"] == 5.0 and call.args["speed"] == "fast"


@pytest.mark.parametrize("call, match", [
    (Call("fly", {}), "unknown primitive 'fly'"),
    (Call("grab", {"at": [0, 0], "force_n": 1, "speed": "slow", "extra": 1}), "unexpected argument 'extra'"),
    (Call("grab", {"at": [0, 0], "speed": "slow"}), "missing argument 'force_n'"),
    (Call("grab", {"at": [0.5, 0], "force_n": 1, "speed": "slow"}), r"grab.at: point \(0.500, 0.000\) is outside"),
    (Call("grab", {"at": [0, 0, 0], "force_n": 1, "speed": "slow"}), "grab.at: expected a table point"),
    (Call("grab", {"at": ["a", 0], "force_n": 1, "speed": "slow"}), "grab.at: expected a table point"),
    (Call("grab", {"at": [float("nan"), 0], "force_n": 1, "speed": "slow"}), "must be finite"),
    (Call("grab", {"at": [0, 0], "force_n": 25, "speed": "slow"}), r"grab.force_n: 25.0 is outside \[0.0, 20.0\]"),
    (Call("grab", {"at": [0, 0], "force_n": True, "speed": "slow"}), "grab.force_n: expected a number"),
    (Call("grab", {"at": [0, 0], "force_n": 1, "speed": "warp"}), "grab.speed: 'warp' is not one of slow, fast"),
])
def test_validation_errors_name_the_argument_and_the_problem(reg, call, match):
    with pytest.raises((InvalidCall, UnknownPrimitive), match=match):
        reg.validate(call)


def test_preconditions_checked_only_with_state(reg):
    drop = Call("drop", {"at": [0, 0]})
    reg.validate(drop)  # no state given: shape only
    with pytest.raises(PreconditionFailed, match="needs something in the gripper"):
        reg.validate(drop, holding=None, check_state=True)
    reg.validate(drop, holding="red block", check_state=True)
    with pytest.raises(PreconditionFailed, match=r"needs an empty gripper.*holding red block"):
        registry.validate(Call("pick", {"at": [0, 0]}), holding="red block", check_state=True)


def test_json_schema_describes_bounds_and_requirements(reg):
    schema = {s["name"]: s for s in reg.json_schema()}
    grab = schema["grab"]
    assert grab["parameters"]["required"] == ["at", "force_n", "speed"]
    assert grab["parameters"]["additionalProperties"] is False
    assert grab["parameters"]["properties"]["force_n"] == {"type": "number", "minimum": 0.0, "maximum": 20.0}
    assert grab["parameters"]["properties"]["speed"]["enum"] == ["slow", "fast"]
    assert grab["parameters"]["properties"]["at"]["prefixItems"][0]["maximum"] == 0.3
    assert grab["x-requires"] == ["empty"]
    assert grab["description"] == "Grab something."


def test_subset_narrows_and_refuses_widening(reg):
    small = reg.subset(["grab"], workspace=Workspace(-0.1, 0.1, -0.1, 0.1), bounds={"grab": {"force_n": (0, 5)}})
    assert small.names() == ["grab"]
    with pytest.raises(InvalidCall, match="outside the workspace"):
        small.validate(Call("grab", {"at": [0.2, 0], "force_n": 1, "speed": "slow"}))
    with pytest.raises(InvalidCall, match="outside"):
        small.validate(Call("grab", {"at": [0, 0], "force_n": 6, "speed": "slow"}))
    with pytest.raises(UnknownPrimitive):
        small.validate(Call("drop", {"at": [0, 0]}))
    with pytest.raises(ValueError, match="not inside"):
        reg.subset(workspace=Workspace(-1, 1, -1, 1))
    with pytest.raises(ValueError, match="must lie inside"):
        reg.subset(bounds={"grab": {"force_n": (0, 50)}})
