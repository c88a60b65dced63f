"""``edgeagent primitives``: the registered primitives as JSON Schema."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("primitives", help="print the registered motion primitives as JSON Schema")
    p.add_argument("--config", help="robot config YAML whose `primitives` section narrows the set")
    p.set_defaults(func=run)


def run(args) -> int:
    from edgeagent.primitives import registry

    reg = registry
    if args.config:
        from edgeagent.robot_config import load_robot_config

        reg = load_robot_config(args.config).registry(args.config)
    print(json.dumps(reg.json_schema(), indent=2))
    return 0
