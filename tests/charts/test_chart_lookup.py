"""What the charts keep across upgrades, through Helm's real ``lookup``.

``helm template --dry-run=server`` renders with lookups answered by a fake Kubernetes API
on loopback (tests/k8s/k8s_fakeapi.py: real HTTP, in-memory objects). This exercises the
templates' lookup paths and Helm's client; it is not a cluster (see docs/kubernetes.md).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from charts_helpers import by_kind, deployment_values, template, values_for
from k8s_fakeapi import FakeKube


@pytest.fixture(scope="module")
def values() -> dict:
    return deployment_values("diamond")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeKube, dict[str, str]]]:
    fake = FakeKube()
    fake.start()
    kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig", namespace="jupiter")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}
    try:
        yield fake, env
    finally:
        fake.stop()


def _server_render(values: dict, env: dict[str, str]) -> list[dict]:
    return template("drupe", values_for(values, "drupe"), extra=("--dry-run=server",), env=env)


def _token(objects: list[dict]) -> str:
    return base64.b64decode(by_kind(objects, "Secret")["jupiter-token"]["data"]["token"]).decode()


def test_existing_token_is_kept(cluster, values: dict) -> None:
    fake, env = cluster
    kept = base64.b64encode(b"token-from-the-first-install").decode()
    fake.put({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "jupiter-token", "namespace": "jupiter"},
              "data": {"token": kept}})
    assert _token(_server_render(values, env)) == "token-from-the-first-install"
    assert "GET /api/v1/namespaces/jupiter/secrets/jupiter-token" in " ".join(
        r.split("?")[0] for r in fake.requests)


def test_without_a_secret_a_random_token_is_generated(cluster, values: dict) -> None:
    _, env = cluster
    first, second = _token(_server_render(values, env)), _token(_server_render(values, env))
    assert len(first) == 48 and first.isalnum()
    assert first != second


def test_explicit_token_value_wins(cluster, values: dict) -> None:
    fake, env = cluster
    fake.put({"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": "jupiter-token", "namespace": "jupiter"},
              "data": {"token": base64.b64encode(b"old").decode()}})
    vals = values_for(values, "drupe", token={"create": True, "value": "given"})
    objects = template("drupe", vals, extra=("--dry-run=server",), env=env)
    assert _token(objects) == "given"


def test_measured_profile_survives_an_upgrade(cluster, values: dict) -> None:
    fake, env = cluster
    measured = {"schema": "jupiter.profile/v1", "complete": True, "nodes": {}, "links": {},
                "exec": {}, "generated_at": 1.0}
    fake.put({"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "jupiter-drupe-profile", "namespace": "jupiter"},
              "data": {"profile.json": json.dumps(measured)}})
    cm = by_kind(_server_render(values, env), "ConfigMap")["jupiter-drupe-profile"]
    assert json.loads(cm["data"]["profile.json"]) == measured


def test_offline_render_starts_with_an_empty_profile(values: dict) -> None:
    cm = by_kind(template("drupe", values_for(values, "drupe")), "ConfigMap")
    profile = json.loads(cm["jupiter-drupe-profile"]["data"]["profile.json"])
    assert profile == {"schema": "jupiter.profile/v1", "complete": False, "nodes": {},
                       "links": {}, "exec": {}}
