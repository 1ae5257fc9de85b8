"""Is a release really ready? Pure assessment of Deployments, DaemonSets, Jobs and their pods.

Inputs are Kubernetes API objects as JSON dicts (what the API returns). "Running" is not
ready: a workload is ready when its controller observed the latest spec, every desired
replica is updated, ready and available, and no old replica is left; a DaemonSet must
also be scheduled on as many nodes as expected (annotation ``jupiter.io/expected-pods``:
a DaemonSet pinned to a missing hostname has 0 desired pods, which is not "ready").
A pod is ready when its ``Ready`` condition is True. A Job (run to completion, e.g. the
DRUPE execution profiler) is "ready" once it succeeded (``succeeded >= completions``); it
has failed for good (fatal: waiting cannot fix it) when its ``Failed`` condition is True
or ``failed > backoffLimit``. For what is not ready, the reasons name the object and say
why (unschedulable, image pull, crash loop, failing probe, failed pod and exit code, ...);
:attr:`NotReady.logs` names the (pod, container) pairs whose last log lines explain it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

EXPECTED = "jupiter.io/expected-pods"
HOSTNAME = "jupiter.io/hostname"
# Waiting reasons that will not resolve by waiting longer.
FATAL_WAITING = {"InvalidImageName", "ErrImageNeverPull"}
KINDS = ("Deployment", "DaemonSet", "Job")


@dataclass
class NotReady:
    kind: str
    name: str
    reasons: list[str] = field(default_factory=list)
    pods: list[str] = field(default_factory=list)  # names of the workload's not-ready pods
    fatal: bool = False
    # (pod, container) whose log tail is worth showing (Jobs: the failed/current container)
    logs: list[tuple[str, str]] = field(default_factory=list)

    def describe(self) -> str:
        return f"{self.kind} {self.name}: " + "; ".join(self.reasons)


@dataclass
class Assessment:
    workloads: int
    ready: list[str] = field(default_factory=list)
    not_ready: list[NotReady] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.workloads > 0 and not self.not_ready

    @property
    def fatal(self) -> list[NotReady]:
        return [n for n in self.not_ready if n.fatal]

    def progress(self) -> str:
        return f"{len(self.ready)}/{self.workloads} workloads ready"


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against a label set."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def pods_of(workload: dict[str, Any], pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pods matched by the workload's selector in its namespace, not being deleted."""
    ns = _meta(workload).get("namespace")
    selector = (workload.get("spec") or {}).get("selector") or {}
    return [p for p in pods
            if _meta(p).get("namespace") == ns and not _meta(p).get("deletionTimestamp")
            and selects(selector, _meta(p).get("labels") or {})]


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def pod_ready(pod: dict[str, Any]) -> bool:
    cond = _condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def pod_reasons(pod: dict[str, Any], *, probes: bool = True) -> tuple[list[str], bool]:
    """Why a pod is not ready (most specific first), and whether that is fatal.

    ``probes=False`` for pods run to completion (Jobs): a running container is progress,
    not a failing readiness probe."""
    status = pod.get("status") or {}
    reasons: list[str] = []
    fatal = False
    phase = status.get("phase", "Unknown")
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        reasons.append(f"not scheduled ({scheduled.get('reason', '?')}): "
                       f"{scheduled.get('message', '').strip()}")
    statuses = list(status.get("initContainerStatuses") or []) + list(
        status.get("containerStatuses") or [])
    for cs in statuses:
        name = cs.get("name", "?")
        state = cs.get("state") or {}
        restarts = _int(cs.get("restartCount"))
        if "waiting" in state:
            w = state["waiting"] or {}
            reason = w.get("reason", "Waiting")
            msg = (w.get("message") or "").strip()
            reasons.append(f"container {name} waiting: {reason}" + (f": {msg}" if msg else ""))
            fatal = fatal or reason in FATAL_WAITING
        elif "terminated" in state:
            t = state["terminated"] or {}
            if not probes and _int(t.get("exitCode")) == 0:
                continue  # a finished init container of a Job
            msg = (t.get("message") or "").strip()
            reasons.append(f"container {name} terminated: {t.get('reason', '?')} "
                           f"(exit code {t.get('exitCode', '?')})" + (f": {msg}" if msg else ""))
        elif "running" in state and not probes:
            reasons.append(f"container {name} running")
        elif "running" in state and not cs.get("ready"):
            if cs.get("started") is False:
                reasons.append(f"container {name} running, startup probe (/healthz) not passed")
            else:
                reasons.append(f"container {name} running but not ready: readiness probe "
                               "(/ready) failing")
        last = (cs.get("lastState") or {}).get("terminated")
        if restarts and last:
            reasons.append(f"container {name} restarted {restarts}x, last exit code "
                           f"{last.get('exitCode', '?')} ({last.get('reason', '?')})")
    if not reasons:
        ready = _condition(pod, "Ready") or {}
        detail = ready.get("message") or ready.get("reason") or "no Ready condition yet"
        reasons.append(f"phase {phase}: {detail}")
    return reasons, fatal


def _deployment(obj: dict[str, Any]) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = _int(spec.get("replicas"), 1)
    reasons = []
    if _int(status.get("observedGeneration")) < _int(_meta(obj).get("generation")):
        reasons.append("controller has not observed the latest spec yet")
    updated, ready = _int(status.get("updatedReplicas")), _int(status.get("readyReplicas"))
    available, total = _int(status.get("availableReplicas")), _int(status.get("replicas"))
    if updated < want:
        reasons.append(f"{updated}/{want} replicas updated")
    if ready < want:
        reasons.append(f"{ready}/{want} replicas ready")
    elif available < want:
        reasons.append(f"{available}/{want} replicas available")
    if total > want:
        reasons.append(f"{total - want} old replica(s) still running")
    return reasons


def _daemonset(obj: dict[str, Any]) -> list[str]:
    status = obj.get("status") or {}
    annotations = _meta(obj).get("annotations") or {}
    reasons = []
    if _int(status.get("observedGeneration")) < _int(_meta(obj).get("generation")):
        reasons.append("controller has not observed the latest spec yet")
    desired = _int(status.get("desiredNumberScheduled"))
    expected = _int(annotations.get(EXPECTED), 0)
    if desired < max(expected, 1):
        host = annotations.get(HOSTNAME)
        where = (f"no schedulable node has kubernetes.io/hostname={host} (check the "
                 "inventory's k8s_hostname / node name, and taints)") if host else (
                 "no node matches its node selector/affinity")
        reasons.append(f"scheduled on {desired} node(s), expected {max(expected, 1)}: {where}")
        return reasons
    for key, label in (("updatedNumberScheduled", "updated"), ("numberReady", "ready"),
                       ("numberAvailable", "available")):
        n = _int(status.get(key))
        if n < desired:
            reasons.append(f"{n}/{desired} pods {label}")
            break
    if _int(status.get("numberMisscheduled")):
        reasons.append(f"{status['numberMisscheduled']} pod(s) on nodes they should not run on")
    return reasons


def _log_container(pod: dict[str, Any]) -> str | None:
    """The container of a Job pod whose log explains its state: the first one that failed,
    else the one running (an init container before the main one)."""
    status = pod.get("status") or {}
    statuses = list(status.get("initContainerStatuses") or []) + list(
        status.get("containerStatuses") or [])
    for cs in statuses:
        t = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
            "terminated")
        if t and _int(t.get("exitCode")) != 0:
            return cs.get("name")
    for cs in statuses:
        if "running" in (cs.get("state") or {}):
            return cs.get("name")
    return None


def _job(obj: dict[str, Any], pods: list[dict[str, Any]]) -> NotReady | None:
    """None when the Job succeeded; else why not (fatal once it failed for good)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    name = _meta(obj).get("name", "?")
    want = _int(spec.get("completions"), 1) or 1
    succeeded, failed, active = (_int(status.get(k)) for k in ("succeeded", "failed", "active"))
    complete = _condition(obj, "Complete")
    if succeeded >= want or (complete and complete.get("status") == "True"):
        return None
    limit = _int(spec.get("backoffLimit"), 6)
    nr = NotReady("Job", name)
    failed_cond = _condition(obj, "Failed")
    if failed_cond and failed_cond.get("status") == "True":
        nr.fatal = True
        nr.reasons.append(f"failed: {failed_cond.get('reason', '?')}: "
                          f"{(failed_cond.get('message') or '').strip()}")
    elif failed > limit:
        nr.fatal = True
        nr.reasons.append(f"failed: {failed} pod(s) failed, backoffLimit {limit}")
    else:
        nr.reasons.append(f"{succeeded}/{want} succeeded, {active} active, {failed} failed "
                          f"(attempts allowed: {limit + 1})")
    for p in sorted(pods_of(obj, pods), key=lambda p: _meta(p).get("name", "")):
        phase = (p.get("status") or {}).get("phase")
        if phase == "Succeeded":
            continue
        pod_name = _meta(p).get("name", "?")
        why, pod_fatal = pod_reasons(p, probes=False)
        nr.reasons.append(f"pod {pod_name} ({phase or 'Unknown'}): " + "; ".join(why))
        nr.pods.append(pod_name)
        nr.fatal = nr.fatal or pod_fatal
        container = _log_container(p)
        if container:
            nr.logs.append((pod_name, container))
    return nr


def assess(workloads: Iterable[dict[str, Any]], pods: Iterable[dict[str, Any]]) -> Assessment:
    """Assess Deployments, DaemonSets and Jobs (other kinds are ignored) and their pods."""
    pods = list(pods)
    items = [w for w in workloads if w.get("kind") in KINDS]
    result = Assessment(workloads=len(items))
    for w in sorted(items, key=lambda o: (o["kind"], _meta(o).get("name", ""))):
        name = _meta(w).get("name", "?")
        if w["kind"] == "Job":
            job = _job(w, pods)
            if job is None:
                result.ready.append(f"Job {name}")
            else:
                result.not_ready.append(job)
            continue
        reasons = _deployment(w) if w["kind"] == "Deployment" else _daemonset(w)
        fatal = False
        progressing = _condition(w, "Progressing")
        if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            reasons.append(f"rollout stuck: {progressing.get('message', '')}")
            fatal = True
        bad_pods = []
        for p in pods_of(w, pods):
            if pod_ready(p):
                continue
            why, pod_fatal = pod_reasons(p)
            bad_pods.append(_meta(p).get("name", "?"))
            reasons.append(f"pod {_meta(p).get('name')}: " + "; ".join(why))
            fatal = fatal or pod_fatal
        if reasons:
            result.not_ready.append(NotReady(w["kind"], name, reasons, bad_pods, fatal))
        else:
            result.ready.append(f"{w['kind']} {name}")
    return result


def event_lines(events: Iterable[dict[str, Any]], limit: int = 3) -> list[str]:
    """The last ``limit`` events, oldest first, as ``Type Reason: message (xN)``."""

    def when(e: dict[str, Any]) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime")
                   or _meta(e).get("creationTimestamp") or "")

    out = []
    for e in sorted(events, key=when)[-limit:]:
        count = _int(e.get("count"), 1)
        times = f" (x{count})" if count > 1 else ""
        out.append(f"{e.get('type', '?')} {e.get('reason', '?')}: "
                   f"{(e.get('message') or '').strip()}{times}")
    return out
