"""API-shaped objects (as the Kubernetes API returns them) for the readiness tests."""

from __future__ import annotations

from typing import Any

NS = "jupiter"


def deployment(name: str, *, replicas: int = 1, ready: int = 1, updated: int | None = None,
               available: int | None = None, total: int | None = None, generation: int = 1,
               observed: int = 1, labels: dict[str, str] | None = None,
               conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    labels = labels or {"app.kubernetes.io/instance": "jupiter-circe", "jupiter.io/task": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "generation": generation,
                     "labels": {"app.kubernetes.io/instance": labels[
                         "app.kubernetes.io/instance"]}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}}},
        "status": {"observedGeneration": observed, "replicas": replicas if total is None else total,
                   "updatedReplicas": ready if updated is None else updated,
                   "readyReplicas": ready,
                   "availableReplicas": ready if available is None else available,
                   "conditions": conditions or []},
    }


def daemonset(name: str, *, desired: int = 1, ready: int = 1, expected: int | None = 1,
              hostname: str | None = "edge1", generation: int = 1, observed: int = 1
              ) -> dict[str, Any]:
    labels = {"app.kubernetes.io/instance": "jupiter-drupe", "jupiter.io/node": name}
    annotations = {"jupiter.io/hostname": hostname} if hostname else {}
    if expected is not None:
        annotations["jupiter.io/expected-pods"] = str(expected)
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": NS, "generation": generation,
                     "annotations": annotations,
                     "labels": {"app.kubernetes.io/instance": "jupiter-drupe"}},
        "spec": {"selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}}},
        "status": {"observedGeneration": observed, "desiredNumberScheduled": desired,
                   "updatedNumberScheduled": ready, "numberReady": ready,
                   "numberAvailable": ready, "currentNumberScheduled": desired,
                   "numberMisscheduled": 0},
    }


def pod(name: str, labels: dict[str, str], *, ready: bool = True, phase: str = "Running",
        waiting: tuple[str, str] | None = None, restarts: int = 0,
        last_exit: int | None = None, unschedulable: str | None = None,
        started: bool = True) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {"startedAt": "2025-01-01T00:00:00Z"}}
    if waiting:
        state = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                        "reason": None if ready else "ContainersNotReady"}],
        "containerStatuses": [] if unschedulable else [{
            "name": "task", "ready": ready, "restartCount": restarts, "started": started,
            "state": state,
            "lastState": {"terminated": {"exitCode": last_exit, "reason": "Error"}}
            if last_exit is not None else {},
        }],
    }
    if unschedulable:
        status["phase"] = "Pending"
        status["conditions"].append({"type": "PodScheduled", "status": "False",
                                     "reason": "Unschedulable", "message": unschedulable})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": dict(labels)},
            "status": status}


def event(obj_kind: str, obj_name: str, reason: str, message: str, when: str,
          type_: str = "Warning", count: int = 1, name: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name or f"{obj_name}.{reason}.{when}", "namespace": NS},
            "involvedObject": {"kind": obj_kind, "name": obj_name, "namespace": NS},
            "reason": reason, "message": message, "type": type_, "count": count,
            "lastTimestamp": when}


def job(name: str, *, succeeded: int = 0, failed: int = 0, active: int = 0,
        backoff_limit: int = 1, condition: tuple[str, str, str] | None = None
        ) -> dict[str, Any]:
    """A Job as the API returns it (selector defaulted to the controller uid);
    ``condition``: (type, reason, message) of a True condition (Complete / Failed)."""
    uid = {"batch.kubernetes.io/controller-uid": f"uid-{name}"}
    status: dict[str, Any] = {"succeeded": succeeded, "failed": failed, "active": active}
    if condition:
        status["conditions"] = [{"type": condition[0], "status": "True",
                                 "reason": condition[1], "message": condition[2]}]
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": NS,
                     "labels": {"app.kubernetes.io/instance": "jupiter-drupe",
                                "app.kubernetes.io/component": "drupe-exec"}},
        "spec": {"backoffLimit": backoff_limit, "completions": 1,
                 "selector": {"matchLabels": uid},
                 "template": {"metadata": {"labels": uid}}},
        "status": status,
    }


def job_pod(name: str, job_name: str, *, phase: str = "Running",
            init: dict[str, Any] | None = None, main: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """A pod of Job ``job_name``: ``init`` / ``main`` are the container states of its
    init container wait-home and its container exec (e.g. {"running": {}})."""
    labels = {"app.kubernetes.io/instance": "jupiter-drupe",
              "app.kubernetes.io/component": "drupe-exec",
              "batch.kubernetes.io/controller-uid": f"uid-{job_name}"}
    status: dict[str, Any] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "False", "reason": "PodCompleted"}]}
    if init is not None:
        status["initContainerStatuses"] = [{"name": "wait-home", "ready": False,
                                            "restartCount": 0, "state": init}]
    if main is not None:
        status["containerStatuses"] = [{"name": "exec", "ready": False, "restartCount": 0,
                                        "state": main}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels}, "status": status}
