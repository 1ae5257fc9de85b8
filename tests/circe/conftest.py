"""Fixtures for the CIRCE tests: real task/home processes on loopback ports."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupiter.app.model import App
from jupiter.circe.devrun import LocalPipeline

sys.path.insert(0, str(Path(__file__).parent))  # circe_apps, the test apps


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Any]:
    """launch(app, options=None) -> a started LocalPipeline, stopped after the test."""
    started: list[LocalPipeline] = []

    def _launch(app: App, options: dict[str, Any] | None = None, *, app_dir: Path | None = None,
                start: bool = True, name: str = "state") -> LocalPipeline:
        p = LocalPipeline(app, app_dir or Path(app.root), tmp_path / name, options=options)
        started.append(p)
        if start:
            p.start()
        return p

    yield _launch
    for p in started:
        p.stop()
