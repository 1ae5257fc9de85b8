"""The ``jupiter`` command.

Each area of the bundle owns its subcommands in a ``commands`` module that exposes
``register(subparsers) -> None``; every parser it adds sets ``func`` to a callable taking
the parsed ``argparse.Namespace`` and returning an exit code. This file only wires them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from jupiter import __version__
from jupiter.errors import JupiterError

COMMAND_MODULES = (
    "jupiter.app.commands",  # validate, import-nodes
    "jupiter.wave.commands",  # schedule, wave serve
    "jupiter.drupe.commands",  # drupe agent|home|exec
    "jupiter.circe.commands",  # circe task|home|reference, submit
    "jupiter.local.commands",  # testbed up|down|status, local exec|programs, status
    "jupiter.report",  # report
)
# Which module owns each top-level command: a long-running component (one process per task
# on a node with a small CPU share) then imports only its own area, not every area's.
COMMAND_OWNERS = {
    "validate": "jupiter.app.commands",
    "import-nodes": "jupiter.app.commands",
    "schedule": "jupiter.wave.commands",
    "wave": "jupiter.wave.commands",
    "drupe": "jupiter.drupe.commands",
    "circe": "jupiter.circe.commands",
    "submit": "jupiter.circe.commands",
    "testbed": "jupiter.local.commands",
    "local": "jupiter.local.commands",
    "status": "jupiter.local.commands",
    "report": "jupiter.report",
}


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupiter", description="Dispersed-computing orchestrator (DRUPE, WAVE, CIRCE)."
    )
    parser.add_argument("--version", action="version", version=f"jupiter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # area not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    owner = COMMAND_OWNERS.get(argv[0]) if argv else None
    parser = build_parser((owner,) if owner else COMMAND_MODULES)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except JupiterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
