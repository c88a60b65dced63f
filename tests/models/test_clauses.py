"""A compound instruction is split into the single tasks the planner learned; a single task never is."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeagent.models.clauses import split
from edgeagent.sim.families import FAMILIES, generate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, parts", [
    ("put the red block in the blue bowl and the green block in the yellow bowl",
     ["put the red block in the blue bowl", "put the green block in the yellow bowl"]),
    ("put the red block in the blue bowl, then stack the green block on the cyan block",
     ["put the red block in the blue bowl", "stack the green block on the cyan block"]),
    ("Put the red block in the blue bowl. Then put the green one on the cyan block!",
     ["Put the red block in the blue bowl", "put the green one on the cyan block!"]),
    ("Move the yellow cube to the middle; after that, put the pink block into the brown bowl please.",
     ["Move the yellow cube to the middle", "put the pink block into the brown bowl please."]),
    ("First, put the red block in the bowl. Second, move the blue block to the right side.",
     ["put the red block in the bowl", "move the blue block to the right side."]),
    ("Place the blue block on top of the purple block, the brown cube in the top left corner and the gray one "
     "to the top right corner", ["Place the blue block on top of the purple block",
                                 "put the brown cube in the top left corner", "put the gray one to the top right corner"]),
    ("set the red block on the blue block and the green block on the yellow block",  # two separate stacks
     ["set the red block on the blue block", "put the green block on the yellow block"]),
    ("move the red and the green blocks to the top left corner",
     ["move the red block to the top left corner", "move the green block to the top left corner"]),
    ("Put both the red and the green cubes in the blue bowl",
     ["Put the red block in the blue bowl", "Put the green block in the blue bowl"]),
    ("put red in blue bowl and green in yellow bowl", ["put red in blue bowl", "put green in yellow bowl"]),
    ("Put the red block a little to the left of the blue bowl, then put the green block in the blue bowl",
     ["Put the red block a little to the left of the blue bowl", "put the green block in the blue bowl"]),
    ("Before you put the red block in the bowl, move the green block to the corner",  # the other first
     ["move the green block to the corner", "put the red block in the bowl"]),
    ("The red block goes in the blue bowl and the green block goes on the yellow block.",
     ["The red block goes in the blue bowl", "the green block goes on the yellow block."]),
    ("put the red, green and blue cubes into the pink bowl",
     ["put the red block into the pink bowl", "put the green block into the pink bowl",
      "put the blue block into the pink bowl"]),
])
def test_compound_instructions_become_their_tasks_in_order(text, parts):
    assert split(text) == parts


@pytest.mark.parametrize("text", [
    "pick up the red block and put it in the blue bowl",  # "it" refers back: one task
    "Grasp all of the cubes, then place them at the top-left corner.",
    "onto the yellow block, place the block on the near side of the green bowl, thank you.",  # destination first
    "In the bottom right corner of the table, put the red block, thanks.",
    "build a tower: the pink block on the bottom, the yellow block next, the blue cube on top",
    "put the pink block on the green block, then place the purple block on the pink block",  # one tower
    "stack the red block on the blue block and the green block on the red block",
    "line up the red, green and blue blocks horizontally",  # no destination to share
    "sort the red and green blocks into the bowls",
    "put the red block in the bowl and then put the green block on it",
    "please make a tower: brown on bottom, gray next, orange next, green on top",
    "move the block closest to the bowl to the left side, then put the red block on it",
])
def test_single_tasks_and_references_back_stay_whole(text):
    assert split(text) == [text]


def test_no_instruction_the_planner_was_trained_on_is_split():
    """The generator's phrasings are what the model learned whole: splitting one would change its input."""
    texts = [s["instruction"] for s in generate(list(FAMILIES), 200, 424_242)]
    for name in ("heldout.yaml", "heldout-phrasing.yaml"):
        texts += [s["instruction"] for s in yaml.safe_load((ROOT / "sim" / "scenarios" / name).read_text())]
    split_ones = [t for t in texts if len(split(t)) > 1]
    assert not split_ones, split_ones[:5]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_one_or_more_nonempty_parts(text):
    parts = split(text)
    assert parts and all(isinstance(p, str) for p in parts)
    assert len(parts) == 1 or all(p.strip() for p in parts)
