"""Helpers to write small apps into a temporary folder for the app tests."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "task_specific_files"
JUPITER = REPO / ".venv" / "bin" / "jupiter"

LEGACY_SCRIPT = textwrap.dedent(
    """
    import os


    def task(inputs, pathin, pathout):
        names = [inputs] if isinstance(inputs, str) else inputs
        out = os.path.join(pathout, names[0] + ".out")
        with open(out, "w") as f:
            f.write("ok")
        return [out]
    """
).lstrip()

PROCESS_SCRIPT = textwrap.dedent(
    """
    def process(item, inputs):
        return {"out.txt": b"".join(inputs[k] for k in sorted(inputs))}
    """
).lstrip()


def write(root: Path, files: dict[str, str | bytes | None]) -> None:
    for rel, content in files.items():
        if content is None:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def legacy_task_names(config: str) -> list[str]:
    """Task names of the task-shaped lines of a configuration.txt (for default scripts)."""
    names = []
    for line in config.splitlines():
        tokens = line.split()
        if len(tokens) >= 3 and re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", tokens[0]):
            names.append(tokens[0])
    return names


def legacy_app(
    root: Path,
    config: str | bytes,
    scripts: dict[str, str | bytes | None] | None = None,
    extra: dict[str, str | bytes | None] | None = None,
    sample: bool = True,
) -> Path:
    """Write a legacy app: configuration.txt, a valid scripts/<task>.py per task line
    (unless ``scripts`` overrides it; ``None`` = leave the script out), sample_input/."""
    root.mkdir(parents=True, exist_ok=True)
    write(root, {"configuration.txt": config})
    text = config.decode("utf-8", "replace") if isinstance(config, bytes) else config
    scripts = dict(scripts or {})
    files: dict[str, str | bytes | None] = {}
    for name in legacy_task_names(text):
        key = f"scripts/{name}.py"
        files[key] = scripts.pop(key, LEGACY_SCRIPT)
    files.update(scripts)
    if sample:
        files["sample_input/1item.txt"] = "hello\n"
    files.update(extra or {})
    write(root, files)
    return root


def yaml_app(
    root: Path,
    app_yaml: str | bytes,
    scripts: dict[str, str | bytes | None] | None = None,
    extra: dict[str, str | bytes | None] | None = None,
    sample: bool = True,
) -> Path:
    """Write a YAML app: app.yaml, a valid process script per '- name: x' (unless
    overridden in ``scripts``), sample_input/."""
    root.mkdir(parents=True, exist_ok=True)
    write(root, {"app.yaml": app_yaml})
    text = app_yaml.decode("utf-8", "replace") if isinstance(app_yaml, bytes) else app_yaml
    scripts = dict(scripts or {})
    files: dict[str, str | bytes | None] = {}
    for name in re.findall(r"^\s*-\s*name:\s*([A-Za-z0-9_.-]+)\s*$", text, re.M):
        key = f"scripts/{name}.py"
        files[key] = scripts.pop(key, PROCESS_SCRIPT)
    files.update(scripts)
    if sample:
        files["sample_input/1item.txt"] = "hello\n"
    files.update(extra or {})
    write(root, files)
    return root


CHAIN = "3\na 1 true b\nb 1 true c\nc 1 true home\n"
DIAMOND_YAML = textwrap.dedent(
    """
    name: tiny
    tasks:
      - name: a
        children: [b, c]
      - name: b
        children: [d]
      - name: c
        children: [d]
      - name: d
        children: [home]
    """
).lstrip()
