"""Running ansible-playbook from the Kubernetes tests."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from charts_helpers import REPO

PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"


def run_playbook(playbook: Path, *args: str, env: dict[str, str],
                 timeout: int = 300) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0", **env}
    return subprocess.run([str(PLAYBOOK), str(playbook), *args], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=timeout)


def recap(out: str) -> dict[str, int]:
    match = re.search(r"localhost\s+:\s+(.*)", out.split("PLAY RECAP")[-1])
    assert match, out[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}
