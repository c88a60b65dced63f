"""On-policy data (DAgger): a policy drives the episode, the expert labels every state it reaches."""

import numpy as np
import pytest

from edgeagent.errors import ConfigError, ModelError
from edgeagent.models import dataset as ds
from edgeagent.models.runtime import default_model_dir
from edgeagent.primitives import TablePoint
from edgeagent.sim.families import generate
from edgeagent.types import Call, Plan

ASIDE = (-0.25, 0.0)


class PutAside:
    """A planner with one habit: it sets the block the instruction asks for down at ASIDE."""

    def __init__(self, world_of, color):
        self.world_of, self.color, self.requests = world_of, color, 0

    def plan(self, obs, instruction, *, deadline_ms=None):
        self.requests += 1
        if obs.holding is None:
            b = next(b for b in self.world_of().on_table_blocks() if b.color == self.color)
            call = Call("pick", {"at": TablePoint(b.x, b.y)})
        else:
            call = Call("place", {"at": TablePoint(*ASIDE)})
        return Plan([call], False, 1.0, "local", "put-aside")


class Done:
    def plan(self, obs, instruction, *, deadline_ms=None):
        return Plan([], True, 1.0, "local", "done")


@pytest.fixture
def calm(monkeypatch):
    """No failed grasps, knocks or slips: what happens is what the acting planner chose."""
    monkeypatch.setattr(ds, "FAILING_SHARE", 0.0)
    monkeypatch.setattr(ds, "KNOCK_P", 0.0)
    monkeypatch.setattr(ds, "SLIP_P", 0.0)


def _episode(planner, share, monkeypatch, built=None):
    item = generate(["pick-place-bowl"], 1, 3)[0]
    if built is not None:  # keep hold of the world the episode builds
        from edgeagent.sim.scenario import Scenario

        real = Scenario.build_world

        def build(self, **kw):
            built.append(real(self, **kw))
            return built[-1]

        monkeypatch.setattr(Scenario, "build_world", build)
    rec = ds._Recorder(96, 12, 4, 2, ds.primitive_table())
    ds.run_episode(item, 0, 5, rec, planner=planner, policy_share=share)
    return rec.arrays()


def test_the_policys_calls_are_executed_and_the_expert_labels_where_they_lead(calm, monkeypatch):
    built = []
    policy = PutAside(lambda: built[0], "brown")  # the block this scenario asks for
    rows = _episode(policy, 1.0, monkeypatch, built)
    pick = [p["name"] for p in ds.primitive_table()].index("pick") + 1
    # Step 0: the expert's plan from the start. Step 2: the policy has set the block aside, so the
    # expert's label is to pick it up from there.
    assert rows["step"][2] == 2 and rows["prims"][2, 0] == pick
    np.testing.assert_allclose(rows["points"][2, 0, 0], ASIDE, atol=0.01)
    assert policy.requests >= 2
    # The policy never finishes the task; the episode runs to its step limit, every state labelled.
    assert (rows["prims"][:, 0] != 0).all()


def test_a_policy_that_reports_done_early_leaves_the_expert_to_act(calm, monkeypatch):
    expert_only = _episode(None, 0.0, monkeypatch)
    with_done = _episode(Done(), 1.0, monkeypatch)
    for key in ("prims", "points", "step"):
        np.testing.assert_array_equal(with_done[key], expert_only[key])
    assert with_done["prims"][-1].tolist() == [0, 0, 0, 0]  # the expert finished the task


def test_generation_with_the_shipped_model_records_the_policy(tmp_path):
    model = default_model_dir("fp32")
    meta = ds.generate_dataset(tmp_path, families=["stack"], scenarios=2, seed=3, workers=1, progress=False,
                               policy=model, policy_share=1.0)
    assert meta["policy"]["model"] == str(model) and meta["policy"]["share"] == 1.0
    assert "100% of the episodes driven by edgeagent-planner" in meta["description"]
    data = ds.load_dataset(tmp_path)
    assert data["prims"].shape[0] == meta["samples"] > 2


def test_a_missing_policy_or_a_bad_share_is_refused_before_existing_data_is_touched(tmp_path):
    old = tmp_path / "d" / "meta.json"
    old.parent.mkdir()
    old.write_text("{}")
    with pytest.raises(ModelError, match=str(tmp_path / "nope")):
        ds.generate_dataset(tmp_path / "d", scenarios=1, workers=1, progress=False, policy=tmp_path / "nope")
    with pytest.raises(ConfigError, match="policy share 1.5"):
        ds.generate_dataset(tmp_path / "d", scenarios=1, workers=1, progress=False,
                            policy=default_model_dir("fp32"), policy_share=1.5)
    with pytest.raises(ConfigError, match="needs a policy"):
        ds.generate_dataset(tmp_path / "d", scenarios=1, workers=1, progress=False, policy_share=0.5)
    assert old.read_text() == "{}"


def test_train_refuses_a_policy_with_existing_data(tmp_path):
    from edgeagent.models.train import train

    with pytest.raises(ConfigError, match="cannot be combined with --data"):
        train(tmp_path / "run", data_dir=tmp_path / "data", policy=default_model_dir("fp32"))
