"""The third unseen-phrasing set (benchmarks/make_heldout_phrasing_c.py): the committed file is what
the script writes, and only the words differ from the generator's tasks, so what it measures is the
wording alone."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_heldout_phrasing_c import OUT, POOL, SEED, family_scenarios  # noqa: E402

from edgeagent.sim.families import FAMILIES, generate  # noqa: E402
from edgeagent.sim.scenario import _Loader  # noqa: E402


def test_the_committed_set_is_what_the_script_writes_and_keeps_the_generated_tasks():
    committed = yaml.load((ROOT / OUT).read_text(), Loader=_Loader)  # "on:" is a key, not a boolean
    assert len(committed) == 10 * len(FAMILIES)
    for family in FAMILIES:
        mine = [d for d in committed if d["family"] == family]
        written = family_scenarios(family)
        assert [d["instruction"] for d in mine] == [d["instruction"] for d in written]
        pool = generate([family], POOL, SEED)
        for d in mine:
            twin = next(g for g in pool if g["scene"] == {"bowls": [], **d["scene"]})  # the file omits no bowls
            assert (d["goal"], d.get("max_steps")) == (twin["goal"], twin.get("max_steps"))
            assert d["instruction"] != twin["instruction"]
