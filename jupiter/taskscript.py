"""Importing a task script by its file path (used by CIRCE's runner and DRUPE's profiler)."""

from __future__ import annotations

import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from jupiter.errors import JupiterError


def import_script(path: Path, module_name: str, label: str) -> ModuleType:
    """Import ``path`` once as ``module_name``; its folder goes on ``sys.path`` first so
    that a script may import its siblings (as Jupiter's scripts do).

    Raises :class:`JupiterError` starting with ``label`` when the import fails; a failed
    import leaves nothing in ``sys.modules``.
    """
    if module_name in sys.modules:
        return sys.modules[module_name]
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise JupiterError(f"{label}: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[module_name]
        msg = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        raise JupiterError(f"{label}: importing {path} failed: {msg}") from exc
    return module
