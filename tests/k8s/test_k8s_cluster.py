"""Namespace, readiness waits and the DRUPE profile through the kubernetes client, against
the fake API on loopback (real HTTP). Waits use a virtual clock: no real sleeping; state
changes are driven by how many times the API is polled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from k8s_fakeapi import FakeKube
from k8s_objects import NS, daemonset, deployment, event, pod

from jupiter.k8s import cluster, kubeconfig

TASK = {"app.kubernetes.io/instance": "jupiter-circe", "jupiter.io/task": "tokenize"}
SELECTOR = "app.kubernetes.io/instance=jupiter-circe"


class Clock:
    """Virtual time: sleep() advances now()."""

    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@pytest.fixture
def api(fake_kube: FakeKube, kubeconfig: Path) -> cluster.Api:
    return cluster.Api(kubeconfig_client())


def kubeconfig_client():
    return kubeconfig.api_client(kubeconfig.resolve())


# ---- namespace ------------------------------------------------------------------------

def test_namespace_created_with_marker_then_reused(api: cluster.Api, fake_kube: FakeKube) -> None:
    first = cluster.ensure_namespace(api, "jupiter", "jupiter")
    assert first["changed"] and first["created"] and first["owned"]
    ns = fake_kube.get("namespaces", "", "jupiter")
    assert ns["metadata"]["annotations"][cluster.CREATED_BY] == "jupiter"
    assert ns["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "jupiter"
    again = cluster.ensure_namespace(api, "jupiter", "jupiter")
    assert not again["changed"] and again["owned"]


def test_namespace_check_mode_creates_nothing(api: cluster.Api, fake_kube: FakeKube) -> None:
    result = cluster.ensure_namespace(api, "jupiter", "jupiter", check_mode=True)
    assert result["changed"] and fake_kube.get("namespaces", "", "jupiter") is None


def test_foreign_namespace_is_used_but_never_deleted(api: cluster.Api,
                                                      fake_kube: FakeKube) -> None:
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shared"},
                   "status": {"phase": "Active"}})
    assert not cluster.ensure_namespace(api, "shared", "jupiter")["owned"]
    result = cluster.remove_namespace(api, "shared", "jupiter")
    assert not result["changed"] and "left in place" in result["msg"]
    assert fake_kube.get("namespaces", "", "shared") is not None


def test_owned_namespace_is_deleted_and_waited_for(api: cluster.Api,
                                                   fake_kube: FakeKube) -> None:
    cluster.ensure_namespace(api, "jupiter", "jupiter")
    fake_kube.terminate_after_gets = 3  # Terminating for three reads, then gone
    clock = Clock()
    result = cluster.remove_namespace(api, "jupiter", "jupiter", now=clock.now,
                                      sleep=clock.sleep)
    assert result["deleted"] and fake_kube.get("namespaces", "", "jupiter") is None
    assert len(clock.slept) == 3


def test_namespace_stuck_terminating_times_out(api: cluster.Api, fake_kube: FakeKube) -> None:
    cluster.ensure_namespace(api, "jupiter", "jupiter")
    fake_kube.terminate_after_gets = 10_000
    clock = Clock()
    with pytest.raises(cluster.NotReadyError, match="still terminating after 30s"):
        cluster.remove_namespace(api, "jupiter", "jupiter", timeout_s=30, now=clock.now,
                                 sleep=clock.sleep)
    with pytest.raises(cluster.ClusterError, match="still being deleted"):
        cluster.ensure_namespace(api, "jupiter", "jupiter")


# ---- readiness ------------------------------------------------------------------------

def test_wait_returns_once_the_pods_become_ready(api: cluster.Api, fake_kube: FakeKube) -> None:
    fake_kube.put(deployment("tokenize", ready=0))
    fake_kube.put(pod("tokenize-1", TASK, ready=False))
    polls = {"n": 0}

    def controller(fake: FakeKube) -> None:  # ready on the third poll
        polls["n"] += 1
        if polls["n"] == 3:
            fake.put(deployment("tokenize", ready=1))
            fake.put(pod("tokenize-1", TASK, ready=True))

    fake_kube.on_list["deployments"] = controller  # listed first in each poll
    clock = Clock()
    result = cluster.wait_ready(api, NS, SELECTOR, timeout_s=60, now=clock.now,
                                sleep=clock.sleep)
    assert result.done and polls["n"] == 3 and len(clock.slept) == 2


def test_timeout_names_the_pod_the_reason_and_its_events(api: cluster.Api,
                                                         fake_kube: FakeKube) -> None:
    fake_kube.put(deployment("tokenize", ready=0))
    fake_kube.put(pod("tokenize-1", TASK, ready=False, phase="Pending",
                      waiting=("ImagePullBackOff", 'Back-off pulling image "reg/app:1"')))
    fake_kube.put(event("Pod", "tokenize-1", "Failed",
                        'Failed to pull image "reg/app:1": not found', "2025-01-01T00:00:02Z",
                        count=4))
    fake_kube.put(event("Pod", "other-pod", "Failed", "unrelated", "2025-01-01T00:00:03Z"))
    clock = Clock()
    with pytest.raises(cluster.NotReadyError) as err:
        cluster.wait_ready(api, NS, SELECTOR, timeout_s=20, what="release jupiter-circe",
                           now=clock.now, sleep=clock.sleep)
    text = str(err.value)
    assert "release jupiter-circe in namespace jupiter not ready after 20s" in text
    assert "- Deployment tokenize: 0/1 replicas updated; 0/1 replicas ready" in text
    assert 'pod tokenize-1: container task waiting: ImagePullBackOff' in text
    assert 'Pod tokenize-1 event: Warning Failed: Failed to pull image "reg/app:1": not found ' \
           '(x4)' in text
    assert "unrelated" not in text
    assert clock.t >= 20


def test_fatal_state_fails_without_waiting(api: cluster.Api, fake_kube: FakeKube) -> None:
    fake_kube.put(deployment("tokenize", ready=0))
    fake_kube.put(pod("tokenize-1", TASK, ready=False,
                      waiting=("InvalidImageName", 'invalid reference "Reg/App"')))
    clock = Clock()
    with pytest.raises(cluster.NotReadyError, match="cannot become ready"):
        cluster.wait_ready(api, NS, SELECTOR, timeout_s=600, now=clock.now, sleep=clock.sleep)
    assert clock.slept == []


def test_daemonset_on_no_node_reports_its_hostname_and_events(api: cluster.Api,
                                                              fake_kube: FakeKube) -> None:
    fake_kube.put(daemonset("jupiter-drupe-agent-edge1", desired=0, ready=0,
                            hostname="edge-1"))
    clock = Clock()
    with pytest.raises(cluster.NotReadyError) as err:
        cluster.wait_ready(api, NS, "app.kubernetes.io/instance=jupiter-drupe", timeout_s=5,
                           now=clock.now, sleep=clock.sleep)
    assert "no schedulable node has kubernetes.io/hostname=edge-1" in str(err.value)
    assert any("fieldSelector=involvedObject.kind%3DDaemonSet" in r
               for r in fake_kube.requests)


def test_no_workloads_at_all(api: cluster.Api) -> None:
    clock = Clock()
    with pytest.raises(cluster.NotReadyError, match="no Deployment or DaemonSet with labels"):
        cluster.wait_ready(api, NS, SELECTOR, timeout_s=3, now=clock.now, sleep=clock.sleep)


def test_unreachable_api_is_a_cluster_error(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    fake = FakeKube()
    fake.url = "http://127.0.0.1:9"  # nothing listens on the discard port
    fake.kubeconfig(path)
    api = cluster.Api(kubeconfig.api_client(kubeconfig.resolve(str(path), None, env={})))
    with pytest.raises(cluster.ClusterError, match="cannot reach the Kubernetes API"):
        cluster.ensure_namespace(api, "jupiter", "jupiter")


# ---- profile --------------------------------------------------------------------------

def _profile(complete: bool, nodes: dict, links: dict) -> dict:
    return {"schema": "jupiter.profile/v1", "complete": complete, "generated_at": 1.0,
            "nodes": nodes, "links": links, "exec": {}}


LINK = {"latency_s": 0.001, "bandwidth_bps": 1e7, "quad_ms_kbit": [0, 0.1, 1], "samples": 8,
        "updated": 1.0}


def _cm(fake: FakeKube, data: dict | str) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    fake.put({"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "jupiter-drupe-profile", "namespace": NS},
              "data": {"profile.json": text}})


def test_read_profile(api: cluster.Api, fake_kube: FakeKube) -> None:
    assert cluster.read_profile(api, NS, "jupiter-drupe-profile") is None
    _cm(fake_kube, _profile(False, {}, {}))
    assert cluster.read_profile(api, NS, "jupiter-drupe-profile")["complete"] is False


def test_bad_profile_names_the_configmap_and_key(api: cluster.Api, fake_kube: FakeKube) -> None:
    _cm(fake_kube, {"schema": "something/v9"})
    with pytest.raises(cluster.ClusterError,
                       match=r"ConfigMap jupiter/jupiter-drupe-profile key 'profile\.json'"):
        cluster.read_profile(api, NS, "jupiter-drupe-profile")
    with pytest.raises(cluster.ClusterError, match="key 'other' is missing"):
        cluster.read_profile(api, NS, "jupiter-drupe-profile", key="other")


def test_wait_profile_until_complete(api: cluster.Api, fake_kube: FakeKube) -> None:
    _cm(fake_kube, _profile(False, {}, {}))
    reads = {"n": 0}

    def drupe_home(fake: FakeKube, ns: str, name: str) -> None:  # publishes on the 4th read
        reads["n"] += 1
        if reads["n"] == 4:
            _cm(fake, _profile(True, {"a": {}, "b": {}}, {"a": {"b": LINK}, "b": {"a": LINK}}))

    fake_kube.on_get["configmaps"] = drupe_home
    clock = Clock()
    profile = cluster.wait_profile(api, NS, "jupiter-drupe-profile", nodes=["a", "b"],
                                   timeout_s=300, now=clock.now, sleep=clock.sleep)
    assert profile["complete"] is True and reads["n"] == 4


def test_wait_profile_timeout_says_what_is_missing(api: cluster.Api,
                                                   fake_kube: FakeKube) -> None:
    _cm(fake_kube, _profile(False, {"a": {}, "b": {}}, {"a": {"b": LINK}}))
    clock = Clock()
    with pytest.raises(cluster.NotReadyError) as err:
        cluster.wait_profile(api, NS, "jupiter-drupe-profile", nodes=["a", "b", "c"],
                             timeout_s=60, now=clock.now, sleep=clock.sleep)
    text = str(err.value)
    assert "not complete after 60s" in text
    assert "nodes 2/3 (missing c)" in text and "links 1/6" in text and "b->a" in text
