"""Names and addresses derived deterministically from the deployment name.

* network namespace of node ``i``: ``jn-<deployment>-<i>`` (namespace names are files
  under /run/netns, not limited to 15 characters);
* bridge in the root namespace: ``jb-<deployment>`` when it fits the kernel's 15-character
  interface-name limit, else ``jb-<first 7 chars>_<4 hex of sha1(deployment)>``;
* host side of node ``i``'s veth pair: ``jv-<tag>-<i>`` where ``tag`` is the deployment
  when it has at most 8 characters, else ``<first 3>_<4 hex>``; inside the namespace the
  peer is always ``eth0``.

The ``_`` never occurs in a deployment name, so a hashed short name can never equal the
literal short name of another deployment. Everything here is pure.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

IFNAMSIZ = 15
NETNS_PREFIX = "jn-"
LOOPBACK_BASE = ipaddress.IPv4Address("127.0.1.0")
NODE_IFACE = "eth0"
CGROUP_ROOT = "/sys/fs/cgroup/cpu"
CGROUP_PARENT = "jupiter"


def _digest(deployment: str) -> str:
    return hashlib.sha1(deployment.encode()).hexdigest()[:4]


def bridge_name(deployment: str) -> str:
    name = f"jb-{deployment}"
    if len(name) <= IFNAMSIZ:
        return name
    return f"jb-{deployment[:7]}_{_digest(deployment)}"


def veth_tag(deployment: str) -> str:
    if len(deployment) <= 8:
        return deployment
    return f"{deployment[:3]}_{_digest(deployment)}"


def veth_name(deployment: str, index: int) -> str:
    name = f"jv-{veth_tag(deployment)}-{index}"
    assert len(name) <= IFNAMSIZ, name
    return name


def netns_name(deployment: str, index: int) -> str:
    return f"{NETNS_PREFIX}{deployment}-{index}"


def netns_index(deployment: str, name: str) -> int | None:
    """Index of a namespace of this deployment, None when ``name`` belongs to another."""
    m = re.fullmatch(re.escape(f"{NETNS_PREFIX}{deployment}-") + r"(\d+)", name)
    return int(m.group(1)) if m else None


def veth_index(deployment: str, name: str) -> int | None:
    m = re.fullmatch(re.escape(f"jv-{veth_tag(deployment)}-") + r"(\d+)", name)
    return int(m.group(1)) if m else None


def host_address(subnet: str) -> str:
    """The bridge's address in the root namespace: the first host of the subnet."""
    return str(ipaddress.IPv4Network(subnet)[1])


def netns_address(subnet: str, index: int) -> str:
    """Address of node ``index`` inside its namespace: subnet host number index + 2."""
    net = ipaddress.IPv4Network(subnet)
    addr = net[index + 2]
    if addr == net.broadcast_address:
        raise ValueError(f"node index {index} does not fit in {subnet}")
    return str(addr)


def loopback_address(index: int) -> str:
    """Address of node ``index`` without namespaces: 127.0.1.(index + 2)."""
    if not 0 <= index <= 251:
        raise ValueError(f"node index {index} does not fit in 127.0.1.0/24")
    return str(LOOPBACK_BASE + index + 2)


def cgroup_dir(deployment: str, node: str | None = None, root: str = CGROUP_ROOT) -> str:
    base = f"{root}/{CGROUP_PARENT}/{deployment}"
    return base if node is None else f"{base}/{node}"


def classid(index: int) -> str:
    """htb class of traffic towards node ``index`` (tc minor numbers are hexadecimal)."""
    return f"1:{index + 2:x}"
