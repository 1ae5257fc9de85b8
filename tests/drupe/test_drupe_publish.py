"""Publishers: atomic file, and the ConfigMap publisher against a FAKE CoreV1Api.

There is no Kubernetes API server here; :class:`FakeCoreV1Api` below is a test double that
stores ConfigMaps in a dict and answers like the real client (ApiException 404/403).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from jupiter.drupe.publish import (
    ConfigMapPublisher,
    FilePublisher,
    PublishError,
    make_publisher,
)

DOC = {"schema": "jupiter.profile/v1", "complete": True, "nodes": {}, "links": {}, "exec": {},
       "generated_at": 1.0}


class FakeCoreV1Api:
    """FAKE of kubernetes.client.CoreV1Api: only the ConfigMap calls the publisher uses."""

    def __init__(self, forbid: bool = False) -> None:
        self.store: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[str] = []
        self.forbid = forbid

    def _check(self) -> None:
        if self.forbid:
            raise ApiException(status=403, reason="Forbidden")

    def replace_namespaced_config_map(self, name: str, namespace: str, body: dict) -> dict:
        self.calls.append("replace")
        self._check()
        if (namespace, name) not in self.store:
            raise ApiException(status=404, reason="Not Found")
        self.store[(namespace, name)] = body
        return body

    def create_namespaced_config_map(self, namespace: str, body: dict) -> dict:
        self.calls.append("create")
        self._check()
        self.store[(namespace, body["metadata"]["name"])] = body
        return body

    def read_namespaced_config_map(self, name: str, namespace: str) -> dict:
        self._check()
        if (namespace, name) not in self.store:
            raise ApiException(status=404, reason="Not Found")
        return self.store[(namespace, name)]


def test_file_publisher_is_atomic_and_loadable(tmp_path: Path) -> None:
    pub = FilePublisher(tmp_path / "sub" / "profile.json")
    assert pub.load() is None
    pub.publish(DOC)
    pub.publish({**DOC, "complete": False})
    assert json.loads((tmp_path / "sub" / "profile.json").read_text())["complete"] is False
    assert os.listdir(tmp_path / "sub") == ["profile.json"]  # no temp files left
    assert pub.load()["complete"] is False


def test_file_publisher_error_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(PublishError, match=str(tmp_path / "f")):
        FilePublisher(tmp_path / "f" / "profile.json").publish(DOC)


def test_configmap_publisher_creates_then_replaces() -> None:
    api = FakeCoreV1Api()
    pub = make_publisher({"kind": "configmap", "name": "jupiter-drupe-profile",
                          "namespace": "jupiter"}, "/unused", api=api)
    assert isinstance(pub, ConfigMapPublisher)
    assert pub.load() is None
    pub.publish(DOC)
    pub.publish({**DOC, "complete": False})
    assert api.calls == ["replace", "create", "replace"]
    cm = api.store[("jupiter", "jupiter-drupe-profile")]
    assert cm["kind"] == "ConfigMap" and cm["metadata"]["labels"]["app.kubernetes.io/name"] == \
        "drupe"
    assert json.loads(cm["data"]["profile.json"])["complete"] is False
    assert pub.load()["complete"] is False
    assert pub.describe() == "configmap jupiter/jupiter-drupe-profile"


def test_configmap_publisher_explains_rbac_and_size() -> None:
    pub = ConfigMapPublisher("p", "ns", api=FakeCoreV1Api(forbid=True))
    with pytest.raises(PublishError, match="Role with get/create/update on configmaps"):
        pub.publish(DOC)
    big = {**DOC, "exec": {f"t{i}": {"n": {"seconds": 1.0, "output_bytes": 1}}
                           for i in range(40000)}}
    with pytest.raises(PublishError, match="ConfigMap limit"):
        ConfigMapPublisher("p", "ns", api=FakeCoreV1Api()).publish(big)


def test_configmap_outside_a_cluster_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(PublishError, match="not running in a cluster"):
        ConfigMapPublisher("p", "ns").publish(DOC)


async def test_home_publishes_a_complete_profile_into_the_configmap(tmp_path: Path) -> None:
    from drupe_helpers import Cluster, make_config, wait_until

    cfg, _ = make_config(tmp_path, ["home", "w1"], base_ip=140)
    api = FakeCoreV1Api()
    c = Cluster(cfg, publisher=ConfigMapPublisher("jupiter-drupe-profile", "jupiter", api=api))
    await c.start_home()
    try:
        for n in cfg.nodes:
            await c.start_agent(n)

        async def published_complete() -> bool:
            cm = api.store.get(("jupiter", "jupiter-drupe-profile"))
            return bool(cm) and json.loads(cm["data"]["profile.json"])["complete"] is True

        await wait_until(published_complete, 60, "complete profile in the ConfigMap", c.status)
        assert (await c.status())["publish"]["target"] == "configmap jupiter/jupiter-drupe-profile"
        assert not (tmp_path / "state" / "profile.json").exists()
    finally:
        await c.stop()


async def test_home_stop_waits_for_a_publish_in_flight(tmp_path: Path) -> None:
    """A publish runs in a thread; cancelling home must not return while it still writes."""
    import asyncio
    import threading

    from drupe_helpers import Cluster, make_config

    cfg, _ = make_config(tmp_path, ["home", "w1"], base_ip=146)
    entered, release = threading.Event(), threading.Event()

    class HeldPublisher(FilePublisher):
        hold = False

        def publish(self, doc: dict[str, Any]) -> None:
            if self.hold:
                entered.set()
                release.wait(10)
            super().publish(doc)

    pub = HeldPublisher(cfg.profile_path)
    c = Cluster(cfg, publisher=pub)
    await c.start_home()
    pub.hold = True
    c.home.dirty.set()  # the publish loop writes again, and is held inside the thread
    assert await asyncio.to_thread(entered.wait, 10)
    stopping = asyncio.create_task(c.stop())
    done, _ = await asyncio.wait({stopping}, timeout=0.2)
    assert not done, "stop returned while the profile was still being written"
    release.set()
    await stopping
    assert [p.name for p in cfg.profile_path.parent.iterdir() if p.suffix == ".tmp"] == []
    assert json.loads(cfg.profile_path.read_text())["schema"] == "jupiter.profile/v1"
