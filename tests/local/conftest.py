"""Fixtures of the local-target tests (helpers live in local_helpers.py).

The testbed tests need root with iproute2 and the cgroup v1 ``cpu`` controller; CI runs
as root, so a missing facility FAILS them (``netns_required``) instead of skipping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from local_helpers import Testbeds, require_netns


@pytest.fixture
def netns_required() -> None:
    require_netns()


@pytest.fixture
def testbeds(tmp_path: Path) -> Iterator[Testbeds]:
    tb = Testbeds(tmp_path)
    try:
        yield tb
    finally:
        tb.cleanup()
