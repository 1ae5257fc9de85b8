"""DRUPE configuration: built once by ``jupiter.values``, read by ``jupiter drupe agent|home|exec``.

The same JSON document is used on both targets; only ``endpoints`` differ (local:
``http://<node address>:<port>``; Kubernetes: ``http://<service>:<port>``). Shape
(``schema: jupiter.drupe/v1``)::

    {"schema": "jupiter.drupe/v1", "deployment": "jupiter", "home": "home",
     "nodes": ["home", "edge1", ...],
     "endpoints": {"home": "http://10.77.0.2:7700", "agents": {"edge1": "http://10.77.0.3:7701"}},
     "token_file": "...", "state_dir": "...",
     "min_samples": 8, "interval_s": 60, "stale_after_s": 30, "ewma_alpha": 0.5,
     "slot_timeout_s": 30, "register_grace_s": 20, "resource_interval_s": 30, "poll_wait_s": 5,
     "probe": {"min_bytes": 1024, "max_bytes": 16777216, "factor": 2.0, "target_s": 0.2,
               "repeats": 2, "timeout_s": 15, "max_parallel": 0},
     "publish": {"kind": "file"} | {"kind": "configmap", "name": "...", "namespace": "..."}}

Every option is documented in ``docs/drupe.md`` ("Configuration").
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jupiter.errors import InvalidInput, JupiterError, Problem

SCHEMA = "jupiter.drupe/v1"
TOKEN_ENV = "JUPITER_TOKEN_FILE"

PROBE_DEFAULTS: dict[str, Any] = {
    "min_bytes": 1024,  # first rung of the probe ladder
    "max_bytes": 16 * 1024 * 1024,  # last possible rung; also the agent's request size cap
    "factor": 2.0,  # geometric ladder ratio
    "target_s": 0.2,  # stop growing once one transfer takes longer than this
    "repeats": 2,  # passes over the ladder per sweep
    "timeout_s": 15.0,  # one probe request
    "max_parallel": 0,  # probe slots at once (0: every disjoint pair of a phase)
    "idle_s": 0.02,  # in the repeats, the link idles this long before the probes the burst
    # estimate uses (the smallest, the three largest): a shaper's bucket refills, as it does
    # between items that do not come back to back
}
DEFAULTS: dict[str, Any] = {
    "min_samples": 8,  # probes per directed link before it counts as measured
    "interval_s": 60.0,  # pause between full measurement cycles once complete
    "stale_after_s": 30.0,  # an agent silent for longer is marked stale
    "ewma_alpha": 0.5,  # weight of the newest sweep in the smoothed estimate
    "slot_timeout_s": 30.0,  # a probe slot not reported within this is recorded as failed
    "register_grace_s": 20.0,  # start measuring without the missing nodes after this
    "resource_interval_s": 30.0,  # how often agents re-run the resource profile
    "poll_wait_s": 5.0,  # long-poll duration of an agent waiting for its next slot
    "publish_min_interval_s": 0.5,  # coalesce profile publications
    "probe": PROBE_DEFAULTS,
    "publish": {"kind": "file"},
}

_POSITIVE_FLOATS = ("interval_s", "stale_after_s", "slot_timeout_s", "register_grace_s",
                    "resource_interval_s", "poll_wait_s")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class ProbeSettings:
    min_bytes: int = PROBE_DEFAULTS["min_bytes"]
    max_bytes: int = PROBE_DEFAULTS["max_bytes"]
    factor: float = PROBE_DEFAULTS["factor"]
    target_s: float = PROBE_DEFAULTS["target_s"]
    repeats: int = PROBE_DEFAULTS["repeats"]
    timeout_s: float = PROBE_DEFAULTS["timeout_s"]
    max_parallel: int = PROBE_DEFAULTS["max_parallel"]
    idle_s: float = PROBE_DEFAULTS["idle_s"]


@dataclass(frozen=True)
class DrupeConfig:
    deployment: str
    nodes: tuple[str, ...]
    home: str
    home_url: str
    agent_urls: dict[str, str]
    token_file: str
    state_dir: str
    min_samples: int = DEFAULTS["min_samples"]
    interval_s: float = DEFAULTS["interval_s"]
    stale_after_s: float = DEFAULTS["stale_after_s"]
    ewma_alpha: float = DEFAULTS["ewma_alpha"]
    slot_timeout_s: float = DEFAULTS["slot_timeout_s"]
    register_grace_s: float = DEFAULTS["register_grace_s"]
    resource_interval_s: float = DEFAULTS["resource_interval_s"]
    poll_wait_s: float = DEFAULTS["poll_wait_s"]
    publish_min_interval_s: float = DEFAULTS["publish_min_interval_s"]
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    publish: dict[str, Any] = field(default_factory=lambda: {"kind": "file"})
    source: str = "drupe config"

    @property
    def profile_path(self) -> Path:
        return Path(self.publish.get("path") or Path(self.state_dir) / "profile.json")

    def read_token(self) -> str:
        """The deployment's bearer token (``token_file``, else ``$JUPITER_TOKEN_FILE``)."""
        path = self.token_file or os.environ.get(TOKEN_ENV, "")
        if not path:
            raise JupiterError(f"{self.source}: no 'token_file' and ${TOKEN_ENV} is not set; "
                               "point one of them at the deployment's token file")
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise JupiterError(f"{self.source}: cannot read token file {path}: {exc.strerror}; "
                               "create it (deploy.yml does) or fix 'token_file'") from exc
        if not token:
            raise JupiterError(f"{self.source}: token file {path} is empty")
        return token


def default_listen(url: str) -> str:
    """``HOST:PORT`` to bind for an endpoint URL: its host when it is an IP literal (local
    target: the node's own address), else every interface (Kubernetes: a Service name)."""
    parts = urlsplit(url)
    port = parts.port or 80
    host = parts.hostname or "0.0.0.0"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = "0.0.0.0"
    return f"{host}:{port}"


def parse_listen(value: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[v6]:PORT`` too); raises JupiterError naming the value."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise JupiterError(f"--listen {value!r}: expected HOST:PORT, e.g. 10.77.0.2:7701")
    return host.strip("[]") or "0.0.0.0", int(port)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "publish":
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _check_options(data: dict[str, Any], where: str, problems: list[Problem]) -> None:
    """Check the tunables in ``data`` (already merged with defaults)."""
    known = set(DEFAULTS) | {"schema", "deployment", "home", "nodes", "endpoints", "token_file",
                             "state_dir"}
    for k in data:
        if k not in known:
            problems.append(Problem(where, f"unknown option {k!r}; known: "
                                    f"{', '.join(sorted(DEFAULTS))}", field=k))
    ms = data.get("min_samples")
    if not isinstance(ms, int) or isinstance(ms, bool) or ms < 3:
        problems.append(Problem(where, f"must be an integer >= 3 (3 sizes are needed for the "
                                f"quadratic fit), got {ms!r}", field="min_samples"))
    for k in (*_POSITIVE_FLOATS, "publish_min_interval_s"):
        v = data.get(k)
        ok = isinstance(v, int | float) and not isinstance(v, bool)
        if not ok or v < 0 or (k in _POSITIVE_FLOATS and v == 0):
            problems.append(Problem(where, f"must be a positive number of seconds, got {v!r}",
                                    field=k))
    alpha = data.get("ewma_alpha")
    if not isinstance(alpha, int | float) or isinstance(alpha, bool) or not 0 < alpha <= 1:
        problems.append(Problem(where, f"must be a number in (0, 1], got {alpha!r}",
                                field="ewma_alpha"))
    probe = data.get("probe")
    if not isinstance(probe, dict):
        problems.append(Problem(where, "must be a mapping", field="probe"))
    else:
        for k in probe:
            if k not in PROBE_DEFAULTS:
                problems.append(Problem(where, f"unknown probe option {k!r}; known: "
                                        f"{', '.join(sorted(PROBE_DEFAULTS))}", field=f"probe.{k}"))
        ints = {"min_bytes": 1, "max_bytes": 1, "repeats": 1, "max_parallel": 0}
        for k, low in ints.items():
            v = probe.get(k)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                problems.append(Problem(where, f"must be an integer >= {low}, got {v!r}",
                                        field=f"probe.{k}"))
        for k in ("factor", "target_s", "timeout_s"):
            v = probe.get(k)
            low = 1.0 if k == "factor" else 0.0
            if not isinstance(v, int | float) or isinstance(v, bool) or v <= low:
                problems.append(Problem(where, f"must be a number > {low:g}, got {v!r}",
                                        field=f"probe.{k}"))
        idle = probe.get("idle_s")
        if not isinstance(idle, int | float) or isinstance(idle, bool) or not 0 <= idle <= 1:
            problems.append(Problem(where, f"must be a number of seconds in [0, 1], got {idle!r}",
                                    field="probe.idle_s"))
        mn, mx = probe.get("min_bytes"), probe.get("max_bytes")
        if isinstance(mn, int) and isinstance(mx, int) and mx < 4 * mn:
            problems.append(Problem(where, "max_bytes must be at least 4 x min_bytes (the ladder "
                                    "needs three sizes)", field="probe.max_bytes"))
    _check_publish(data.get("publish"), where, problems)


def _check_publish(pub: Any, where: str, problems: list[Problem]) -> None:
    if not isinstance(pub, dict):
        problems.append(Problem(where, "must be a mapping with 'kind'", field="publish"))
        return
    kind = pub.get("kind")
    if kind == "file":
        extra = set(pub) - {"kind", "path"}
        if extra:
            problems.append(Problem(where, f"unknown key(s) {sorted(extra)} for kind 'file' "
                                    "(allowed: path)", field="publish"))
    elif kind == "configmap":
        for k in ("name", "namespace"):
            v = pub.get(k)
            if not isinstance(v, str) or not _DNS_SUBDOMAIN.match(v) or len(v) > 253:
                problems.append(Problem(where, f"must be a DNS-1123 name for the profile "
                                        f"ConfigMap, got {v!r}", field=f"publish.{k}"))
        key = pub.get("key", "profile.json")
        if not isinstance(key, str) or not re.fullmatch(r"[-._a-zA-Z0-9]{1,253}", key):
            problems.append(Problem(where, f"must be a ConfigMap key ([-._a-zA-Z0-9]+), got "
                                    f"{key!r}", field="publish.key"))
        extra = set(pub) - {"kind", "name", "namespace", "key"}
        if extra:
            problems.append(Problem(where, f"unknown key(s) {sorted(extra)} for kind 'configmap' "
                                    "(allowed: name, namespace, key)", field="publish"))
    else:
        problems.append(Problem(where, f"kind must be 'file' or 'configmap', got {kind!r}",
                                field="publish.kind"))


def _check_identity(data: dict[str, Any], where: str, problems: list[Problem]) -> None:
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes or not all(isinstance(n, str) and n
                                                           for n in nodes):
        problems.append(Problem(where, "must be a non-empty list of node names", field="nodes"))
        nodes = []
    elif len(set(nodes)) != len(nodes):
        problems.append(Problem(where, "node names must be unique", field="nodes"))
    if data.get("home") not in nodes:
        problems.append(Problem(where, f"home {data.get('home')!r} must be one of the nodes "
                                f"{nodes}", field="home"))
    ep = data.get("endpoints")
    if not isinstance(ep, dict):
        problems.append(Problem(where, "must be {'home': url, 'agents': {node: url}}",
                                field="endpoints"))
        return
    if not _is_http_url(ep.get("home")):
        problems.append(Problem(where, f"must be an http(s) URL, got {ep.get('home')!r}",
                                field="endpoints.home"))
    agents = ep.get("agents")
    if not isinstance(agents, dict):
        problems.append(Problem(where, "must map every node to its agent URL",
                                field="endpoints.agents"))
        return
    for n in nodes:
        if not _is_http_url(agents.get(n)):
            problems.append(Problem(where, f"node {n!r} has no agent URL (got "
                                    f"{agents.get(n)!r})", field=f"endpoints.agents.{n}"))
    for n in agents:
        if n not in nodes:
            problems.append(Problem(where, f"agent URL for unknown node {n!r}",
                                    field=f"endpoints.agents.{n}"))
    for k in ("token_file", "state_dir"):
        if not isinstance(data.get(k), str):
            problems.append(Problem(where, "must be a path string", field=k))


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def build_config(
    *,
    deployment: str,
    nodes: list[str],
    home: str,
    endpoints: dict[str, Any],
    token_file: str,
    state_dir: str,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The DRUPE config document (pure).

    ``nodes``: every inventory node name (home included), ``home``: the home node's name,
    ``endpoints``: ``{"home": url, "agents": {node: url}}``, ``token_file``/``state_dir``: paths
    as the processes see them, ``options``: overrides of :data:`DEFAULTS` (nested ``probe`` and
    ``publish`` mappings allowed), e.g. ``{"min_samples": 12, "probe": {"target_s": 0.3}}``.
    Raises :class:`InvalidInput` naming each bad field.
    """
    doc = _merge(DEFAULTS, dict(options or {}))
    doc.update(
        schema=SCHEMA,
        deployment=deployment,
        home=home,
        nodes=list(nodes),
        endpoints={"home": endpoints.get("home"), "agents": dict(endpoints.get("agents") or {})},
        token_file=token_file,
        state_dir=state_dir,
    )
    problems: list[Problem] = []
    _check_identity(doc, "drupe options", problems)
    _check_options(doc, "drupe options", problems)
    if problems:
        raise InvalidInput(problems, what="DRUPE configuration")
    return doc


def parse_config(data: Any, source: str = "drupe config") -> DrupeConfig:
    """Validate a config document (as written by :func:`build_config`)."""
    if not isinstance(data, dict):
        raise InvalidInput([Problem(source, "expected a JSON object")], what="DRUPE configuration")
    problems: list[Problem] = []
    if data.get("schema") != SCHEMA:
        problems.append(Problem(source, f"must be {SCHEMA!r}, got {data.get('schema')!r}",
                                field="schema"))
    merged = _merge(DEFAULTS, data)
    _check_identity(merged, source, problems)
    _check_options(merged, source, problems)
    if problems:
        raise InvalidInput(problems, what="DRUPE configuration")
    probe = ProbeSettings(**{k: merged["probe"][k] for k in PROBE_DEFAULTS})
    return DrupeConfig(
        deployment=str(merged.get("deployment") or "jupiter"),
        nodes=tuple(merged["nodes"]),
        home=merged["home"],
        home_url=merged["endpoints"]["home"].rstrip("/"),
        agent_urls={n: u.rstrip("/") for n, u in merged["endpoints"]["agents"].items()},
        token_file=merged["token_file"],
        state_dir=merged["state_dir"],
        min_samples=merged["min_samples"],
        interval_s=float(merged["interval_s"]),
        stale_after_s=float(merged["stale_after_s"]),
        ewma_alpha=float(merged["ewma_alpha"]),
        slot_timeout_s=float(merged["slot_timeout_s"]),
        register_grace_s=float(merged["register_grace_s"]),
        resource_interval_s=float(merged["resource_interval_s"]),
        poll_wait_s=float(merged["poll_wait_s"]),
        publish_min_interval_s=float(merged["publish_min_interval_s"]),
        probe=probe,
        publish=dict(merged["publish"]),
        source=source,
    )


def load_config(path: str | os.PathLike[str]) -> DrupeConfig:
    """Read and validate a config file; errors name the file and the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput([Problem(str(p), f"cannot read: {exc.strerror}")],
                           what="DRUPE configuration") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput([Problem(str(p), f"not valid JSON: {exc.msg}", line=exc.lineno)],
                           what="DRUPE configuration") from exc
    return parse_config(data, source=str(p))
