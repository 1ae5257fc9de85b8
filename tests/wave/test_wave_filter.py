"""The ``jupiter_schedule`` / ``jupiter_predict`` filters, directly and inside Ansible."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from wave_helpers import dnad_app, dnad_profile

REPO = Path(__file__).resolve().parents[2]


def load_filters():
    spec = importlib.util.spec_from_file_location(
        "jupiter_wave_filters", REPO / "filter_plugins" / "jupiter_wave.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FilterModule().filters()


def test_schedule_filter_returns_the_contract_for_inventory_nodes():
    filters = load_filters()
    nodes = [{"name": "home", "role": "home"}, {"name": "edge1"}, {"name": "edge2"}]
    m = filters["jupiter_schedule"](dnad_app().to_dict(), dnad_profile().to_dict(), nodes)
    assert m["schema"] == "jupiter.mapping/v1"
    assert m["algorithm"] == "stream"  # the filter's default: apps are fed streams
    assert set(m["mapping"].values()) <= {"edge1", "edge2"}
    p = filters["jupiter_predict"](dnad_app().to_dict(), dnad_profile().to_dict(), m)
    assert p == m["predicted"]
    plain = filters["jupiter_predict"](dnad_app().to_dict(), dnad_profile().to_dict(),
                                       m["mapping"], "home")
    assert plain == m["predicted"]


def test_filter_errors_are_ansible_errors_naming_the_field():
    filters = load_filters()
    prof = dnad_profile().to_dict()
    prof["links"]["edge1"]["home"]["latency_s"] = -1
    with pytest.raises(AnsibleFilterError, match=r"links\.edge1\.home"):
        filters["jupiter_schedule"](dnad_app().to_dict(), prof, ["edge1"], "heft")
    with pytest.raises(AnsibleFilterError, match="unknown algorithm"):
        filters["jupiter_schedule"](dnad_app().to_dict(), dnad_profile().to_dict(), None, "x")


def test_filter_inside_ansible(tmp_path):
    (tmp_path / "vars.json").write_text(json.dumps({
        "app": dnad_app().to_dict(), "profile": dnad_profile().to_dict(),
        "nodes": ["home", "edge1", "cloud1"]}))
    (tmp_path / "hosts.ini").write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    out = tmp_path / "mapping.json"
    expr = "{{ app | jupiter_schedule(profile, nodes, 'heft', input_bytes=1000) | to_json }}"
    r = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-i",
         str(tmp_path / "hosts.ini"), "-m", "ansible.builtin.copy",
         "-a", f"content={expr} dest={out}", "-e", f"@{tmp_path / 'vars.json'}"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")})
    assert r.returncode == 0, r.stdout + r.stderr
    m = json.loads(out.read_text())
    assert m["algorithm"] == "heft" and m["options"]["input_bytes"] == 1000
    assert set(m["mapping"].values()) <= {"edge1", "cloud1"}
