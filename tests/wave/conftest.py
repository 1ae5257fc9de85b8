"""Fixtures of the WAVE tests (builders live in wave_helpers.py)."""

from __future__ import annotations

import pytest
from wave_helpers import dnad_app, dnad_profile

from jupiter.app.model import App
from jupiter.profile import Profile


@pytest.fixture
def dnad() -> tuple[App, Profile]:
    return dnad_app(), dnad_profile()
