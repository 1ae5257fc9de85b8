"""Manifest normalization and diffs (pure)."""

from __future__ import annotations

import yaml

from jupiter.k8s import manifests


def _cm(name: str, data: dict, annotations: dict | None = None) -> dict:
    meta = {"name": name, "namespace": "jupiter"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def test_keys_and_empty_documents() -> None:
    objs = manifests.normalize([None, {}, _cm("a", {"k": "1"}),
                                {"kind": "Service", "metadata": {"name": "s"}}], "ns")
    assert set(objs) == {"ConfigMap/jupiter/a", "Service/ns/s"}


def test_ignored_data_is_not_compared() -> None:
    ann = {manifests.IGNORE_DATA: "true"}
    old = manifests.normalize([_cm("profile", {"profile.json": "{}"}, ann)])
    new = manifests.normalize([_cm("profile", {"profile.json": '{"complete":true}'}, ann)])
    assert manifests.diff(old, new).empty
    new = manifests.normalize([_cm("profile", {"profile.json": "{}", "extra": "x"}, ann)])
    assert manifests.diff(old, new).changed == {"ConfigMap/jupiter/profile": ["data.extra"]}


def test_secret_values_are_compared_by_digest_and_never_shown() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"token": "c2VjcmV0"}}
    objs = manifests.normalize([secret])
    assert "c2VjcmV0" not in manifests.to_yaml(objs)
    other = manifests.normalize([{**secret, "data": {"token": "b3RoZXI="}}])
    assert manifests.diff(objs, other).changed == {"Secret/s": ["data.token"]}
    assert manifests.diff(objs, manifests.normalize([secret])).empty


def test_diff_summary_lists_added_changed_removed() -> None:
    old = manifests.normalize([_cm("a", {"k": "1"}), _cm("gone", {})])
    new = manifests.normalize([_cm("a", {"k": "2", "n": "3"}), _cm("new", {})])
    d = manifests.diff(old, new)
    assert d.summary() == ["+ ConfigMap/jupiter/new", "~ ConfigMap/jupiter/a: data.k, data.n",
                           "- ConfigMap/jupiter/gone"]


def test_same_values_from_yaml_and_json_compare_equal() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {port: '7700'}\n"
    from_yaml = manifests.normalize([yaml.safe_load(text)])
    from_json = manifests.normalize([{"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "a"}, "data": {"port": "7700"}}])
    assert manifests.diff(from_yaml, from_json).empty


def test_changed_paths_in_lists() -> None:
    old = {"spec": {"containers": [{"args": ["a", "b"]}]}}
    new = {"spec": {"containers": [{"args": ["a", "c"]}]}}
    assert manifests.changed_paths(old, new) == ["spec.containers[0].args[1]"]
    assert manifests.changed_paths({"l": [1]}, {"l": [1, 2]}) == ["l"]


def test_long_change_lists_are_cut_in_the_summary() -> None:
    old = manifests.normalize([_cm("a", {f"k{i}": "1" for i in range(12)})])
    new = manifests.normalize([_cm("a", {f"k{i}": "2" for i in range(12)})])
    (line,) = manifests.diff(old, new).summary()
    assert line.endswith("(+4 more)")


def test_inventory_shows_placement_and_hooks() -> None:
    dep = {"kind": "Deployment", "metadata": {"name": "t"},
           "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": "n1"}}}}}
    ds = {"kind": "DaemonSet", "metadata": {"name": "a"}, "spec": {"template": {"spec": {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]}]}]}}}}}}}
    hook = {"kind": "Pod", "metadata": {"name": "t-test",
                                        "annotations": {"helm.sh/hook": "test"}}}
    assert manifests.inventory(manifests.normalize([dep, ds, hook])) == [
        "DaemonSet a -> n2", "Deployment t -> n1", "Pod t-test (hook: test)"]
