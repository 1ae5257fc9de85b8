"""Helm releases through pyhelm3 (an asyncio driver of the Helm 3 CLI).

:func:`ensure_present` installs or upgrades a release only when something would change:
the chart (name, version), the user-supplied values, or the rendered manifests (hooks
included) differ from the deployed revision. :func:`ensure_absent` uninstalls.
In check mode nothing is changed: the chart is rendered with ``helm template`` and
compared with the deployed revision when the cluster can be reached (else with nothing,
and the result says why).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupiter.errors import JupiterError
from jupiter.k8s import manifests
from jupiter.k8s.kubeconfig import KubeAccess

REPO_HELM = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "helm"


class HelmError(JupiterError):
    """A Helm operation failed; the message names the release and Helm's own error."""


def resolve_helm_binary(option: str | None = None) -> str:
    """The helm executable: the option, else the bundle's .tools/bin/helm, else PATH."""
    if option:
        path = Path(option).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        found = shutil.which(option)
        if found:
            return found
        raise HelmError(f"helm binary {option!r} (helm_binary / jupiter_helm_binary) is not an "
                        "executable file: run `make setup` or fix the path")
    if REPO_HELM.is_file() and os.access(REPO_HELM, os.X_OK):
        return str(REPO_HELM)
    found = shutil.which("helm")
    if found:
        return found
    raise HelmError("no helm binary: run `make setup` (installs .tools/bin/helm) or put helm 3 "
                    "on PATH")


def client(helm_binary: str | None, access: KubeAccess | None, timeout_s: int = 300):
    """A pyhelm3 Client for the resolved binary and cluster access."""
    from pyhelm3 import Client

    binary = resolve_helm_binary(helm_binary)
    kubeconfig = access.kubeconfig if access and access.usable else None
    context = access.context if access and access.usable else None
    return Client(executable=binary, kubeconfig=kubeconfig, kubecontext=context,
                  default_timeout=f"{int(timeout_s)}s")


@dataclass
class Release:
    """What to deploy: a local chart directory, values, release name and namespace."""

    name: str
    namespace: str
    chart: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    changed: bool
    action: str  # install | upgrade | none | uninstall | absent
    revision: int | None = None
    status: str | None = None
    diff: manifests.ManifestDiff = field(default_factory=manifests.ManifestDiff)
    objects: list[str] = field(default_factory=list)  # manifests.inventory() of the new render
    compared_with: str = ""  # what the render was compared with
    before: str = ""  # YAML of the deployed objects (for --diff)
    after: str = ""  # YAML of the rendered objects
    values_changed: bool = False
    chart_changed: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed, "action": self.action, "revision": self.revision,
            "status": self.status, "diff_summary": self.diff.summary(),
            "diff_objects": self.diff.to_dict(), "objects": self.objects,
            "compared_with": self.compared_with, "values_changed": self.values_changed,
            "chart_changed": self.chart_changed,
        }


def _err(release: Release | str, what: str, exc: Exception) -> HelmError:
    name = release.name if isinstance(release, Release) else release
    detail = getattr(exc, "stderr", b"")
    text = detail.decode(errors="replace").strip() if isinstance(detail, bytes) else str(exc)
    return HelmError(f"helm {what} of release {name!r} failed: {text or exc}")


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Values as Helm stores them (JSON types)."""
    return json.loads(json.dumps(values or {}, default=str))


async def load_chart(helm, path: str):
    from pyhelm3 import errors

    chart_dir = Path(path).expanduser().resolve()
    if not (chart_dir / "Chart.yaml").is_file():
        raise HelmError(f"chart {path!r} is not a chart directory (no Chart.yaml)")
    try:
        return await helm.get_chart(chart_dir)
    except errors.Error as exc:
        raise _err(chart_dir.name, "show chart", exc) from exc


async def render(helm, release: Release, chart=None, *, is_upgrade: bool = False
                 ) -> list[dict[str, Any]]:
    """``helm template`` of the release (hooks included), as a list of objects."""
    from pyhelm3 import errors

    chart = chart or await load_chart(helm, release.chart)
    try:
        docs = await helm.template_resources(chart, release.name, _plain(release.values),
                                             namespace=release.namespace, is_upgrade=is_upgrade)
        return [d for d in docs if d]
    except errors.Error as exc:
        raise _err(release, "template", exc) from exc


async def current_revision(helm, name: str, namespace: str):
    """The current revision, or None when the release does not exist."""
    from pyhelm3 import errors

    try:
        return await helm.get_current_revision(name, namespace=namespace)
    except errors.ReleaseNotFoundError:
        return None


async def _deployed_objects(revision) -> list[dict[str, Any]]:
    objects = [r for r in await revision.resources() if r]
    objects.extend(h.resource for h in await revision.hooks() if h.resource)
    return objects


def _first_line(exc: Exception) -> str:
    detail = getattr(exc, "stderr", b"")
    text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(exc)
    return (text.strip().splitlines() or [str(exc)])[0]


async def plan(helm, release: Release, *, reachable: bool = True,
               unreachable_reason: str = "", tolerate_unreachable: bool = False
               ) -> tuple[Outcome, Any, Any]:
    """Render and compare; returns (outcome with changed/diff filled, chart, revision).

    With ``tolerate_unreachable`` (check mode) a failing ``helm status`` means the cluster
    is not reachable: the render is compared with nothing and the outcome says why.
    """
    from pyhelm3 import ReleaseRevisionStatus, errors

    chart = await load_chart(helm, release.chart)
    revision = None
    warnings: list[str] = []
    if reachable:
        try:
            revision = await current_revision(helm, release.name, release.namespace)
        except errors.Error as exc:
            if not tolerate_unreachable:
                raise _err(release, "status", exc) from exc
            reachable, unreachable_reason = False, _first_line(exc)
    rendered = await render(helm, release, chart, is_upgrade=revision is not None)
    new = manifests.normalize(rendered, release.namespace)
    outcome = Outcome(changed=True, action="install", objects=manifests.inventory(new),
                      after=manifests.to_yaml(new), warnings=warnings)
    if not reachable:
        outcome.compared_with = f"nothing: the cluster was not reachable ({unreachable_reason})"
        outcome.diff = manifests.diff({}, new)
        return outcome, chart, None
    if revision is None:
        outcome.compared_with = "nothing: the release is not installed"
        outcome.diff = manifests.diff({}, new)
        return outcome, chart, None
    outcome.revision, outcome.status = revision.revision, revision.status.value
    outcome.action = "upgrade"
    try:
        old = manifests.normalize(await _deployed_objects(revision), release.namespace)
        deployed_chart = await revision.chart_metadata()
        deployed_values = await revision.values()
    except errors.Error as exc:
        raise _err(release, "get", exc) from exc
    outcome.before = manifests.to_yaml(old)
    outcome.diff = manifests.diff(old, new)
    outcome.compared_with = f"revision {revision.revision} ({revision.status.value})"
    outcome.chart_changed = (deployed_chart.name, deployed_chart.version) != (
        chart.metadata.name, chart.metadata.version)
    outcome.values_changed = deployed_values != _plain(release.values)
    healthy = revision.status == ReleaseRevisionStatus.DEPLOYED
    if not healthy:
        warnings.append(f"release {release.name!r} is {revision.status.value}: it is re-deployed")
    outcome.changed = (not healthy or outcome.chart_changed or outcome.values_changed
                       or not outcome.diff.empty)
    if not outcome.changed:
        outcome.action = "none"
    return outcome, chart, revision


async def ensure_present(helm, release: Release, *, check_mode: bool = False,
                         reachable: bool = True, unreachable_reason: str = "",
                         atomic: bool = False, wait: bool = True, timeout_s: int = 300,
                         create_namespace: bool = False) -> Outcome:
    """Install or upgrade ``release`` when it differs from what is deployed."""
    from pyhelm3 import errors

    outcome, chart, _ = await plan(helm, release, reachable=reachable,
                                   unreachable_reason=unreachable_reason,
                                   tolerate_unreachable=check_mode)
    if check_mode or not outcome.changed:
        return outcome
    if outcome.status and outcome.status.startswith("pending"):
        # A release stuck in pending-* (an interrupted run) is rolled back or removed first.
        try:
            await helm.get_proceedable_revision(release.name, namespace=release.namespace,
                                                timeout=f"{int(timeout_s)}s")
        except errors.Error as exc:
            raise _err(release, "recovery (rollback of a pending revision)", exc) from exc
    try:
        revision = await helm.install_or_upgrade_release(
            release.name, chart, _plain(release.values), atomic=atomic, wait=wait,
            timeout=f"{int(timeout_s)}s", namespace=release.namespace,
            create_namespace=create_namespace)
    except errors.Error as exc:
        raise _err(release, outcome.action, exc) from exc
    outcome.revision, outcome.status = revision.revision, revision.status.value
    return outcome


async def ensure_absent(helm, name: str, namespace: str, *, check_mode: bool = False,
                        reachable: bool = True, wait: bool = True, timeout_s: int = 300
                        ) -> Outcome:
    """Uninstall the release if it exists (its objects only; the namespace stays)."""
    from pyhelm3 import errors

    unreachable = Outcome(changed=False, action="absent",
                          compared_with="nothing: the cluster was not reachable")
    if not reachable:
        return unreachable
    try:
        revision = await current_revision(helm, name, namespace)
    except errors.Error as exc:
        if not check_mode:
            raise _err(name, "status", exc) from exc
        unreachable.compared_with += f" ({_first_line(exc)})"
        return unreachable
    if revision is None:
        return Outcome(changed=False, action="absent", compared_with="release not installed")
    old = manifests.normalize(await _deployed_objects(revision), namespace)
    outcome = Outcome(changed=True, action="uninstall", revision=revision.revision,
                      status=revision.status.value, objects=manifests.inventory(old),
                      diff=manifests.diff(old, {}), before=manifests.to_yaml(old),
                      compared_with=f"revision {revision.revision}")
    if check_mode:
        return outcome
    try:
        await helm.uninstall_release(name, namespace=namespace, wait=wait,
                                     timeout=f"{int(timeout_s)}s")
    except errors.Error as exc:
        raise _err(name, "uninstall", exc) from exc
    return outcome
