"""Fixtures of the Kubernetes tests: a fake API server on loopback and a kubeconfig for it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent / "charts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from k8s_fakeapi import FakeKube  # noqa: E402


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    fake = FakeKube()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def kubeconfig(fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig for the fake API, made the standard one ($KUBECONFIG)."""
    path = fake_kube.kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("HOME", str(tmp_path))
    return path
