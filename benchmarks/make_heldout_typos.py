"""Write the typo set: held-out scenarios whose instruction has one word mistyped.

Typed instructions carry typos: a letter dropped, doubled or changed, or two neighbours swapped
("put the yelow block in the bowl", "stakc all the blocks"). This script takes the held-out scenarios
(``sim/scenarios/heldout.yaml``, 10 per family by default), keeps scene and goal, and mistypes one word of
4 or more letters in each instruction, drawn at random. Training never reads this file.

    python benchmarks/make_heldout_typos.py -o sim/scenarios/heldout-typos.yaml
"""

from __future__ import annotations

import argparse
import re
import string
import sys

import numpy as np
import yaml

from edgeagent.sim.scenario import dump_scenarios

SOURCE = "sim/scenarios/heldout.yaml"
SEED = 31


def mistype(word: str, rng: np.random.Generator) -> str:
    """``word`` with one typo: a letter dropped, doubled, changed, or two neighbours swapped."""
    i = int(rng.integers(1, len(word)))  # people rarely mistype the first letter
    kind = ("drop", "double", "change", "swap")[int(rng.integers(4))]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "change":
        others = [c for c in string.ascii_lowercase if c != word[i].lower()]
        c = others[int(rng.integers(len(others)))]
        return word[:i] + (c.upper() if word[i].isupper() else c) + word[i + 1:]
    i = min(i, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", default="sim/scenarios/heldout-typos.yaml")
    ap.add_argument("--per-family", type=int, default=10)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(SEED)
    out, kept = [], {}
    with open(SOURCE, encoding="utf-8") as f:
        source = yaml.safe_load(f)
    for d in source:
        if kept.get(d["family"], 0) >= args.per_family:
            continue
        words = [m for m in re.finditer(r"[A-Za-z]{4,}", d["instruction"])]
        if not words:
            continue
        m = words[int(rng.integers(len(words)))]
        typo = mistype(m.group(), rng)
        text = d["instruction"][:m.start()] + typo + d["instruction"][m.end():]
        d = dict(d, name=f"{d['name']}-typo", instruction=text)
        out.append(d)
        kept[d["family"]] = kept.get(d["family"], 0) + 1
    dump_scenarios(out, args.out)
    print(f"wrote {len(out)} scenarios to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
