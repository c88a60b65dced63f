"""``edgeagent scenarios``: generate scenario files from the task families, list the families."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("scenarios", help="generate scenario files from task families")
    cmds = p.add_subparsers(dest="scenarios_command", metavar="ACTION", required=True)
    gen = cmds.add_parser("generate", help="write COUNT seeded scenarios per family to a YAML file (DESIGN §9)")
    gen.add_argument("--families", default="all",
                     help="comma-separated family names, or 'all' (default); see 'scenarios list-families'")
    gen.add_argument("--count", type=int, default=10, help="scenarios per family (default 10)")
    gen.add_argument("--seed", type=int, default=0, help="generator seed; same seed, same file (default 0)")
    gen.add_argument("--crowded", type=float, default=0.0, metavar="P",
                     help="share of the scenarios that name their objects (pick and place, offset, named stacks) "
                          "given more blocks and bowls around them, up to 7 and 4 (default 0; the families "
                          "draw at most 5 and 4)")
    gen.add_argument("--start-in-bowl", type=float, default=0.0, metavar="P",
                     help="share of the pick-and-place scenarios whose block to move starts inside another "
                          "bowl (default 0)")
    gen.add_argument("-o", "--output", required=True, metavar="FILE", help="scenario YAML file to write")
    gen.set_defaults(func=run_generate)
    lst = cmds.add_parser("list-families", help="print the task families and what each asks for")
    lst.set_defaults(func=run_list)


def _family_names(text: str) -> list[str] | None:
    names = [n.strip() for n in text.split(",") if n.strip()]
    return None if names in ([], ["all"]) else list(dict.fromkeys(names))


def run_generate(args) -> int:
    from edgeagent.sim.families import FAMILIES, generate
    from edgeagent.sim.scenario import dump_scenarios

    names = _family_names(args.families)
    items = generate(names, args.count, args.seed, in_bowl=args.start_in_bowl, crowded=args.crowded)
    dump_scenarios(items, args.output)
    used = names or list(FAMILIES)
    print(f"wrote {len(items)} scenarios ({len(used)} famil{'y' if len(used) == 1 else 'ies'} x {args.count}, "
          f"seed {args.seed}) to {args.output}")
    return 0


def run_list(args) -> int:
    from edgeagent.sim.families import FAMILIES

    width = max(map(len, FAMILIES))
    for name, fam in FAMILIES.items():
        print(f"{name:<{width}}  {fam.summary}")
    return 0
