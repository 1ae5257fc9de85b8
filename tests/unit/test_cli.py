"""The jupiter command wires every area's subcommands; each command names its owner."""

from __future__ import annotations

import argparse

from jupiter.cli import COMMAND_MODULES, COMMAND_OWNERS, build_parser


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_every_command_has_exactly_its_owner() -> None:
    full = _commands(build_parser())
    assert full == set(COMMAND_OWNERS)
    for command, owner in COMMAND_OWNERS.items():
        assert owner in COMMAND_MODULES
        assert command in _commands(build_parser((owner,)))
