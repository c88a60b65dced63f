"""The absent-object set (benchmarks/make_heldout_absent.py): the committed file is what the script
writes, and every instruction names, in place of the block to move, a colour no object of its scene has."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import make_heldout_absent  # noqa: E402

from edgeagent.sim.scenario import load_scenarios  # noqa: E402
from edgeagent.sim.world import COLORS  # noqa: E402

SET = ROOT / "sim" / "scenarios" / "heldout-absent.yaml"


def test_the_committed_set_is_what_the_script_writes(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    make_heldout_absent.main(["-o", str(tmp_path / "absent.yaml")])
    assert (tmp_path / "absent.yaml").read_bytes() == SET.read_bytes()


def test_each_instruction_names_a_block_colour_the_scene_lacks():
    scenarios = load_scenarios([SET])
    assert len(scenarios) >= 140
    for sc in scenarios:
        words = set(re.findall(r"[a-z]+", sc.instruction.lower()))
        colours = {c for c, _ in sc.scene.blocks} | {c for c, _ in sc.scene.bowls}
        mover = sc.goal.items[0].args[0].split()[0]
        assert mover not in words and words & (set(COLORS) - colours), sc.name
