"""The ``edgeagent`` command line.

Each sub-command lives in ``edgeagent/commands/<module>.py`` and provides ``add_parser(subparsers)``,
which adds its parser and sets ``func`` to a function ``(args) -> int``. Command modules keep their
top-level imports light (heavy imports go inside the function) so ``edgeagent --help`` stays fast.
Exit status: 0 on success, 2 on unusable input (an EdgeAgentError), 1 on anything unexpected.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from edgeagent.errors import EdgeAgentError

#: Command modules, in the order ``--help`` lists them. A module missing here is simply not offered.
COMMAND_MODULES = ("demo", "eval", "primitives", "scenarios", "model", "serve", "client", "offload_server",
                   "keys", "jetson", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeagent", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edgeagent {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"edgeagent.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"edgeagent.commands.{name}":
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgeAgentError as exc:
        print(f"edgeagent {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgeagent {args.command}: interrupted", file=sys.stderr)
        return 130


def _version() -> str:
    from edgeagent import __version__

    return __version__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
