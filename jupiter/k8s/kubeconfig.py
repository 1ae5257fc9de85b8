"""Which cluster to talk to: the standard kubeconfig rules, made explicit.

Order (as kubectl and helm): an explicit file (the ``kubeconfig`` option), else the
``KUBECONFIG`` environment variable (a path list), else ``~/.kube/config``, else the
in-cluster service account when running in a pod. No fixed file anywhere else.
Helm gets ``--kubeconfig`` only for an explicit file (it reads ``KUBECONFIG`` itself).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jupiter.errors import JupiterError

IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


class NoClusterAccess(JupiterError):
    """No kubeconfig (or in-cluster account) could be found."""


@dataclass(frozen=True)
class KubeAccess:
    """How to reach the cluster. ``kubeconfig`` is None unless a file was given explicitly."""

    source: str  # "option" | "KUBECONFIG" | "~/.kube/config" | "in-cluster" | "none"
    paths: tuple[str, ...] = ()
    kubeconfig: str | None = None
    context: str | None = None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.source != "none"

    def describe(self) -> str:
        where = {"option": "kubeconfig option", "KUBECONFIG": "$KUBECONFIG",
                 "~/.kube/config": "~/.kube/config", "in-cluster": "in-cluster service account",
                 "none": "no kubeconfig"}[self.source]
        files = f" ({os.pathsep.join(self.paths)})" if self.paths else ""
        ctx = f", context {self.context!r}" if self.context else ", current context"
        return f"{where}{files}{ctx}"

    def require(self) -> KubeAccess:
        if not self.usable:
            raise NoClusterAccess(self.problem or "no cluster access configured")
        return self


def resolve(kubeconfig: str | None = None, context: str | None = None,
            env: Mapping[str, str] | None = None, home: str | None = None,
            in_cluster_token: str = IN_CLUSTER_TOKEN) -> KubeAccess:
    """Apply the standard rules; never raises (see :meth:`KubeAccess.require`)."""
    env = os.environ if env is None else env
    home = home if home is not None else str(Path.home())
    context = context or None
    if kubeconfig:
        path = str(Path(kubeconfig).expanduser())
        if not Path(path).is_file():
            return KubeAccess("none", (path,), None, context,
                              f"kubeconfig {path!r} (the kubeconfig option, inventory variable "
                              "jupiter_kubeconfig) does not exist: fix the path or unset it to "
                              "use $KUBECONFIG / ~/.kube/config")
        return KubeAccess("option", (path,), path, context)
    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        present = tuple(p for p in listed if Path(p).expanduser().is_file())
        if present:
            return KubeAccess("KUBECONFIG", present, None, context)
        return KubeAccess("none", tuple(listed), None, context,
                          f"$KUBECONFIG names no existing file ({env['KUBECONFIG']}): fix it, "
                          "or unset it to use ~/.kube/config")
    default = Path(home) / ".kube" / "config"
    if default.is_file():
        return KubeAccess("~/.kube/config", (str(default),), None, context)
    if env.get("KUBERNETES_SERVICE_HOST") and Path(in_cluster_token).is_file():
        return KubeAccess("in-cluster", (), None, None)
    return KubeAccess("none", (), None, context,
                      "no kubeconfig: set $KUBECONFIG, create ~/.kube/config, or set the "
                      "inventory variable jupiter_kubeconfig (and jupiter_kube_context)")


def api_client(access: KubeAccess):  # -> kubernetes.client.ApiClient
    """A kubernetes ApiClient for ``access`` (raises NoClusterAccess when unusable)."""
    from kubernetes import client, config

    access.require()
    if access.source == "in-cluster":
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)
        return client.ApiClient(cfg)
    try:
        # One file (the option) or the KUBECONFIG list / ~/.kube/config, merged as kubectl does.
        return config.new_client_from_config(config_file=os.pathsep.join(access.paths),
                                             context=access.context)
    except config.ConfigException as exc:
        raise NoClusterAccess(f"cannot use {access.describe()}: {exc}") from exc
