"""Errors and problem reports shared by every part of the bundle.

A :class:`Problem` names where something is wrong (file, line, field) and what to do
about it. Validators collect every problem they find and raise :class:`InvalidInput` once,
so a user sees all of them in one run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) in user input."""

    file: str
    message: str
    line: int | None = None
    field: str | None = None
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f" [{self.field}]"
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}: {prefix}{self.message}"

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "severity": self.severity,
            "message": self.message,
        }


class JupiterError(Exception):
    """Base class for errors the bundle reports to users."""


class InvalidInput(JupiterError):
    """User input (app, inventory, profile, request) is invalid; carries every problem."""

    def __init__(self, problems: Iterable[Problem], what: str = "input") -> None:
        self.problems = [p for p in problems if p.severity == "error"]
        self.warnings = [p for p in problems if p.severity == "warning"]
        self.what = what
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {what} ({len(self.problems)} problem(s)):\n{lines}")
