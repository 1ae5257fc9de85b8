"""`ansible-playbook deploy.yml --check -i inventory/cluster.example` offline (no cluster, no
docker): it must complete and show the image builds, the schedule and every manifest."""

from __future__ import annotations

import json
import re
from pathlib import Path

from charts_helpers import REPO
from k8s_helpers import recap, run_playbook

OFFLINE = {"KUBECONFIG": ""}


def test_deploy_check_against_the_example_cluster_inventory(tmp_path: Path) -> None:
    result = run_playbook(REPO / "deploy.yml", "--check", "-i", "inventory/cluster.example",
                          "-e", f"jupiter_state_root={tmp_path / 'state'}",
                          env={**OFFLINE, "HOME": str(tmp_path)}, timeout=600)
    out = result.stdout
    assert result.returncode == 0, out[-5000:] + result.stderr[-2000:]
    assert recap(out)["failed"] == 0
    # images: the commands, not run
    assert "images (build on, check mode: not run):" in out
    assert re.search(r"docker buildx build --platform linux/amd64,linux/arm64 --file \S+"
                     r"/images/runtime/Dockerfile\s+--tag registry.example.org/jupiter-team/"
                     r"jupiter-runtime:0.1.0 --push", out)
    # the schedule (nominal profile) and every release's manifests, pinned to k8s hostnames
    assert "nominal profile from the inventory (check mode: nothing measured)" in out
    assert "local_pro -> " in out
    for line in ("DaemonSet jupiter-drupe-agent-edge1 -> rpi-lab-1",
                 "Deployment jupiter-drupe-home -> control-1",
                 "Deployment jupiter-wave-home -> control-1",
                 "Deployment jupiter-circe-home -> control-1"):
        assert line in out
    assert len(re.findall(r"Deployment jupiter-circe-(?!home)\S+ -> \S+", out)) == 14
    # the execution profiler: one Job per node (drupe_exec_mode per_node), pinned
    assert re.search(r"Job jupiter-drupe-exec-edge1-[0-9a-f]{8} -> rpi-lab-1", out)
    assert len(re.findall(r"Job jupiter-drupe-exec-\S+ -> \S+", out)) == 5
    assert not (tmp_path / ".kube").exists()


def test_images_stage_skips_the_build_when_asked(tmp_path: Path) -> None:
    result = run_playbook(REPO / "playbooks" / "images.yml", "--check", "-i",
                          "inventory/cluster.example", "-e", "jupiter_build_images=false",
                          "-e", '{"jupiter_image_platforms": ["linux/arm64"]}',
                          env={**OFFLINE, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "images (build skipped: jupiter_build_images is false" in result.stdout
    assert "--platform linux/arm64 " in result.stdout


def test_images_stage_needs_a_registry(tmp_path: Path) -> None:
    result = run_playbook(REPO / "playbooks" / "images.yml", "--check", "-i",
                          "inventory/cluster.example", "-e", "jupiter_image_registry=",
                          env={**OFFLINE, "HOME": str(tmp_path)})
    assert result.returncode != 0
    assert "jupiter_image_registry=\"\" (required, e.g. ghcr.io/example)" in result.stdout


def test_check_mode_ignores_a_stored_profile_of_other_nodes(tmp_path: Path) -> None:
    """The state folder holds a profile of other nodes (another inventory under the same
    deployment name): the preview says so and schedules on the nominal profile."""
    stored = tmp_path / "state" / "jupiter" / "profile.json"
    stored.parent.mkdir(parents=True)
    stored.write_text(json.dumps({"schema": "jupiter.profile/v1", "complete": True,
                                  "nodes": {"hub": {"speed": 1.0}, "cloud1": {"speed": 1.0}},
                                  "links": {}, "exec": {}}))
    result = run_playbook(REPO / "deploy.yml", "--check", "-i", "inventory/cluster.example",
                          "--tags", "preflight,drupe,wave",
                          "-e", f"jupiter_state_root={tmp_path / 'state'}",
                          env={**OFFLINE, "HOME": str(tmp_path)}, timeout=600)
    out = result.stdout
    assert result.returncode == 0, out[-5000:] + result.stderr[-2000:]
    shown = re.sub(r"\s+", " ", out)  # the debug output wraps long lines
    assert (f"nominal profile from the inventory (check mode: the stored profile {stored} "
            "lacks home, cloud2, edge1, edge2)") in shown
    assert "local_pro -> " in out
