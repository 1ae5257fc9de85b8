"""Load an app folder: pick its definition file, parse it, validate the whole app.

``app.yaml`` (the bundle's format) is preferred when both it and Jupiter's
``configuration.txt`` exist; a warning says the other file is ignored. A folder with
neither is an error (so is Jupiter v4's ``app_config.yaml`` alone, which this bundle does
not read).
"""

from __future__ import annotations

import os
from pathlib import Path

from jupiter.app import legacy, yamlfmt
from jupiter.app.model import App
from jupiter.app.validate import AppDraft, validate
from jupiter.errors import InvalidInput, Problem


def inspect_app(path: str | os.PathLike[str]) -> tuple[App, list[Problem]]:
    """Load and validate the app in folder ``path``; return ``(app, warnings)``.

    Raises :class:`~jupiter.errors.InvalidInput` with every problem found.
    ``path`` may also name the definition file itself (``.../app.yaml`` or
    ``.../configuration.txt``).
    """
    shown = os.fspath(path)
    p = Path(shown)
    forced: str | None = None
    if p.is_file() and p.name in (yamlfmt.APP_FILE, legacy.CONFIG_FILE):
        forced = p.name
        p = p.parent
        shown = str(p)
    if not p.exists():
        raise InvalidInput(
            [
                Problem(
                    shown,
                    "app folder not found; give the folder holding app.yaml or configuration.txt",
                )
            ],
            what=f"app {shown}",
        )
    if not p.is_dir():
        raise InvalidInput(
            [Problem(shown, "not a folder; give the app folder (task_specific_files/<app>)")],
            what=f"app {shown}",
        )
    has_yaml = (p / yamlfmt.APP_FILE).is_file()
    has_legacy = (p / legacy.CONFIG_FILE).is_file()
    extra: list[Problem] = []
    draft: AppDraft
    if forced == legacy.CONFIG_FILE or (has_legacy and not has_yaml):
        draft = legacy.parse(p, shown)
    elif has_yaml:
        draft = yamlfmt.parse(p, shown)
        if has_legacy and forced is None:
            extra.append(
                Problem(
                    str(Path(shown) / legacy.CONFIG_FILE),
                    "app.yaml and configuration.txt both exist: app.yaml is used, "
                    "configuration.txt is ignored; remove one of them",
                    severity="warning",
                )
            )
    else:
        hint = ""
        if (p / "app_config.yaml").is_file():
            hint = (
                " (app_config.yaml of Jupiter v4 is not read by this bundle: write an "
                "app.yaml, see docs/app-format.md)"
            )
        raise InvalidInput(
            [
                Problem(
                    shown,
                    "no app definition: expected app.yaml or configuration.txt in this "
                    f"folder{hint}",
                )
            ],
            what=f"app {shown}",
        )
    draft.problems.extend(extra)
    return validate(draft)


def load_app(path: str | os.PathLike[str]) -> App:
    """The validated :class:`App` in folder ``path`` (raises InvalidInput)."""
    return inspect_app(path)[0]


__all__ = ["inspect_app", "load_app"]
