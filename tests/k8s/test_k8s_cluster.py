"""Namespace, readiness waits and the DRUPE profile through the kubernetes client, against
the fake API on loopback (real HTTP). Waits use a virtual clock: no real sleeping; state
changes are driven by how many times the API is polled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from k8s_fakeapi import FakeKube
from k8s_objects import NS, daemonset, deployment, event, job, job_pod, pod

from jupiter.errors import JupiterError
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


# ---- Jobs -----------------------------------------------------------------------------

JOBS = "app.kubernetes.io/instance=jupiter-drupe,app.kubernetes.io/component=drupe-exec"
DONE = {"terminated": {"exitCode": 0, "reason": "Completed"}}


def test_wait_for_jobs_until_they_succeed(api: cluster.Api, fake_kube: FakeKube) -> None:
    fake_kube.put(job("exec-a", active=1))
    fake_kube.put(job("exec-b", succeeded=1))
    fake_kube.put(deployment("home", ready=0))  # another kind: not waited for here
    fake_kube.put(job_pod("exec-a-1", "exec-a", init={"running": {}}))
    polls = {"n": 0}

    def job_controller(fake: FakeKube) -> None:  # exec-a succeeds on the third poll
        polls["n"] += 1
        if polls["n"] == 3:
            fake.put(job("exec-a", succeeded=1))

    fake_kube.on_list["jobs"] = job_controller
    clock = Clock()
    result = cluster.wait_ready(api, NS, JOBS, kinds=["Job"], timeout_s=60, now=clock.now,
                                sleep=clock.sleep)
    assert result.ready == ["Job exec-a", "Job exec-b"] and polls["n"] == 3
    assert not any("/deployments" in r for r in fake_kube.requests)


def test_failed_job_fails_at_once_with_the_pods_last_log_lines(api: cluster.Api,
                                                               fake_kube: FakeKube) -> None:
    fake_kube.put(job("exec-a", failed=1, backoff_limit=0, condition=(
        "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")))
    fake_kube.put(job_pod("exec-a-1", "exec-a", phase="Failed", init=DONE, main={
        "terminated": {"exitCode": 1, "reason": "Error"}}))
    fake_kube.logs[(NS, "exec-a-1", "exec")] = "".join(
        f"line {i}\n" for i in range(30)) + "jupiter: error: task 'tokenize' raised KeyError\n"
    fake_kube.put(event("Pod", "exec-a-1", "BackOff", "back-off restarting",
                        "2025-01-01T00:00:01Z"))
    clock = Clock()
    with pytest.raises(cluster.NotReadyError) as err:
        cluster.wait_ready(api, NS, JOBS, kinds=["Job"], timeout_s=600, what="DRUPE exec",
                           log_lines=3, now=clock.now, sleep=clock.sleep)
    text = str(err.value)
    assert clock.slept == []
    assert "DRUPE exec in namespace jupiter cannot become ready" in text
    assert "Job exec-a: failed: BackoffLimitExceeded" in text
    assert "pod exec-a-1 (Failed): container exec terminated: Error (exit code 1)" in text
    assert "Pod exec-a-1 event: Warning BackOff: back-off restarting" in text
    assert "Pod exec-a-1 container exec, last log lines:\n        | line 28\n        | line 29\n" \
           "        | jupiter: error: task 'tokenize' raised KeyError" in text
    assert "line 27" not in text
    assert any("/pods/exec-a-1/log?" in r and "tailLines=3" in r for r in fake_kube.requests)


def test_missing_log_is_said_not_fatal_to_the_message(api: cluster.Api,
                                                       fake_kube: FakeKube) -> None:
    fake_kube.put(job("exec-a", failed=2, backoff_limit=1))
    fake_kube.put(job_pod("exec-a-1", "exec-a", phase="Failed", init={
        "terminated": {"exitCode": 1, "reason": "Error"}}))
    clock = Clock()
    with pytest.raises(cluster.NotReadyError) as err:
        cluster.wait_ready(api, NS, JOBS, kinds=["Job"], now=clock.now, sleep=clock.sleep)
    assert "Pod exec-a-1 container wait-home, last log lines: (none)" in str(err.value)


def test_no_jobs_is_fine_when_allowed(api: cluster.Api) -> None:
    clock = Clock()
    result = cluster.wait_ready(api, NS, JOBS, kinds=["Job"], allow_none=True, now=clock.now,
                                sleep=clock.sleep)
    assert result.workloads == 0 and clock.slept == []
    with pytest.raises(cluster.NotReadyError, match="no Job with labels"):
        cluster.wait_ready(api, NS, JOBS, kinds=["Job"], timeout_s=2, now=clock.now,
                           sleep=clock.sleep)


def test_unknown_kind_is_refused(api: cluster.Api) -> None:
    with pytest.raises(JupiterError, match="choose among Deployment, DaemonSet, Job"):
        cluster.wait_ready(api, NS, JOBS, kinds=["CronJob"])


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


EXEC = {"seconds": 0.01, "output_bytes": 10}


def test_wait_profile_until_the_exec_profile_covers_every_task_and_node(
        api: cluster.Api, fake_kube: FakeKube) -> None:
    links = {"a": {"b": LINK}, "b": {"a": LINK}}
    _cm(fake_kube, _profile(False, {"a": {}, "b": {}}, {}))
    reads = {"n": 0}

    def drupe_home(fake: FakeKube, ns: str, name: str) -> None:
        reads["n"] += 1
        profile = _profile(reads["n"] >= 2, {"a": {}, "b": {}}, links)
        if reads["n"] >= 3:  # node a's profiler Job posted
            profile["exec"] = {"t1": {"a": EXEC}, "t2": {"a": EXEC}}
        if reads["n"] >= 5:  # and node b's
            profile["exec"] = {"t1": {"a": EXEC, "b": EXEC}, "t2": {"a": EXEC, "b": EXEC}}
        _cm(fake, profile)

    fake_kube.on_get["configmaps"] = drupe_home
    clock = Clock()
    lines: list[str] = []
    profile = cluster.wait_profile(api, NS, "jupiter-drupe-profile", nodes=["a", "b"],
                                   require_exec={"tasks": ["t1", "t2"], "nodes": ["a", "b"]},
                                   progress=lines.append, now=clock.now, sleep=clock.sleep)
    assert reads["n"] == 5 and set(profile["exec"]["t2"]) == {"a", "b"}
    assert [line.split(": ", 1)[1] for line in lines] == [
        "nodes 2/2; links 2/2; complete=False; exec 0/4 (missing t1 on a, t1 on b, t2 on a, "
        "t2 on b)",
        "complete; exec 0/4 (missing t1 on a, t1 on b, t2 on a, t2 on b)",
        "complete; exec 2/4 (missing t1 on b, t2 on b)"]
    assert lines[0].startswith("[drupe profile] 0s: ")


def test_exec_profile_timeout_names_the_missing_task_node_pairs(api: cluster.Api,
                                                                fake_kube: FakeKube) -> None:
    profile = _profile(True, {"a": {}, "b": {}}, {"a": {"b": LINK}, "b": {"a": LINK}})
    profile["exec"] = {"t1": {"a": EXEC, "b": EXEC}, "t2": {"a": EXEC}}
    _cm(fake_kube, profile)
    clock = Clock()
    with pytest.raises(cluster.NotReadyError) as err:
        cluster.wait_profile(api, NS, "jupiter-drupe-profile",
                             require_exec={"tasks": ["t1", "t2"], "nodes": ["a", "b"]},
                             timeout_s=120, now=clock.now, sleep=clock.sleep)
    text = str(err.value)
    assert "does not cover every task on every profiled node after 120s" in text
    assert "exec 3/4 (missing t2 on b)" in text
    assert "drupe_exec_force=true" in text


def test_exec_missing_pairs() -> None:
    profile = {"exec": {"t1": {"a": EXEC}}}
    assert cluster.exec_missing(profile, ["t1", "t2"], ["a"]) == [("t2", "a")]
    assert cluster.exec_missing(None, ["t1"], ["a", "b"]) == [("t1", "a"), ("t1", "b")]
    assert cluster.exec_missing(profile, [], ["a"]) == []
