"""Reads and waits against the Kubernetes API (kubernetes client), for the Ansible modules.

* :func:`ensure_namespace` / :func:`remove_namespace`: the deployment's namespace, created
  with a marker annotation so teardown deletes it only if this deployment created it.
* :func:`wait_ready`: poll a release's Deployments/DaemonSets (and, when asked, Jobs) and
  pods until really ready (:mod:`jupiter.k8s.readiness`); on timeout, or at once when a Job
  failed for good, an error naming each object that is not ready, why, its last events and
  (Jobs) the last log lines of the container that failed or is running.
* :func:`read_profile` / :func:`wait_profile`: the DRUPE profile ConfigMap, optionally
  until its execution profile covers given tasks on given nodes.

Objects are handled as the API's JSON (``_preload_content=False``), like the readiness
assessment expects. Polling is bounded by a deadline; the interval grows to ``interval_s``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jupiter.errors import JupiterError
from jupiter.k8s import readiness

CREATED_BY = "jupiter.io/created-by"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
REQUEST_TIMEOUT = 30
MAX_PODS_WITH_EVENTS = 5
MAX_PODS_WITH_LOGS = 5
DEFAULT_KINDS = ("Deployment", "DaemonSet")


class ClusterError(JupiterError):
    """The API could not be reached or refused a request."""


class NotReadyError(JupiterError):
    """A wait ended (timeout or fatal state) before everything was ready."""


def _request(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a client method without decoding; 404 -> None; errors -> ClusterError."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return fn(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
    except ApiException as exc:
        if exc.status == 404:
            return None
        detail = exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else exc.body
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            detail = json.loads(detail).get("message", detail)
        raise ClusterError(f"{what}: HTTP {exc.status} {exc.reason}: {detail}") from exc
    except HTTPError as exc:
        raise ClusterError(f"{what}: cannot reach the Kubernetes API: {exc}") from exc


def _call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a client method returning raw JSON; 404 -> None; errors -> ClusterError."""
    resp = _request(what, fn, *args, **kwargs)
    return None if resp is None else json.loads(resp.data or b"null")


def _text(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """Like :func:`_call` for endpoints answering plain text (pod logs); 404 -> ''."""
    resp = _request(what, fn, *args, **kwargs)
    return "" if resp is None else (resp.data or b"").decode("utf-8", "replace")


def _items(data: dict[str, Any] | None, kind: str) -> list[dict[str, Any]]:
    items = (data or {}).get("items") or []
    for item in items:
        item.setdefault("kind", kind)
    return items


@dataclass
class Api:
    """The few API groups used, on one ApiClient."""

    api_client: Any
    core: Any = field(init=False)
    apps: Any = field(init=False)
    batch: Any = field(init=False)

    def __post_init__(self) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)


# ---- namespace ------------------------------------------------------------------------

def ensure_namespace(api: Api, name: str, deployment: str, *, check_mode: bool = False
                     ) -> dict[str, Any]:
    """Create ``name`` if missing, marked as created by ``deployment``."""
    ns = _call(f"get namespace {name}", api.core.read_namespace, name)
    if ns is not None:
        phase = (ns.get("status") or {}).get("phase")
        if phase == "Terminating":
            raise ClusterError(f"namespace {name!r} is still being deleted (a previous teardown)"
                               ": wait until `kubectl get namespace` no longer lists it")
        owner = ((ns.get("metadata") or {}).get("annotations") or {}).get(CREATED_BY)
        return {"changed": False, "created": False, "owned": owner == deployment,
                "msg": f"namespace {name} exists"}
    if not check_mode:
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name,
                             "labels": {MANAGED_BY_LABEL: "jupiter",
                                        "jupiter.io/deployment": deployment},
                             "annotations": {CREATED_BY: deployment}}}
        _call(f"create namespace {name}", api.core.create_namespace, body)
    return {"changed": True, "created": True, "owned": True,
            "msg": f"namespace {name} created for deployment {deployment}"}


def remove_namespace(api: Api, name: str, deployment: str, *, check_mode: bool = False,
                     wait: bool = True, timeout_s: float = 300, interval_s: float = 2.0,
                     now: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Delete ``name`` only if ``deployment`` created it (its marker annotation)."""
    ns = _call(f"get namespace {name}", api.core.read_namespace, name)
    if ns is None:
        return {"changed": False, "deleted": False, "msg": f"namespace {name} does not exist"}
    owner = ((ns.get("metadata") or {}).get("annotations") or {}).get(CREATED_BY)
    if owner != deployment:
        return {"changed": False, "deleted": False,
                "msg": f"namespace {name} was not created by deployment {deployment} "
                       f"({CREATED_BY}={owner!r}): left in place"}
    if check_mode:
        return {"changed": True, "deleted": True, "msg": f"namespace {name} would be deleted"}
    if (ns.get("status") or {}).get("phase") != "Terminating":
        _call(f"delete namespace {name}", api.core.delete_namespace, name)
    deadline = now() + timeout_s
    delay = 0.5
    while wait:
        if _call(f"get namespace {name}", api.core.read_namespace, name) is None:
            break
        if now() >= deadline:
            raise NotReadyError(f"namespace {name} still terminating after {timeout_s:.0f}s: "
                                "something in it has a finalizer (kubectl get all -n "
                                f"{name}); the deploy cannot reuse it until it is gone")
        sleep(delay)
        delay = min(delay * 2, interval_s)
    return {"changed": True, "deleted": True, "msg": f"namespace {name} deleted"}


# ---- readiness ------------------------------------------------------------------------

def _check_kinds(kinds: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    bad = [k for k in kinds if k not in readiness.KINDS]
    if bad or not kinds:
        raise JupiterError(f"kinds {list(kinds)!r}: choose among {', '.join(readiness.KINDS)}")
    return tuple(kinds)


def snapshot(api: Api, namespace: str, selector: str,
             kinds: tuple[str, ...] | list[str] = DEFAULT_KINDS
             ) -> tuple[list[dict], list[dict]]:
    """(workloads of ``kinds``, pods) of ``selector`` in ``namespace``."""
    lists = {"Deployment": ("list deployments", api.apps.list_namespaced_deployment),
             "DaemonSet": ("list daemonsets", api.apps.list_namespaced_daemon_set),
             "Job": ("list jobs", api.batch.list_namespaced_job)}
    workloads: list[dict] = []
    for kind in _check_kinds(kinds):
        what, fn = lists[kind]
        workloads += _items(_call(what, fn, namespace, label_selector=selector), kind)
    pods = _call("list pods", api.core.list_namespaced_pod, namespace, label_selector=selector)
    return workloads, _items(pods, "Pod")


def events_for(api: Api, namespace: str, kind: str, name: str, limit: int = 3) -> list[str]:
    data = _call(f"list events of {kind} {name}", api.core.list_namespaced_event, namespace,
                 field_selector=f"involvedObject.kind={kind},involvedObject.name={name}")
    return readiness.event_lines(_items(data, "Event"), limit)


def log_tail(api: Api, namespace: str, pod: str, container: str, lines: int = 10
             ) -> list[str]:
    """The last ``lines`` log lines of a pod's container."""
    text = _text(f"logs of pod {pod} container {container}",
                 api.core.read_namespaced_pod_log, pod, namespace, container=container,
                 tail_lines=lines)
    return text.splitlines()[-lines:] if lines > 0 else []


def explain(api: Api, namespace: str, result: readiness.Assessment, log_lines: int = 10
            ) -> str:
    """One block per object that is not ready, with the last events of it and its pods,
    and the last log lines of the containers the assessment points at (Jobs)."""
    lines = []
    shown = 0
    logged = 0
    for nr in result.not_ready:
        lines.append(f"  - {nr.describe()}")
        targets = [(nr.kind, nr.name)] if not nr.pods else []
        targets += [("Pod", p) for p in nr.pods]
        for kind, name in targets:
            if shown >= MAX_PODS_WITH_EVENTS:
                break
            shown += 1
            try:
                evs = events_for(api, namespace, kind, name)
            except ClusterError as exc:
                evs = [f"(events unavailable: {exc})"]
            for ev in evs:
                lines.append(f"      {kind} {name} event: {ev}")
        for pod, container in nr.logs:
            if logged >= MAX_PODS_WITH_LOGS or log_lines <= 0:
                break
            logged += 1
            try:
                tail = log_tail(api, namespace, pod, container, log_lines)
            except ClusterError as exc:
                tail = [f"(logs unavailable: {exc})"]
            lines.append(f"      Pod {pod} container {container}, last log lines:"
                         + ("" if tail else " (none)"))
            lines.extend(f"        | {line}" for line in tail)
    return "\n".join(lines)


def wait_ready(api: Api, namespace: str, selector: str, *, timeout_s: float = 300,
               interval_s: float = 2.0, what: str = "",
               kinds: tuple[str, ...] | list[str] = DEFAULT_KINDS, allow_none: bool = False,
               log_lines: int = 10, now: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> readiness.Assessment:
    """Poll until every workload of ``kinds`` selected by ``selector`` is ready (a Job:
    succeeded); raise NotReadyError naming what is not (and why) on timeout or on a state
    that waiting cannot fix (a Job that failed for good). ``allow_none``: finding no
    workload at all is success (e.g. Jobs already finished and deleted by their TTL)."""
    what = what or f"workloads {selector}"
    kinds = _check_kinds(kinds)
    start = now()
    deadline = start + timeout_s
    delay = 0.25
    while True:
        workloads, pods = snapshot(api, namespace, selector, kinds)
        result = readiness.assess(workloads, pods)
        if result.done or (allow_none and not result.workloads):
            return result
        if result.fatal:
            raise NotReadyError(f"{what} in namespace {namespace} cannot become ready "
                                f"({result.progress()}):\n"
                                f"{explain(api, namespace, result, log_lines)}")
        if now() >= deadline:
            if not result.workloads:
                names = " or ".join([", ".join(kinds[:-1]), kinds[-1]] if len(kinds) > 1
                                    else kinds)
                raise NotReadyError(f"{what}: no {names} with labels {selector}"
                                    f" in namespace {namespace} after {timeout_s:.0f}s: is the "
                                    "release installed in this namespace?")
            raise NotReadyError(f"{what} in namespace {namespace} not ready after "
                                f"{timeout_s:.0f}s ({result.progress()}):\n"
                                f"{explain(api, namespace, result, log_lines)}")
        sleep(min(delay, max(0.0, deadline - now())))
        delay = min(delay * 2, interval_s)


# ---- DRUPE profile --------------------------------------------------------------------

def read_profile(api: Api, namespace: str, name: str, key: str = "profile.json"
                 ) -> dict[str, Any] | None:
    """The profile stored in ConfigMap ``name`` (None if the ConfigMap does not exist)."""
    from jupiter.profile import Profile

    cm = _call(f"get configmap {name}", api.core.read_namespaced_config_map, name, namespace)
    if cm is None:
        return None
    where = f"ConfigMap {namespace}/{name} key {key!r}"
    text = (cm.get("data") or {}).get(key)
    if text is None:
        raise ClusterError(f"{where} is missing: was the ConfigMap made by the drupe chart?")
    try:
        data = json.loads(text)
        Profile.from_dict(data)
    except ValueError as exc:
        raise ClusterError(f"{where} does not hold a jupiter.profile/v1 document: {exc}") from exc
    return data


def exec_missing(profile: dict[str, Any] | None, tasks: list[str], nodes: list[str]
                 ) -> list[tuple[str, str]]:
    """(task, node) pairs without an execution profile entry (``exec[task][node]``)."""
    exec_ = (profile or {}).get("exec") or {}
    return [(t, n) for t in tasks for n in nodes if n not in (exec_.get(t) or {})]


def exec_summary(gaps: list[tuple[str, str]], tasks: list[str], nodes: list[str],
                  shown: int = 8) -> str:
    total = len(tasks) * len(nodes)
    text = f"exec {total - len(gaps)}/{total}"
    if gaps:
        names = ", ".join(f"{t} on {n}" for t, n in gaps[:shown])
        text += f" (missing {names}{', ...' if len(gaps) > shown else ''})"
    return text


def missing(profile: dict[str, Any] | None, nodes: list[str]) -> str:
    """What a profile still lacks, e.g. ``nodes 3/4 (missing pi1); links 10/12``."""
    from jupiter.profile import Profile

    if profile is None:
        return "no profile ConfigMap yet"
    p = Profile.from_dict(profile)
    names = nodes or sorted(p.nodes)
    have_nodes = [n for n in names if n in p.nodes]
    gaps = p.missing_links(names)
    total_links = len(names) * (len(names) - 1)
    parts = [f"nodes {len(have_nodes)}/{len(names)}"]
    if len(have_nodes) < len(names):
        parts[0] += f" (missing {', '.join(n for n in names if n not in p.nodes)})"
    parts.append(f"links {total_links - len(gaps)}/{total_links}")
    if gaps:
        shown = ", ".join(f"{s}->{d}" for s, d in gaps[:6])
        parts[-1] += f" (missing {shown}{', ...' if len(gaps) > 6 else ''})"
    parts.append(f"complete={p.complete}")
    return "; ".join(parts)


def wait_profile(api: Api, namespace: str, name: str, key: str = "profile.json", *,
                 nodes: list[str] | None = None, timeout_s: float = 900,
                 interval_s: float = 5.0,
                 require_exec: dict[str, list[str]] | None = None,
                 progress: Callable[[str], None] | None = None,
                 now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll until the profile says ``complete: true`` and, with ``require_exec`` =
    ``{"tasks": [...], "nodes": [...]}``, until ``exec[task][node]`` exists for every pair;
    NotReadyError naming what is missing (nodes, links, task/node pairs) on timeout.
    ``progress`` gets a line whenever what is missing changes."""
    tasks = list((require_exec or {}).get("tasks") or [])
    exec_nodes = list((require_exec or {}).get("nodes") or [])
    start = now()
    deadline = start + timeout_s
    delay = 0.5
    last = None
    while True:
        profile = read_profile(api, namespace, name, key)
        complete = profile is not None and profile.get("complete") is True
        gaps = exec_missing(profile, tasks, exec_nodes) if require_exec else []
        if complete and not gaps:
            return profile  # type: ignore[return-value]
        state = missing(profile, nodes or []) if not complete else "complete"
        if require_exec:
            state += "; " + exec_summary(gaps, tasks, exec_nodes)
        if progress and state != last:
            progress(f"[drupe profile] {now() - start:.0f}s: {state}")
            last = state
        if now() >= deadline:
            if complete:
                raise NotReadyError(
                    f"DRUPE execution profile (ConfigMap {namespace}/{name}) does not cover "
                    f"every task on every profiled node after {timeout_s:.0f}s: "
                    f"{exec_summary(gaps, tasks, exec_nodes)}. The execution profiler Jobs "
                    f"post these (kubectl get jobs -n {namespace} -l "
                    "app.kubernetes.io/component=drupe-exec); finished Jobs are deleted after "
                    "their ttlSecondsAfterFinished, so when none is left rerun the deploy with "
                    "-e drupe_exec_force=true (new Jobs profile every node again)")
            raise NotReadyError(f"DRUPE profile (ConfigMap {namespace}/{name}) not complete "
                                f"after {timeout_s:.0f}s: {state}. "
                                "Check the DRUPE home and agent pods (kubectl logs -n "
                                f"{namespace} -l app.kubernetes.io/name=drupe)")
        sleep(min(delay, max(0.0, deadline - now())))
        delay = min(delay * 2, interval_s)
