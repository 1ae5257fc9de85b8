"""The Ansible side end to end: the modules and the roles' Kubernetes task files run by
ansible-playbook, in check mode without any cluster, and for real against the fake API on
loopback (helm installs into it; a test "controller" marks workloads ready, runs the
execution profiler Jobs to completion, and plays DRUPE home publishing a complete profile
holding the exec entries of the nodes whose Job succeeded). Not a real cluster: see
docs/kubernetes.md."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from charts_helpers import REPO, deployment_values, inventory
from k8s_fakeapi import FakeKube
from k8s_helpers import PLAYBOOKS, recap, run_playbook

from jupiter.app.loader import load_app
from jupiter.k8s.preview import nominal_profile
from jupiter.wave.api import schedule_dicts


def test_release_module_check_mode_without_a_cluster(tmp_path: Path) -> None:
    result = run_playbook(PLAYBOOKS / "release_check.yml", "--check",
                          env={"KUBECONFIG": "", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "compared_with: 'nothing: the cluster was not reachable (no kubeconfig" in \
        result.stdout
    assert "Deployment ci-circe-tokenize -> k8s-edge-1" in result.stdout


# ---- the roles against the fake API --------------------------------------------------

def _controller(fake: FakeKube) -> None:
    """Plays the Deployment/DaemonSet controllers and the kubelet: everything is ready."""
    for (plural, ns, name), obj in list(fake.objects.items()):
        if plural not in ("deployments", "daemonsets"):
            continue
        gen = obj["metadata"].get("generation", 1)
        if plural == "deployments":
            obj["status"] = {"observedGeneration": gen, "replicas": 1, "updatedReplicas": 1,
                             "readyReplicas": 1, "availableReplicas": 1}
        else:
            obj["status"] = {"observedGeneration": gen, "desiredNumberScheduled": 1,
                             "currentNumberScheduled": 1, "updatedNumberScheduled": 1,
                             "numberReady": 1, "numberAvailable": 1, "numberMisscheduled": 0}
        fake.put({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": f"{name}-0", "namespace": ns,
                               "labels": obj["spec"]["template"]["metadata"]["labels"]},
                  "status": {"phase": "Running",
                             "conditions": [{"type": "Ready", "status": "True"}]}})


def _job_controller(outcome: str = "succeed"):
    """Plays the Job controller and the kubelet: each Job gets a pod that succeeds, or
    (``outcome="fail"``) fails with exit code 1 and a log, and the Job fails for good."""

    def run(fake: FakeKube) -> None:
        for (plural, ns, name), job in list(fake.objects.items()):
            if plural != "jobs" or job.get("status"):
                continue
            uid = {"batch.kubernetes.io/controller-uid": f"uid-{name}"}
            job["spec"]["selector"] = {"matchLabels": uid}  # as the API server defaults it
            labels = {**job["spec"]["template"]["metadata"]["labels"], **uid}
            pod_name = f"{name}-x1"
            if outcome == "succeed":
                job["status"] = {"succeeded": 1, "conditions": [
                    {"type": "Complete", "status": "True"}]}
                state = {"terminated": {"exitCode": 0, "reason": "Completed"}}
            else:
                job["status"] = {"failed": 1, "conditions": [
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit"}]}
                state = {"terminated": {"exitCode": 1, "reason": "Error"}}
                fake.logs[(ns, pod_name, "exec")] = (
                    "[drupe exec] edge: loading the app\n"
                    "jupiter: error: task 'tokenize' (scripts/tokenize.py) raised "
                    "ValueError: bad input\n")
            fake.put({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": pod_name, "namespace": ns, "labels": labels},
                      "status": {"phase": "Succeeded" if outcome == "succeed" else "Failed",
                                 "initContainerStatuses": [{"name": "wait-home", "state": {
                                     "terminated": {"exitCode": 0, "reason": "Completed"}}}],
                                 "containerStatuses": [{"name": "exec", "state": state}]}})

    return run


def _drupe_home(values: dict[str, Any], app: dict[str, Any]):
    """Publishes a complete profile; ``exec`` holds every task on each node whose profiler
    Job succeeded (what home merges from the Jobs' POST /exec)."""
    names = [n["name"] for n in values["nodes"]]
    link = {"latency_s": 0.001, "bandwidth_bps": 1e7, "quad_ms_kbit": [0.0, 0.1, 1.0],
            "samples": 8, "updated": 1.0}

    def publish(fake: FakeKube, ns: str, name: str) -> None:
        cm = fake.get("configmaps", ns, name)
        if not (name.endswith("-drupe-profile") and cm is not None):
            return
        done = [job["metadata"]["annotations"]["jupiter.io/node-name"]
                for (plural, _, _), job in list(fake.objects.items())
                if plural == "jobs" and (job.get("status") or {}).get("succeeded")]
        profile = {"schema": "jupiter.profile/v1", "complete": True, "generated_at": 1.0,
                   "nodes": {n: {"cpu_count": 2, "speed": 1.0} for n in names},
                   "links": {s: {d: link for d in names if d != s} for s in names},
                   "exec": {t["name"]: {n: {"seconds": 0.01, "output_bytes": 10} for n in done}
                            for t in app["tasks"]} if done else {}}
        cm["data"]["profile.json"] = json.dumps(profile)

    return publish


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    values = deployment_values("diamond")
    inv = inventory()
    app = load_app(REPO / "task_specific_files" / "diamond").to_dict()
    workers = [n["name"] for n in inv["nodes"] if n["role"] == "worker"]
    mapping = schedule_dicts(app, nominal_profile(inv), workers, "spread")
    (tmp_path / "values.json").write_text(json.dumps(values))
    (tmp_path / "inventory.json").write_text(json.dumps(inv))
    (tmp_path / "mapping.json").write_text(json.dumps(mapping))
    (tmp_path / "app.json").write_text(json.dumps(app))
    return tmp_path, values, app


def test_roles_check_mode_renders_and_changes_nothing(prepared, fake_kube: FakeKube,
                                                     kubeconfig: Path) -> None:
    work, _, _ = prepared
    result = run_playbook(PLAYBOOKS / "roles_flow.yml", "--check", "-e", f"work_dir={work}",
                          env={"KUBECONFIG": str(kubeconfig), "HOME": str(work)})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    out = result.stdout
    assert "release jupiter-drupe: install (compared with nothing: the release is not " \
           "installed)" in out
    assert "DaemonSet jupiter-drupe-agent-edge-1-" in out
    assert re.search(r"Job jupiter-drupe-exec-edge-1-\w+-[0-9a-f]{8} -> node-1\.example\.org",
                     out)
    assert "nominal profile from the inventory (check mode: nothing measured)" in out
    assert "Deployment jupiter-circe-report -> node-" in out
    assert not [k for k in fake_kube.objects if k[0] != "namespaces"]
    assert fake_kube.get("namespaces", "", "jupiter") is None


@pytest.mark.parametrize(("mode", "jobs_on"), [("scaled", ["node-1.example.org"]),
                                             ("none", [])])
def test_exec_mode_chooses_the_profiler_jobs(prepared, fake_kube: FakeKube, kubeconfig: Path,
                                             mode: str, jobs_on: list[str]) -> None:
    work, _, _ = prepared
    result = run_playbook(PLAYBOOKS / "roles_flow.yml", "--check", "-e", f"work_dir={work}",
                          "-e", f"drupe_exec_mode={mode}", "-e", "drupe_exec_reference=edge_1",
                          "-e", "drupe_only=true",
                          env={"KUBECONFIG": str(kubeconfig), "HOME": str(work)})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.findall(r"Job jupiter-drupe-exec-\S+ -> (\S+)", result.stdout) == jobs_on


def test_roles_deploy_is_idempotent_and_teardown_removes_everything(
        prepared, fake_kube: FakeKube, kubeconfig: Path) -> None:
    work, values, app = prepared
    fake_kube.on_list["deployments"] = _controller
    fake_kube.on_list["jobs"] = _job_controller()
    fake_kube.on_get["configmaps"] = _drupe_home(values, app)
    env = {"KUBECONFIG": str(kubeconfig), "HOME": str(work)}
    task_resources = {"requests": {"cpu": "250m", "memory": "256Mi"},
                      "limits": {"cpu": "1", "memory": "1Gi"}}
    k8s_values = json.dumps({"jupiter_k8s_values": {"circe": {"resources": {
        "task": task_resources}}}})

    first = run_playbook(PLAYBOOKS / "roles_flow.yml", "-e", f"work_dir={work}",
                         "-e", k8s_values, env=env)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert recap(first.stdout)["changed"] >= 5  # namespace, 3 releases, state files
    assert "profile complete=True nominal=False" in first.stdout
    jobs = [k for k in fake_kube.objects if k[0] == "jobs"]
    assert len(jobs) == len(values["nodes"])
    for key in jobs:
        job = fake_kube.objects[key]
        # the role: drupe_exec_repeat and _idle_s, not drupe_exec_force, the sum of the waits'
        # timeouts (30 + 30 + 900) and CIRCE's task resources for the profiler
        assert job["spec"]["activeDeadlineSeconds"] == 960
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["args"][-5:] == ["--repeat", "3", "--idle", "0.5", "--only-missing"]
        assert container["resources"] == task_resources
    n_exec = len(app["tasks"]) * len(values["nodes"])
    assert f"exec {n_exec}/{n_exec}" in first.stdout
    ns = fake_kube.get("namespaces", "", "jupiter")
    assert ns["metadata"]["annotations"]["jupiter.io/created-by"] == "jupiter"
    releases = {o["metadata"]["labels"]["name"] for (p, _, _), o in fake_kube.objects.items()
                if p == "secrets" and o.get("type") == "helm.sh/release.v1"}
    assert releases == {"jupiter-drupe", "jupiter-wave", "jupiter-circe"}
    stored = json.loads((work / "state" / "profile.json").read_text())
    assert stored["complete"] is True
    assert set(stored["exec"]) == {t["name"] for t in app["tasks"]}
    assert all(len(per) == len(values["nodes"]) for per in stored["exec"].values())
    assert (work / "state" / "mapping.json").is_file()

    second = run_playbook(PLAYBOOKS / "roles_flow.yml", "-e", f"work_dir={work}",
                          "-e", k8s_values, env=env)
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second.stdout)["changed"] == 0, second.stdout[-4000:]
    assert "release jupiter-circe: none (compared with revision 1 (deployed))" in second.stdout
    assert sorted(k for k in fake_kube.objects if k[0] == "jobs") == sorted(jobs)  # not re-run

    down = run_playbook(PLAYBOOKS / "roles_flow.yml", "-e", f"work_dir={work}",
                        "-e", "teardown=true", env=env)
    assert down.returncode == 0, down.stdout[-4000:] + down.stderr[-2000:]
    assert "namespace jupiter deleted" in down.stdout
    assert not fake_kube.objects, sorted(fake_kube.objects)

    again = run_playbook(PLAYBOOKS / "roles_flow.yml", "-e", f"work_dir={work}",
                         "-e", "teardown=true", env=env)
    assert again.returncode == 0 and recap(again.stdout)["changed"] == 0


def test_a_foreign_namespace_survives_teardown(prepared, fake_kube: FakeKube,
                                              kubeconfig: Path) -> None:
    work, values, app = prepared
    fake_kube.put({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "jupiter", "labels": {"team": "ours"}},
                   "status": {"phase": "Active"}})
    fake_kube.on_list["deployments"] = _controller
    fake_kube.on_list["jobs"] = _job_controller()
    fake_kube.on_get["configmaps"] = _drupe_home(values, app)
    env = {"KUBECONFIG": str(kubeconfig), "HOME": str(work)}
    assert run_playbook(PLAYBOOKS / "roles_flow.yml", "-e", f"work_dir={work}",
                        env=env).returncode == 0
    down = run_playbook(PLAYBOOKS / "roles_flow.yml", "-e", f"work_dir={work}",
                        "-e", "teardown=true", env=env)
    assert down.returncode == 0, down.stdout[-4000:]
    assert "was not created by deployment jupiter" in down.stdout
    assert list(fake_kube.objects) == [("namespaces", "", "jupiter")]


def test_unready_pods_fail_the_deploy_naming_them(prepared, fake_kube: FakeKube,
                                                  kubeconfig: Path) -> None:
    work, _, _ = prepared

    def stuck(fake: FakeKube) -> None:
        _controller(fake)
        for (plural, ns, name), obj in list(fake.objects.items()):
            if plural == "pods" and "agent" in name:
                obj["status"] = {"phase": "Pending", "conditions": [
                    {"type": "Ready", "status": "False"}], "containerStatuses": [
                    {"name": "agent", "ready": False, "restartCount": 0, "state": {
                        "waiting": {"reason": "ErrImagePull",
                                    "message": "manifest unknown"}}}]}
                fake.objects[("daemonsets", ns, name[:-2])]["status"]["numberReady"] = 0

    fake_kube.on_list["deployments"] = stuck
    env = {"KUBECONFIG": str(kubeconfig), "HOME": str(work)}
    result = run_playbook(PLAYBOOKS / "roles_flow.yml", "-e", f"work_dir={work}",
                          "-e", "jupiter_k8s_timeout=2", env=env)
    assert result.returncode != 0
    assert "release jupiter-drupe in namespace jupiter not ready after 2s" in result.stdout
    assert "container agent waiting: ErrImagePull: manifest unknown" in result.stdout


def test_a_failed_profiler_job_fails_the_deploy_with_its_pod_and_log(
        prepared, fake_kube: FakeKube, kubeconfig: Path) -> None:
    work, values, app = prepared
    fake_kube.on_list["deployments"] = _controller
    fake_kube.on_list["jobs"] = _job_controller("fail")
    fake_kube.on_get["configmaps"] = _drupe_home(values, app)
    env = {"KUBECONFIG": str(kubeconfig), "HOME": str(work)}
    result = run_playbook(PLAYBOOKS / "roles_flow.yml", "-e", f"work_dir={work}",
                          "-e", "drupe_exec_timeout=600", "-e", "drupe_only=true", env=env)
    assert result.returncode != 0
    out = result.stdout
    assert "release jupiter-drupe in namespace jupiter cannot become ready" in out
    assert re.search(r"Job jupiter-drupe-exec-cloud0-[0-9a-f]{8}: failed: "
                     r"BackoffLimitExceeded: Job has reached the specified backoff limit", out)
    assert "container exec terminated: Error (exit code 1)" in out
    assert "raised ValueError: bad input" in out  # the pod's last log lines
    failed_task = out.split("TASK [")[-1]
    assert failed_task.startswith("drupe : Wait for the execution profiler Jobs")
    assert "TASK [drupe : Store the profile" not in out  # stopped at the Jobs
