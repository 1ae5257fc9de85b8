"""``jupiter validate`` and ``jupiter import-nodes`` through the installed console script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml
from app_helpers import APPS, CHAIN, JUPITER, REPO, legacy_app

from jupiter.inventory import inventory_from_hostvars


def jupiter(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JUPITER), *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def test_console_script_is_installed() -> None:
    assert JUPITER.is_file(), "run `make setup`: the jupiter console script is missing"
    r = jupiter("--help")
    assert r.returncode == 0
    assert "validate" in r.stdout and "import-nodes" in r.stdout


# ---- validate ----------------------------------------------------------------------------------


def test_validate_network_monitoring_app() -> None:
    r = jupiter("validate", str(APPS / "network_monitoring_app"))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "app network_monitoring_app: valid (Jupiter legacy format, configuration.txt)" in out
    assert "tasks:   14" in out
    assert "edges:   19 (1 to home)" in out
    assert "ingress: local_pro" in out
    assert "sinks:   global_fusion -> home" in out
    assert "sample input: sample_input/ (8 files)" in out
    assert "warnings: 0" in out
    assert len(out.splitlines()) <= 40  # one screen


def test_validate_diamond_json() -> None:
    r = jupiter("validate", str(APPS / "diamond"), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["valid"] is True
    assert data["summary"]["format"] == "yaml"
    assert data["summary"]["tasks"] == 4
    assert data["app"]["schema"] == "jupiter.app/v1"
    assert [t["name"] for t in data["app"]["tasks"]] == [
        "tokenize",
        "count_words",
        "word_lengths",
        "report",
    ]
    assert data["problems"] == [] and data["warnings"] == []


def test_validate_lists_every_problem_with_file_and_line(tmp_path: Path) -> None:
    root = legacy_app(tmp_path / "bad", "3\na 1 true b\nb 2 true homee\nc 1 perhaps home\n")
    r = jupiter("validate", str(root))
    assert r.returncode == 1
    cfg = f"{root}/configuration.txt"
    assert f"app {root}: INVALID, 3 problem(s)" in r.stdout
    assert (
        f"{cfg}:3 [children]: task 'b' has unknown child 'homee' (did you mean 'home'?)" in r.stdout
    )
    assert f"{cfg}:3 [NUM_INPUTS]: task 'b' has 1 parent(s) (a) but NUM_INPUTS is 2" in r.stdout
    assert f"{cfg}:4 [FLAG]: task 'c': FLAG must be true" in r.stdout


def test_validate_json_failure(tmp_path: Path) -> None:
    root = legacy_app(tmp_path / "bad", CHAIN, scripts={"scripts/c.py": None})
    r = jupiter("validate", str(root), "--json")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["valid"] is False
    assert data["problems"] == [
        {
            "file": f"{root}/configuration.txt",
            "line": 4,
            "field": "script",
            "severity": "error",
            "message": f"task 'c': script scripts/c.py not found in {root.resolve()}; "
            "create it or fix the task name",
        }
    ]


def test_validate_relative_path_keeps_user_spelling(tmp_path: Path) -> None:
    legacy_app(tmp_path / "rel", CHAIN, scripts={"scripts/b.py": None})
    r = jupiter("validate", "rel", cwd=tmp_path)
    assert r.returncode == 1
    assert "rel/configuration.txt:3 [script]" in r.stdout


def test_validate_missing_folder(tmp_path: Path) -> None:
    r = jupiter("validate", str(tmp_path / "nothing"))
    assert r.returncode == 1
    assert "app folder not found" in r.stdout


# ---- import-nodes ------------------------------------------------------------------------

NODES = """home ubuntu-home-01 root s3cretPassw0rd
node1 edge-pi-01 root an0therSecret
node2 cloud-vm-02
# a comment
node3 cloud-vm-03 ubuntu
"""


def _as_ansible(inventory_text: str) -> tuple[dict, dict]:
    """groups and hostvars as Ansible would give them for a YAML inventory like ours."""
    data = yaml.safe_load(inventory_text)["all"]
    shared = data.get("vars", {})
    groups: dict[str, list[str]] = {"all": []}
    hostvars: dict[str, dict] = {}
    for group, body in data["children"].items():
        groups[group] = list(body["hosts"])
        for host, hv in body["hosts"].items():
            groups["all"].append(host)
            hostvars[host] = {**shared, **(hv or {})}
    return groups, hostvars


def test_import_nodes_to_stdout(tmp_path: Path) -> None:
    src = tmp_path / "nodes.txt"
    src.write_text(NODES)
    r = jupiter("import-nodes", str(src))
    assert r.returncode == 0, r.stderr
    assert "s3cret" not in r.stdout and "an0ther" not in r.stdout
    assert f"{src}:1: warning: a user name and password are given for 'home'" in r.stderr
    assert f"{src}:2: warning: a user name and password are given for 'node1'" in r.stderr
    assert f"{src}:5: warning: user name 'ubuntu' for 'node3' is ignored" in r.stderr
    groups, hostvars = _as_ansible(r.stdout)
    assert groups["home"] == ["home"]
    assert groups["workers"] == ["node1", "node2", "node3"]
    assert all(set(hv) == {"jupiter_target", "k8s_hostname"} for hv in hostvars.values())
    inv = inventory_from_hostvars(groups, hostvars)
    assert inv.target == "kubernetes"
    assert inv.home.hostname == "ubuntu-home-01"
    assert [w.hostname for w in inv.workers] == ["edge-pi-01", "cloud-vm-02", "cloud-vm-03"]


def test_import_nodes_to_file_and_force(tmp_path: Path) -> None:
    src = tmp_path / "nodes.txt"
    src.write_text("home k8s-a\nnode1 k8s-b\n")
    out = tmp_path / "inventory" / "mycluster" / "hosts.yml"
    r = jupiter("import-nodes", str(src), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stderr and "1 worker(s)" in r.stderr
    text = out.read_text()
    assert text.startswith("---\n")
    assert "jupiter_target: kubernetes" in text
    lint = subprocess.run(
        [str(JUPITER.parent / "yamllint"), "-s", "-c", str(REPO / ".yamllint"), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout
    r = jupiter("import-nodes", str(src), "-o", str(out))
    assert r.returncode == 1 and "exists; use --force" in r.stderr
    src.write_text("home k8s-a\nnode1 k8s-b\nnode2 k8s-c\n")
    r = jupiter("import-nodes", str(src), "-o", str(out), "--force")
    assert r.returncode == 0
    assert "node2" in out.read_text()


def test_import_nodes_errors(tmp_path: Path) -> None:
    src = tmp_path / "nodes.txt"
    src.write_text("home Bad_Host\nnode1 k8s-b\nnode1 k8s-c\nhome k8s-d\nlonely\n")
    r = jupiter("import-nodes", str(src))
    assert r.returncode == 1
    err = r.stderr
    assert f"{src}:1: 'Bad_Host' is not a valid Kubernetes node name" in err
    assert f"{src}:3: tag 'node1' is used twice (first on line 2)" in err
    assert f"{src}:4: only the first line may be the home node" in err
    assert f"{src}:5: expected '<tag> <kubernetes-hostname>', got 'lonely'" in err
    assert r.stdout == ""


def test_import_nodes_needs_a_worker(tmp_path: Path) -> None:
    src = tmp_path / "nodes.txt"
    src.write_text("home k8s-a\n")
    r = jupiter("import-nodes", str(src))
    assert r.returncode == 1
    assert "only the home node is listed" in r.stderr


def test_import_nodes_not_utf8(tmp_path: Path) -> None:
    src = tmp_path / "nodes.txt"
    src.write_bytes(b"home k8s-a\nnode1 k8s-\xff\n")
    r = jupiter("import-nodes", str(src))
    assert r.returncode == 1
    assert f"{src}:2: not UTF-8 text" in r.stderr
