"""Chart tests: make the helpers and the fake Kubernetes API (tests/k8s) importable."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent / "k8s"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
