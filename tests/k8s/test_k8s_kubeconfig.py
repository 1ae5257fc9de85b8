"""Kubeconfig resolution follows the standard rules; the client reaches the cluster."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from k8s_fakeapi import FakeKube

from jupiter.k8s import kubeconfig


def _file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("apiVersion: v1\nkind: Config\n")
    return str(path)


def test_explicit_option_wins(tmp_path: Path) -> None:
    given = _file(tmp_path / "given")
    env = {"KUBECONFIG": _file(tmp_path / "env")}
    _file(tmp_path / ".kube" / "config")
    access = kubeconfig.resolve(given, "ctx", env=env, home=str(tmp_path))
    assert (access.source, access.kubeconfig, access.context) == ("option", given, "ctx")


def test_missing_explicit_file_is_a_clear_problem(tmp_path: Path) -> None:
    access = kubeconfig.resolve(str(tmp_path / "nope"), None, env={}, home=str(tmp_path))
    assert not access.usable and "jupiter_kubeconfig" in access.problem
    with pytest.raises(kubeconfig.NoClusterAccess, match="does not exist"):
        access.require()


def test_kubeconfig_env_list_then_home(tmp_path: Path) -> None:
    a, b = _file(tmp_path / "a"), _file(tmp_path / "b")
    env = {"KUBECONFIG": os.pathsep.join([a, str(tmp_path / "missing"), b])}
    access = kubeconfig.resolve(None, None, env=env, home=str(tmp_path))
    assert access.source == "KUBECONFIG" and access.paths == (a, b)
    assert access.kubeconfig is None  # helm reads $KUBECONFIG itself
    home_cfg = _file(tmp_path / ".kube" / "config")
    access = kubeconfig.resolve(None, None, env={}, home=str(tmp_path))
    assert (access.source, access.paths) == ("~/.kube/config", (home_cfg,))


def test_kubeconfig_env_with_no_file_is_a_problem(tmp_path: Path) -> None:
    access = kubeconfig.resolve(None, None, env={"KUBECONFIG": str(tmp_path / "x")},
                                home=str(tmp_path))
    assert not access.usable and "$KUBECONFIG names no existing file" in access.problem


def test_in_cluster_then_nothing(tmp_path: Path) -> None:
    token = _file(tmp_path / "sa" / "token")
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    access = kubeconfig.resolve(None, None, env=env, home=str(tmp_path), in_cluster_token=token)
    assert access.source == "in-cluster"
    access = kubeconfig.resolve(None, None, env={}, home=str(tmp_path))
    assert access.source == "none" and "set $KUBECONFIG" in access.problem


def test_api_client_talks_to_the_selected_context(fake_kube: FakeKube, tmp_path: Path) -> None:
    from kubernetes import client

    path = fake_kube.kubeconfig(tmp_path / "kc", context="lab")
    access = kubeconfig.resolve(str(path), "lab", env={}, home=str(tmp_path))
    api = kubeconfig.api_client(access)
    version = client.VersionApi(api).get_code()
    assert version.git_version == "v1.33.0"
    assert any(r.startswith("GET /version") for r in fake_kube.requests)
    with pytest.raises(kubeconfig.NoClusterAccess, match="cannot use"):
        kubeconfig.api_client(kubeconfig.resolve(str(path), "no-such-context", env={},
                                                 home=str(tmp_path)))
