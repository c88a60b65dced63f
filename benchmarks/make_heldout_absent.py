"""Write the absent-object set: held-out pick-and-place tasks whose instruction names a block that is
not on the table.

A user may name an object the scene lacks ("put the orange block in the blue bowl" with no orange
block). The planner should refuse such an instruction, not carry it out on some other block. This
script takes the held-out pick-and-place scenarios (``sim/scenarios/heldout.yaml``, 50 per family),
keeps scene and goal, and replaces the colour of the block to move, wherever the instruction says it,
with a colour no block or bowl of the scene has. Scored by ``edgeagent eval``: an episode that ends
with status ``error`` (refused) is what is wanted; a "success" means the original block was moved
although another one was named.

    python benchmarks/make_heldout_absent.py -o sim/scenarios/heldout-absent.yaml
"""

from __future__ import annotations

import argparse
import re
import sys

import numpy as np
import yaml

from edgeagent.sim.scenario import _Loader, dump_scenarios
from edgeagent.sim.world import COLORS

SOURCE = "sim/scenarios/heldout.yaml"
FAMILIES = ("pick-place-block", "pick-place-bowl", "pick-place-place")
SEED = 41


def renamed(d: dict, rng: np.random.Generator) -> dict | None:
    """``d`` with the block to move named in a colour the scene lacks; None when the instruction does not
    say the block's colour as a word."""
    (_, (mover, _)), = d["goal"][0].items()
    color = mover.split()[0]
    pattern = re.compile(rf"\b{color}\b", re.IGNORECASE)
    if not pattern.search(d["instruction"]):
        return None
    scene = d["scene"]
    used = {b["color"] if isinstance(b, dict) else b for key in ("blocks", "bowls") for b in scene.get(key, [])}
    spare = [c for c in COLORS if c not in used]
    other = spare[int(rng.integers(len(spare)))]
    return dict(d, name=f"{d['name']}-absent", instruction=pattern.sub(other, d["instruction"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="sim/scenarios/heldout-absent.yaml")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(SEED)
    with open(SOURCE, encoding="utf-8") as f:
        source = yaml.load(f, Loader=_Loader)
    out = [r for r in (renamed(d, rng) for d in source if d.get("family") in FAMILIES) if r is not None]
    dump_scenarios(out, args.out)
    print(f"wrote {len(out)} scenarios to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
