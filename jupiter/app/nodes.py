"""Import Jupiter's ``nodes.txt`` into an Ansible inventory for the kubernetes target.

``nodes.txt`` has one node per line: ``<tag> <kubernetes-hostname> [<user> <password>]``.
The first line is the home node (tag ``home``); the others are workers (``node1``,
``node2``, ...). The tag becomes the inventory host name (so Jupiter's static mapping
lines ``<task> <node>`` keep working) and the hostname becomes ``k8s_hostname``. User
names and passwords of older files are ignored with a warning and never written: the
bundle uses neither ssh nor passwords.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePath

from jupiter.errors import InvalidInput, Problem

HOST_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
K8S_NODE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PLAIN_YAML = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_YAML_SPECIAL = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})


def _yaml_scalar(value: str) -> str:
    """A YAML scalar for ``value``: plain when unambiguous, else a JSON (double) quoted string."""
    if (
        _PLAIN_YAML.match(value)
        and value.lower() not in _YAML_SPECIAL
        and not re.match(r"^[-+]?(\d[\d_]*)?(\.\d*)?([eE][-+]?\d+)?$", value)
    ):
        return value
    return json.dumps(value)


def import_nodes(text: str, source: str = "nodes.txt") -> tuple[str, list[Problem]]:
    """Return ``(inventory hosts.yml text, warnings)``; raise InvalidInput on bad input."""
    problems: list[Problem] = []

    def err(msg: str, line: int | None = None) -> None:
        problems.append(Problem(source, msg, line))

    def warn(msg: str, line: int | None = None) -> None:
        problems.append(Problem(source, msg, line, severity="warning"))

    entries: list[tuple[int, str, str]] = []  # (line, tag, hostname)
    tags: dict[str, int] = {}
    hostnames: dict[str, int] = {}
    count = 0
    for no, raw in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = line.split()
        if len(tokens) < 2:
            err(f"expected '<tag> <kubernetes-hostname>', got {line!r}", no)
            continue
        tag, hostname = tokens[0], tokens[1]
        first = count == 0
        count += 1
        if len(tokens) >= 4:
            warn(
                f"a user name and password are given for {tag!r}; they are ignored and not "
                "written (the bundle uses no ssh and no passwords)",
                no,
            )
        elif len(tokens) == 3:
            warn(f"user name {tokens[2]!r} for {tag!r} is ignored", no)
        bad = False
        if not HOST_NAME.match(tag):
            err(
                f"tag {tag!r} cannot be an inventory host name; use letters, digits, '_', "
                "'-' and '.'",
                no,
            )
            bad = True
        if not (len(hostname) <= 253 and K8S_NODE.match(hostname)):
            err(
                f"{hostname!r} is not a valid Kubernetes node name (lower-case DNS name); "
                "give the name `kubectl get nodes` shows",
                no,
            )
            bad = True
        if tag in tags:
            err(f"tag {tag!r} is used twice (first on line {tags[tag]}); tags must be unique", no)
            bad = True
        if tag == "home" and not first:
            err("only the first line may be the home node (tag 'home'); move it to the top", no)
            bad = True
        if hostname in hostnames:
            warn(
                f"Kubernetes node {hostname!r} is listed twice (first on line "
                f"{hostnames[hostname]})",
                no,
            )
        if first and tag != "home" and not bad:
            warn(
                f"the first line is the home node; its tag is {tag!r} (Jupiter uses 'home'), "
                f"so the home host is named {tag!r}",
                no,
            )
        tags.setdefault(tag, no)
        hostnames.setdefault(hostname, no)
        if not bad:
            entries.append((no, tag, hostname))
    if not entries and not any(p.severity == "error" for p in problems):
        err("no nodes: expected one '<tag> <kubernetes-hostname>' line per node, home first", 1)
    elif len(entries) == 1 and not any(p.severity == "error" for p in problems):
        err(
            "only the home node is listed; add at least one worker line "
            "'<tag> <kubernetes-hostname>'",
            entries[0][0],
        )
    if any(p.severity == "error" for p in problems):
        raise InvalidInput(problems, what=f"node list {source}")

    home, workers = entries[0], entries[1:]
    out = [
        "---",
        f"# Imported from {PurePath(source).name} by `jupiter import-nodes` "
        "(see docs/inventory.md).",
        "# The first node is home, the others are workers. k8s_hostname is the Kubernetes",
        "# node name (label kubernetes.io/hostname) the components are pinned to. Put",
        "# jupiter_app, jupiter_deployment, jupiter_scheduler, ... in group_vars/all.",
        "all:",
        "  vars:",
        "    jupiter_target: kubernetes",
        "  children:",
        "    home:",
        "      hosts:",
        f"        {_yaml_scalar(home[1])}:",
        f"          k8s_hostname: {_yaml_scalar(home[2])}",
        "    workers:",
        "      hosts:",
    ]
    for _, tag, hostname in workers:
        out.append(f"        {_yaml_scalar(tag)}:")
        out.append(f"          k8s_hostname: {_yaml_scalar(hostname)}")
    return "\n".join(out) + "\n", [p for p in problems if p.severity == "warning"]


__all__ = ["import_nodes"]
