"""The preflight role through real ``ansible-playbook`` runs, on good and bad inventories.

A tiny playbook (written next to each test's inventories; it runs only the preflight role
on localhost and, with ``-e preflight_test_out=FILE``, writes the models it computed) is
run with the venv's ansible-playbook and the repository's ansible.cfg (roles and
filter_plugins come from there). All runs start together and are awaited with a timeout,
so the module costs about as much as its slowest run.

(The playbook is generated rather than committed under tests/inventory/: ansible-lint
classifies every YAML file below a folder named ``inventory`` as an inventory file.)
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
TIMEOUT = 180

PLAYBOOK = """\
---
- name: Preflight only
  hosts: localhost
  gather_facts: false
  roles:
    - role: preflight
  tasks:
    - name: Write the computed models
      when: preflight_test_out is defined
      ansible.builtin.copy:
        content: "{{ {'inventory': jupiter_inventory_model, 'app': jupiter_app_model,
          'app_dir': jupiter_app_dir} | to_nice_json }}"
        dest: "{{ preflight_test_out }}"
        mode: "0644"
"""

HOSTS_OK = """\
all:
  children:
    home:
      hosts:
        home: {jupiter_uplink_mbit: 50}
    workers:
      hosts:
        edge1: {jupiter_cpu_share: 0.5, jupiter_uplink_mbit: 10}
        edge2: {}
"""

GROUP_VARS_OK = """\
jupiter_target: local
jupiter_app: diamond
jupiter_deployment: t1
jupiter_scheduler: heft
"""


@dataclass
class Run:
    name: str
    args: list[str]
    out: Path
    proc: subprocess.Popen[str] | None = None
    rc: int | None = None
    stdout: str = ""

    @property
    def models(self) -> dict:
        return json.loads(self.out.read_text())


def write_inventory(root: Path, hosts: str, group_vars: str) -> Path:
    (root / "group_vars" / "all").mkdir(parents=True)
    (root / "hosts.yml").write_text(hosts)
    (root / "group_vars" / "all" / "jupiter.yml").write_text(group_vars)
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("preflight")
    playbook = base / "preflight.yml"
    playbook.write_text(PLAYBOOK)
    apps = base / "apps"
    bad_app = apps / "broken"
    (bad_app / "scripts").mkdir(parents=True)
    (bad_app / "configuration.txt").write_text("2\nfirst 1 true second\nsecond 3 true home\n")
    (bad_app / "scripts" / "first.py").write_text("def task(a, b, c):\n    return []\n")
    pinned = apps / "pinned"
    (pinned / "scripts").mkdir(parents=True)
    (pinned / "app.yaml").write_text(
        "tasks:\n  - name: a\n    pin: edge9\n    children: [home]\nstatic_mapping:\n  a: edge9\n"
    )
    (pinned / "scripts" / "a.py").write_text("def process(item, inputs):\n    return {}\n")
    fake_helm = base / "old-helm"
    fake_helm.write_text("#!/bin/sh\necho 'v3.2.4+g0ad800e'\n")
    fake_helm.chmod(0o755)

    inv_ok = write_inventory(base / "ok", HOSTS_OK, GROUP_VARS_OK)
    inv_bad = write_inventory(
        base / "bad",
        HOSTS_OK.replace("edge2: {}", "edge2: {jupiter_cpu_share: 7}"),
        GROUP_VARS_OK + "jupiter_links: {edge1: {edge9: 5}}\n",
    )
    inv_bad_sched = write_inventory(
        base / "sched", HOSTS_OK, GROUP_VARS_OK.replace("heft", "fastest")
    )
    inv_no_app = write_inventory(
        base / "noapp", HOSTS_OK, GROUP_VARS_OK.replace("jupiter_app: diamond\n", "")
    )
    inv_k8s = write_inventory(
        base / "k8s",
        textwrap.dedent(
            """\
            all:
              children:
                home:
                  hosts:
                    home: {k8s_hostname: master-0}
                workers:
                  hosts:
                    node1: {k8s_hostname: worker-1}
            """
        ),
        GROUP_VARS_OK.replace("local", "kubernetes"),
    )
    inv_two_homes = write_inventory(
        base / "homes",
        HOSTS_OK.replace("home: {jupiter_uplink_mbit: 50}", "home: {}\n        home2: {}"),
        GROUP_VARS_OK,
    )

    spec = {
        "local-default": ["-i", str(REPO / "inventory" / "local")],
        "ok": ["-i", str(inv_ok)],
        "bad-inventory": ["-i", str(inv_bad)],
        "two-homes-bad-app": [
            "-i",
            str(inv_two_homes),
            "-e",
            f"preflight_apps_dir={apps}",
            "-e",
            "jupiter_app=broken",
        ],
        "pin-unknown-node": [
            "-i",
            str(inv_ok),
            "-e",
            f"preflight_apps_dir={apps}",
            "-e",
            "jupiter_app=pinned",
        ],
        "bad-scheduler": ["-i", str(inv_bad_sched)],
        "no-app": ["-i", str(inv_no_app)],
        "k8s": ["-i", str(inv_k8s)],
        "k8s-no-helm": ["-i", str(inv_k8s), "-e", "preflight_helm_binary=/nonexistent/helm"],
        "k8s-old-helm": ["-i", str(inv_k8s), "-e", f"preflight_helm_binary={fake_helm}"],
    }
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    }
    result: dict[str, Run] = {}
    for name, args in spec.items():
        out = base / f"{name}.json"
        run = Run(name, args, out)
        run.proc = subprocess.Popen(
            [
                str(VENV_BIN / "ansible-playbook"),
                str(playbook),
                *args,
                "-e",
                f"preflight_test_out={out}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=base,
        )
        result[name] = run
    for run in result.values():
        assert run.proc is not None
        try:
            run.stdout, _ = run.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.stdout, _ = run.proc.communicate()
            pytest.fail(f"ansible-playbook ({run.name}) did not finish in {TIMEOUT}s")
        run.rc = run.proc.returncode
    return result


def test_embedded_local_inventory_passes(runs: dict[str, Run]) -> None:
    r = runs["local-default"]
    assert r.rc == 0, r.stdout
    m = r.models
    assert m["inventory"]["schema"] == "jupiter.inventory/v1"
    assert m["inventory"]["home"] == "hub"
    assert m["inventory"]["link_mbit"]["cloud1"]["pi1"] == 2
    assert m["app"]["name"] == "network_monitoring_app"
    assert len(m["app"]["tasks"]) == 14
    assert m["app_dir"] == str(REPO / "task_specific_files" / "network_monitoring_app")
    flat = " ".join(r.stdout.split())  # the callback wraps long messages
    assert "app network_monitoring_app (14 tasks, ingress local_pro) on 6 nodes" in flat


def test_good_inventory_sets_the_facts(runs: dict[str, Run]) -> None:
    r = runs["ok"]
    assert r.rc == 0, r.stdout
    m = r.models
    assert m["inventory"]["deployment"] == "t1"
    assert m["inventory"]["workers"] == ["edge1", "edge2"]
    assert m["inventory"]["link_mbit"]["home"]["edge2"] == 50
    assert m["inventory"]["link_mbit"]["edge1"]["home"] == 10
    assert m["app"]["name"] == "diamond" and m["app"]["format"] == "yaml"
    assert "Validating arguments against arg spec 'main'" in r.stdout


def test_bad_inventory_names_host_and_variable(runs: dict[str, Run]) -> None:
    r = runs["bad-inventory"]
    assert r.rc != 0
    assert "invalid inventory" in r.stdout
    assert "[jupiter_cpu_share]: host 'edge2': jupiter_cpu_share must be a number of cores" in (
        r.stdout
    )
    assert "[jupiter_links.edge1.edge9]: jupiter_links.edge1 names unknown node 'edge9'" in r.stdout
    assert not r.out.exists()


def test_inventory_and_app_problems_come_together(runs: dict[str, Run]) -> None:
    r = runs["two-homes-bad-app"]
    assert r.rc != 0
    assert "group 'home' has 2 hosts (home, home2); it must have exactly one" in r.stdout
    assert "broken/configuration.txt:3 [NUM_INPUTS]: task 'second' has 1 parent(s)" in r.stdout
    assert "broken/configuration.txt:3 [script]: task 'second': script scripts/second.py" in (
        r.stdout
    )


def test_argument_spec_rejects_unknown_scheduler(runs: dict[str, Run]) -> None:
    r = runs["bad-scheduler"]
    assert r.rc != 0
    assert "value of jupiter_scheduler must be one of: heft, peft, wave_greedy, random, " in (
        r.stdout
    )
    assert "got: fastest" in r.stdout


def test_argument_spec_requires_the_app(runs: dict[str, Run]) -> None:
    r = runs["no-app"]
    assert r.rc != 0
    assert "missing required arguments: jupiter_app" in r.stdout


def test_kubernetes_target_with_helm(runs: dict[str, Run]) -> None:
    r = runs["k8s"]
    assert (REPO / ".tools" / "bin" / "helm").is_file(), "run `make setup` (helm is missing)"
    assert r.rc == 0, r.stdout
    nodes = r.models["inventory"]["nodes"]
    assert [n["hostname"] for n in nodes] == ["master-0", "worker-1"]
    assert "TASK [preflight : Read the Helm version]" in r.stdout


def test_kubernetes_target_without_helm(runs: dict[str, Run]) -> None:
    r = runs["k8s-no-helm"]
    assert r.rc != 0
    assert "jupiter_target kubernetes needs Helm >= 3.8.0: /nonexistent/helm cannot be run" in (
        r.stdout
    )


def test_kubernetes_target_with_old_helm(runs: dict[str, Run]) -> None:
    r = runs["k8s-old-helm"]
    assert r.rc != 0
    assert "needs Helm >= 3.8.0, found v3.2.4+g0ad800e" in r.stdout


def test_pins_must_name_inventory_nodes(runs: dict[str, Run]) -> None:
    r = runs["pin-unknown-node"]
    assert r.rc != 0
    assert "invalid placement of the app on the inventory" in r.stdout
    assert "task 'a' is pinned to 'edge9', which is not an inventory node" in r.stdout
