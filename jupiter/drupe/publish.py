"""Where home publishes the profile: pluggable by config ``publish``.

* ``{"kind": "file"}`` (local target): ``<state_dir>/profile.json`` (or ``path``), written
  atomically (temp file in the same folder, fsync, rename), so readers never see half a file.
* ``{"kind": "configmap", "name": ..., "namespace": ..., "key": "profile.json"}``
  (Kubernetes): a ConfigMap in home's own namespace, written with the in-cluster service
  account (namespace-scoped Role: get/create/update configmaps).

Both can :meth:`load` what they published before, so a restarted home keeps the execution
profile it was given.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from jupiter.errors import JupiterError

CONFIGMAP_LIMIT = 1_000_000  # bytes; the API server refuses bigger ConfigMaps (1 MiB incl. meta)


class PublishError(JupiterError):
    """The profile could not be published (reason and what to do in the message)."""


class Publisher(Protocol):
    def publish(self, doc: dict[str, Any]) -> None: ...

    def load(self) -> dict[str, Any] | None: ...

    def describe(self) -> str: ...


class FilePublisher:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"file {self.path}"

    def publish(self, doc: dict[str, Any]) -> None:
        data = json.dumps(doc, indent=2, sort_keys=True).encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".profile-", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o644)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise PublishError(f"cannot write the profile to {self.path}: {exc.strerror}; "
                               "check the state folder exists and is writable") from exc

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None


class ConfigMapPublisher:
    """Writes the profile as JSON under ``key`` of ConfigMap ``namespace/name``.

    ``api`` is a ``kubernetes.client.CoreV1Api`` (or an object with the same methods); by
    default one built from the in-cluster service account on first use.
    """

    def __init__(self, name: str, namespace: str, key: str = "profile.json",
                 api: Any = None, labels: dict[str, str] | None = None) -> None:
        self.name, self.namespace, self.key = name, namespace, key
        self._api = api
        self.labels = labels or {"app.kubernetes.io/name": "drupe",
                                 "app.kubernetes.io/component": "profile",
                                 "app.kubernetes.io/part-of": "jupiter"}

    def describe(self) -> str:
        return f"configmap {self.namespace}/{self.name}"

    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException as exc:
                raise PublishError(f"{self.describe()}: not running in a cluster ({exc}); use "
                                   "publish kind 'file' outside Kubernetes") from exc
            self._api = client.CoreV1Api()
        return self._api

    def _body(self, text: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
            "data": {self.key: text},
        }

    def publish(self, doc: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        if len(text.encode("utf-8")) > CONFIGMAP_LIMIT:
            raise PublishError(f"{self.describe()}: profile is {len(text)} bytes, over the "
                               f"ConfigMap limit of {CONFIGMAP_LIMIT}; use fewer nodes/tasks")
        body = self._body(text)
        try:
            try:
                self.api.replace_namespaced_config_map(self.name, self.namespace, body)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self.api.create_namespaced_config_map(self.namespace, body)
        except ApiException as exc:
            hint = (" (the drupe ServiceAccount needs a Role with get/create/update on "
                    "configmaps in this namespace)" if exc.status == 403 else "")
            raise PublishError(f"{self.describe()}: API error {exc.status} {exc.reason}{hint}"
                               ) from exc

    def load(self) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            cm = self.api.read_namespaced_config_map(self.name, self.namespace)
        except (ApiException, PublishError):
            return None
        data = cm.get("data") if isinstance(cm, dict) else getattr(cm, "data", None)
        try:
            doc = json.loads((data or {}).get(self.key, ""))
        except json.JSONDecodeError:
            return None
        return doc if isinstance(doc, dict) else None


def make_publisher(spec: dict[str, Any], state_dir: str, api: Any = None) -> Publisher:
    """A publisher from the config's ``publish`` mapping (validated by the config module)."""
    kind = spec.get("kind")
    if kind == "file":
        return FilePublisher(spec.get("path") or Path(state_dir) / "profile.json")
    if kind == "configmap":
        return ConfigMapPublisher(spec["name"], spec["namespace"],
                                  spec.get("key", "profile.json"), api=api)
    raise PublishError(f"publish: unknown kind {kind!r} (file | configmap)")
