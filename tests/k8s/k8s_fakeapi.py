"""A small in-memory Kubernetes API over real HTTP, for tests without a cluster.

It serves what the bundle's code paths use - discovery, namespaces, Secrets (Helm's
release storage and lookups), ConfigMaps, Pods (and their logs, from :attr:`FakeKube.logs`),
Events, Deployments, DaemonSets, Jobs - with equality label selectors and field selectors,
so the real clients (helm, the kubernetes Python client, pyhelm3) talk to it unchanged. It
is NOT Kubernetes: no controllers, no scheduling, no validation. Tests change object state
through :meth:`FakeKube.put` or the ``on_list`` hooks (called on every list of a resource:
state changes are driven by the number of polls, never by time).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import gzip
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

CORE = {"namespaces": ("Namespace", False), "secrets": ("Secret", True),
        "configmaps": ("ConfigMap", True), "pods": ("Pod", True), "events": ("Event", True),
        "services": ("Service", True), "serviceaccounts": ("ServiceAccount", True),
        "persistentvolumeclaims": ("PersistentVolumeClaim", True)}
GROUPS = {
    "apps/v1": {"deployments": ("Deployment", True), "daemonsets": ("DaemonSet", True)},
    "rbac.authorization.k8s.io/v1": {"roles": ("Role", True),
                                     "rolebindings": ("RoleBinding", True)},
    "networking.k8s.io/v1": {"networkpolicies": ("NetworkPolicy", True)},
    "batch/v1": {"jobs": ("Job", True)},
}
APPS = GROUPS["apps/v1"]
KINDS = {k: p for table in (CORE, *GROUPS.values()) for p, (k, _) in table.items()}


def _fields(data: bytes) -> dict[int, list[Any]]:
    """Protocol-buffer wire format -> {field number: [values]} (varints and bytes)."""
    out: dict[int, list[Any]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    while i < len(data):
        tag = varint()
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value: Any = varint()
        elif wire == 2:
            n = varint()
            value, i = data[i:i + n], i + n
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _proto_map(entries: list[bytes], decode: bool) -> dict[str, Any]:
    out = {}
    for entry in entries:
        f = _fields(entry)
        key = f.get(1, [b""])[0].decode()
        value = f.get(2, [b""])[0]
        out[key] = value.decode() if decode else base64.b64encode(value).decode()
    return out


def secret_from_protobuf(body: bytes) -> dict[str, Any]:
    """A v1 Secret from Kubernetes' protobuf encoding (what client-go's typed clients send;
    Helm's release storage uses them). Only the fields Helm sets are decoded."""
    if not body.startswith(b"k8s\x00"):
        raise ValueError("not a Kubernetes protobuf body")
    unknown = _fields(body[4:])
    secret = _fields(unknown[2][0])
    meta = _fields(secret.get(1, [b""])[0])
    metadata = {"name": meta.get(1, [b""])[0].decode(),
                "labels": _proto_map(meta.get(11, []), decode=True)}
    if meta.get(3, [b""])[0]:
        metadata["namespace"] = meta[3][0].decode()
    return {
        "apiVersion": "v1", "kind": "Secret", "metadata": metadata,
        "type": secret.get(3, [b""])[0].decode(),
        "data": _proto_map(secret.get(2, []), decode=False),
    }


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 merge patch, ignoring strategic-merge directives ($...): objects stored
    after a strategic patch of a list are approximate. The bundle reads Helm's release
    records, not the patched objects, so tests do not depend on them."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            target.pop(k, None)
        else:
            target[k] = _merge_patch(target.get(k), v)
    return target


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "reason": reason, "message": message, "code": code}, status=code)


def _matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v.lstrip("="):
                return False
        elif labels.get(term) is None:
            return False
    return True


def _field(obj: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj.get(part, {}) if isinstance(obj, dict) else {}
    return obj


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, ns, name)
        self.requests: list[str] = []
        self.on_list: dict[str, Callable[[FakeKube], None]] = {}
        self.on_get: dict[str, Callable[[FakeKube, str, str], None]] = {}  # plural -> (ns, name)
        self.terminate_after_gets = 1  # a deleted namespace disappears after this many GETs
        self.logs: dict[tuple[str, str, str], str] = {}  # (namespace, pod, container) -> text
        self._terminating: dict[str, int] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ---- state -------------------------------------------------------------------------
    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        plural = KINDS[obj["kind"]]
        meta = obj.setdefault("metadata", {})
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        with self._lock:
            self.objects[(plural, meta.get("namespace", ""), meta["name"])] = obj
        return obj

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self.objects.get((plural, namespace, name))

    # ---- server ------------------------------------------------------------------------
    def start(self) -> str:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_route("*", "/{path:.*}", self._handle)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Kubernetes API did not start")
        return self.url

    def stop(self) -> None:
        if self._loop is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)  # type: ignore[union-attr]
        fut.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)  # type: ignore[union-attr]

    def kubeconfig(self, path: Path, context: str = "fake", namespace: str = "default") -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": context,
                          "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
        }), encoding="utf-8")
        return path

    # ---- HTTP --------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path_qs}")
        parts = [p for p in request.path.split("/") if p]
        if parts == ["version"]:
            return web.json_response({
                "major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "fake",
                "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"})
        if parts == ["openapi", "v3"]:
            # Every group-version, without schemas: clients skip client-side validation
            # (as for types without a schema). This fake does not validate objects.
            paths = {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=0"}}
            paths.update({f"apis/{gv}": {"serverRelativeURL": f"/openapi/v3/apis/{gv}?hash=0"}
                          for gv in GROUPS})
            return web.json_response({"paths": paths})
        if parts == ["openapi", "v2"]:
            # An empty protobuf document (clients ask for protobuf): no definitions.
            return web.Response(body=b"", content_type="application/octet-stream")
        if parts[:2] == ["openapi", "v3"]:
            return web.json_response({"openapi": "3.0.0", "info": {"title": "fake",
                                                                   "version": "v1"},
                                      "paths": {}, "components": {"schemas": {}}})
        if parts == ["api"]:
            return web.json_response({"kind": "APIVersions", "versions": ["v1"]})
        if parts == ["apis"]:
            return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": gv.split("/")[0],
                 "versions": [{"groupVersion": gv, "version": gv.split("/")[1]}],
                 "preferredVersion": {"groupVersion": gv, "version": gv.split("/")[1]}}
                for gv in GROUPS]})
        if parts == ["api", "v1"]:
            return self._resource_list("v1", CORE)
        if parts[:2] == ["api", "v1"]:
            return await self._resource(request, "v1", CORE, parts[2:])
        gv = "/".join(parts[1:3])
        if parts[:1] == ["apis"] and gv in GROUPS:
            if len(parts) == 3:
                return self._resource_list(gv, GROUPS[gv])
            return await self._resource(request, gv, GROUPS[gv], parts[3:])
        return _status(404, "NotFound", f"the server could not find {request.path}")

    @staticmethod
    def _resource_list(gv: str, table: dict[str, tuple[str, bool]]) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "groupVersion": gv, "resources": [
            {"name": p, "singularName": k.lower(), "namespaced": ns, "kind": k,
             "verbs": ["get", "list", "create", "update", "patch", "delete"]}
            for p, (k, ns) in table.items()]})

    async def _resource(self, request: web.Request, gv: str,
                        table: dict[str, tuple[str, bool]], rest: list[str]
                        ) -> web.StreamResponse:
        ns = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        plural, name = rest[0], (rest[1] if len(rest) > 1 else None)
        if plural not in table:
            return _status(404, "NotFound", f"unknown resource {plural}")
        kind = table[plural][0]
        if plural == "pods" and name and rest[2:] == ["log"] and request.method == "GET":
            text = self.logs.get((ns, name, request.query.get("container", "")))
            if text is None:
                return _status(404, "NotFound", f"no log of pod {name!r}")
            tail = int(request.query.get("tailLines", 0) or 0)
            return web.Response(text="".join(text.splitlines(True)[-tail:] if tail else text))
        body: dict[str, Any] | None = None
        if request.method in ("POST", "PUT"):
            raw = await request.read()
            if "protobuf" in request.content_type:
                if kind != "Secret":
                    return _status(415, "UnsupportedMediaType", "protobuf: Secrets only")
                body = secret_from_protobuf(raw)
            else:
                body = json.loads(raw)
        if request.method == "GET" and name is None:
            hook = self.on_list.get(plural)
            if hook:
                hook(self)
            return self._list(gv, kind, plural, ns, request.query)
        if request.method == "GET":
            get_hook = self.on_get.get(plural)
            if get_hook:
                get_hook(self, ns, name)
            return self._get(plural, ns, name)
        if request.method == "POST":
            assert body is not None
            body.setdefault("metadata", {})
            if ns:
                body["metadata"].setdefault("namespace", ns)
            key = (plural, ns, body["metadata"]["name"])
            if key in self.objects:
                return _status(409, "AlreadyExists", f"{plural} {key[2]!r} already exists")
            body.setdefault("kind", kind)
            body.setdefault("apiVersion", gv)
            if plural == "namespaces":
                body.setdefault("status", {"phase": "Active"})
            return web.json_response(self.put(body), status=201)
        if request.method == "PUT":
            if (plural, ns, name) not in self.objects:
                return _status(404, "NotFound", f"{plural} {name!r} not found")
            assert body is not None
            body.setdefault("kind", kind)
            if ns:
                body["metadata"].setdefault("namespace", ns)
            return web.json_response(self.put(body))
        if request.method == "PATCH":
            current = self.get(plural, ns, name)
            if current is None:
                return _status(404, "NotFound", f"{plural} {name!r} not found")
            patched = _merge_patch(copy.deepcopy(current), await request.json())
            return web.json_response(self.put(patched))
        if request.method == "DELETE":
            return self._delete(plural, ns, name)
        return _status(405, "MethodNotAllowed", request.method)

    def _list(self, gv: str, kind: str, plural: str, ns: str, query: Any) -> web.Response:
        selector = query.get("labelSelector", "")
        fields = [f.split("=", 1) for f in filter(None, query.get("fieldSelector", "").split(","))]
        with self._lock:
            items = [copy.deepcopy(o) for (p, n, _), o in sorted(self.objects.items())
                     if p == plural and (not ns or n == ns)
                     and _matches(selector, o["metadata"].get("labels") or {})
                     and all(str(_field(o, k)) == v for k, v in fields)]
        for item in items:  # list items carry no kind, like the real API
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return web.json_response({"kind": f"{kind}List", "apiVersion": gv,
                                  "metadata": {"resourceVersion": "1"}, "items": items})

    def _get(self, plural: str, ns: str, name: str) -> web.Response:
        with self._lock:
            obj = self.objects.get((plural, ns, name))
            if obj is not None and plural == "namespaces" and name in self._terminating:
                self._terminating[name] -= 1
                if self._terminating[name] < 0:  # gone, with everything in it
                    for key in [k for k in self.objects if k[1] == name or k == (plural, ns, name)]:
                        del self.objects[key]
                    del self._terminating[name]
                    obj = None
        if obj is None:
            return _status(404, "NotFound", f'{plural} "{name}" not found')
        return web.json_response(obj)

    def _delete(self, plural: str, ns: str, name: str) -> web.Response:
        with self._lock:
            obj = self.objects.get((plural, ns, name))
            if obj is None:
                return _status(404, "NotFound", f'{plural} "{name}" not found')
            if plural == "namespaces":
                obj.setdefault("status", {})["phase"] = "Terminating"
                self._terminating[name] = self.terminate_after_gets
            else:
                del self.objects[(plural, ns, name)]
            if plural in ("deployments", "daemonsets", "jobs"):  # garbage collection of pods
                selector = (obj.get("spec") or {}).get("selector", {}).get("matchLabels") or {}
                for key in [k for k, o in self.objects.items() if k[0] == "pods" and k[1] == ns
                            and selector and selector.items()
                            <= (o["metadata"].get("labels") or {}).items()]:
                    del self.objects[key]
        return web.json_response(obj)


def helm_release_secret(*, name: str, namespace: str, version: int, status: str,
                        chart: dict[str, Any], values: dict[str, Any], manifest: str,
                        hooks: list[dict[str, Any]]) -> dict[str, Any]:
    """A Secret as Helm's storage driver writes it (label owner=helm; gzip+base64 release)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
    release = {
        "name": name, "namespace": namespace, "version": version,
        "info": {"first_deployed": now, "last_deployed": now, "deleted": "",
                 "description": "Install complete", "status": status},
        "chart": {"metadata": chart, "templates": [], "values": {}, "files": []},
        "config": values, "manifest": manifest,
        "hooks": [{"name": h["metadata"]["name"], "kind": h["kind"],
                   "path": f"{chart['name']}/templates/tests/test-endpoints.yaml",
                   "manifest": yaml.safe_dump(h), "events": ["test"],
                   "last_run": {"started_at": "", "completed_at": "", "phase": ""},
                   "delete_policies": ["before-hook-creation", "hook-succeeded"]}
                  for h in hooks],
    }
    payload = base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": f"sh.helm.release.v1.{name}.v{version}", "namespace": namespace,
                     "labels": {"name": name, "owner": "helm", "status": status,
                                "version": str(version)}},
        "data": {"release": base64.b64encode(payload.encode()).decode()},
    }
