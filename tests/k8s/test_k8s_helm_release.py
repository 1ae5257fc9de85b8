"""Helm releases through pyhelm3 and the real helm binary (jupiter.k8s.helm).

Against no cluster (check mode renders with helm template) and against the fake API on
loopback, where helm really installs, upgrades and uninstalls: its release records and
objects are stored by the fake. The fake runs no controllers, so helm's --wait is not
exercised here (the readiness wait is tested in test_k8s_cluster.py).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from pathlib import Path

import pytest
import yaml
from charts_helpers import CHARTS, deployment_values, template, values_for
from k8s_fakeapi import FakeKube, helm_release_secret

from jupiter.k8s import helm, kubeconfig


@pytest.fixture(scope="module")
def values() -> dict:
    return deployment_values("diamond")


def _release(values: dict, component: str = "wave", **overrides) -> helm.Release:
    return helm.Release(f"jupiter-{component}", "jupiter", str(CHARTS / component),
                        values_for(values, component, **overrides))


def _client(access: kubeconfig.KubeAccess | None = None):
    return helm.client(None, access)


def _namespace(fake: FakeKube) -> None:
    fake.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "jupiter"},
              "status": {"phase": "Active"}})


def test_render_through_pyhelm3_is_helm_template(values: dict) -> None:
    release = _release(values, "circe")
    objects = asyncio.run(helm.render(_client(), release))
    assert objects == template("circe", release.values)


def test_chart_path_must_be_a_chart(tmp_path: Path, values: dict) -> None:
    release = helm.Release("x", "jupiter", str(tmp_path), {})
    with pytest.raises(helm.HelmError, match="not a chart directory"):
        asyncio.run(helm.render(_client(), release))


def test_template_errors_name_the_release(values: dict) -> None:
    release = _release(values, "wave")
    release.values["wave"]["node"] = "nowhere"
    with pytest.raises(helm.HelmError, match="helm template of release 'jupiter-wave' failed"):
        asyncio.run(helm.render(_client(), release))


def test_helm_binary_resolution(tmp_path: Path) -> None:
    assert helm.resolve_helm_binary(None) == str(helm.REPO_HELM)
    with pytest.raises(helm.HelmError, match="is not an executable file"):
        helm.resolve_helm_binary(str(tmp_path / "helm"))


def test_check_mode_without_any_cluster_renders_everything(values: dict) -> None:
    access = kubeconfig.resolve(None, None, env={}, home="/nonexistent")
    outcome = asyncio.run(helm.ensure_present(
        _client(access), _release(values, "drupe"), check_mode=True, reachable=access.usable,
        unreachable_reason=access.problem))
    assert outcome.changed and outcome.action == "install"
    assert outcome.compared_with.startswith("nothing: the cluster was not reachable (no kube")
    assert "+ Deployment/jupiter/jupiter-drupe-home" in outcome.diff.summary()
    assert "Deployment jupiter-drupe-home -> control-1" in outcome.objects


def test_check_mode_with_an_unreachable_api(tmp_path: Path, values: dict) -> None:
    fake = FakeKube()
    fake.url = "http://127.0.0.1:9"
    access = kubeconfig.resolve(str(fake.kubeconfig(tmp_path / "kc")), None, env={})
    outcome = asyncio.run(helm.ensure_present(_client(access), _release(values),
                                              check_mode=True))
    assert outcome.changed and "the cluster was not reachable" in outcome.compared_with
    with pytest.raises(helm.HelmError, match="helm status of release 'jupiter-wave' failed"):
        asyncio.run(helm.ensure_present(_client(access), _release(values)))


def test_install_unchanged_upgrade_uninstall(fake_kube: FakeKube, kubeconfig: Path,
                                            values: dict) -> None:
    _namespace(fake_kube)
    client = _client(helm_access())
    first = asyncio.run(helm.ensure_present(client, _release(values), wait=False))
    assert (first.changed, first.action, first.revision, first.status) == (
        True, "install", 1, "deployed")
    assert fake_kube.get("deployments", "jupiter", "jupiter-wave-home") is not None

    again = asyncio.run(helm.ensure_present(client, _release(values), wait=False))
    assert (again.changed, again.action, again.revision) == (False, "none", 1)
    assert again.compared_with == "revision 1 (deployed)"

    changed = _release(values, wave={"port": 7711})
    preview = asyncio.run(helm.ensure_present(client, changed, check_mode=True))
    assert preview.changed and preview.action == "upgrade" and preview.values_changed
    assert "~ Service/jupiter/jupiter-wave-home: spec.ports[0].port" in preview.diff.summary()
    assert preview.revision == 1  # nothing was upgraded
    upgraded = asyncio.run(helm.ensure_present(client, changed, wait=False))
    assert (upgraded.changed, upgraded.revision) == (True, 2)

    gone_preview = asyncio.run(helm.ensure_absent(client, "jupiter-wave", "jupiter",
                                                  check_mode=True))
    assert gone_preview.changed and fake_kube.get("deployments", "jupiter",
                                                  "jupiter-wave-home") is not None
    gone = asyncio.run(helm.ensure_absent(client, "jupiter-wave", "jupiter", wait=True))
    assert gone.changed and gone.action == "uninstall"
    assert "- Deployment/jupiter/jupiter-wave-home" in gone.diff.summary()
    assert not [k for k in fake_kube.objects if k[1] == "jupiter"]
    absent = asyncio.run(helm.ensure_absent(client, "jupiter-wave", "jupiter"))
    assert not absent.changed and absent.action == "absent"


def test_token_survives_an_upgrade(fake_kube: FakeKube, kubeconfig: Path,
                                   values: dict) -> None:
    _namespace(fake_kube)
    client = _client(helm_access())
    asyncio.run(helm.ensure_present(client, _release(values, "drupe"), wait=False))
    token = fake_kube.get("secrets", "jupiter", "jupiter-token")["data"]["token"]
    assert len(base64.b64decode(token)) == 48
    bigger = _release(values, "drupe", resources={"home": {"limits": {"memory": "1Gi"}}})
    outcome = asyncio.run(helm.ensure_present(client, bigger, wait=False))
    assert outcome.action == "upgrade" and outcome.revision == 2
    assert fake_kube.get("secrets", "jupiter", "jupiter-token")["data"]["token"] == token


def test_a_failed_release_is_deployed_again(fake_kube: FakeKube, kubeconfig: Path,
                                           values: dict) -> None:
    release = _release(values)
    docs = template("wave", release.values)
    hooks = [d for d in docs if "helm.sh/hook" in (d["metadata"].get("annotations") or {})]
    manifest = "".join("---\n" + yaml.safe_dump(d) for d in docs if d not in hooks)
    chart = yaml.safe_load((CHARTS / "wave" / "Chart.yaml").read_text())
    fake_kube.put(helm_release_secret(name="jupiter-wave", namespace="jupiter", version=1,
                                      status="failed", chart=chart,
                                      values=json.loads(json.dumps(release.values)),
                                      manifest=manifest, hooks=hooks))
    outcome = asyncio.run(helm.ensure_present(_client(helm_access()), copy.deepcopy(release),
                                              check_mode=True))
    assert outcome.changed and outcome.diff.empty and outcome.status == "failed"
    assert any("is failed: it is re-deployed" in w for w in outcome.warnings)


def helm_access() -> kubeconfig.KubeAccess:
    return kubeconfig.resolve()
