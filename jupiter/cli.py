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
    "jupiter.circe.commands",  # circe task|home, submit
    "jupiter.local.commands",  # testbed up|down|status, status
    "jupiter.report",  # report
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupiter", description="Dispersed-computing orchestrator (DRUPE, WAVE, CIRCE)."
    )
    parser.add_argument("--version", action="version", version=f"jupiter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # area not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
