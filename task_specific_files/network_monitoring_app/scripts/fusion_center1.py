"""fusion_center1: combine the two detectors of part 1.

Jupiter legacy task with NUM_INPUTS 2: ``inputs`` is the list of both files,
``<n>anomalies_simple1.log`` and ``<n>anomalies_astute1.log`` (any order). Sources
flagged by both detectors (the intersection) are ``confirmed``; sources flagged by only
one (the rest of the union) are ``suspected``. Output: ``<n>fused_anomalies1.log``:
``<ip_src> confirmed|suspected <detectors>`` per source, sorted by address.
"""

import ipaddress
import os

INDEX = 1
MARKER = "anomalies_"


def item_prefix(name):
    base = os.path.basename(name)
    if MARKER not in base:
        raise ValueError(f"{base}: expected inputs named <item>{MARKER}<detector>{INDEX}.log")
    return base[: base.rindex(MARKER)]


def _sort_key(ip):
    try:
        return (0, int(ipaddress.ip_address(ip)), ip)
    except ValueError:
        return (1, 0, ip)


def read_flagged(path):
    with open(path, encoding="utf-8") as f:
        return {line.split()[0] for line in f if line.strip() and not line.startswith("!")}


def task(inputs, pathin, pathout):
    names = [inputs] if isinstance(inputs, str) else sorted(inputs)
    prefix = item_prefix(names[0])
    flagged = {}  # detector -> set of sources
    for name in names:
        base = os.path.basename(name)
        detector = "simple" if "anomalies_simple" in base else "astute"
        flagged.setdefault(detector, set()).update(read_flagged(os.path.join(pathin, name)))
    simple = flagged.get("simple", set())
    astute = flagged.get("astute", set())
    out = os.path.join(pathout, f"{prefix}fused_anomalies{INDEX}.log")
    with open(out, "w", encoding="utf-8") as f:
        f.write(
            f"!fusion_center{INDEX}: confirmed = simple AND astute, suspected = only one "
            f"({len(simple & astute)} confirmed, {len(simple ^ astute)} suspected)\n"
        )
        for src in sorted(simple | astute, key=_sort_key):
            status = "confirmed" if src in simple and src in astute else "suspected"
            by = ",".join(d for d, s in (("simple", simple), ("astute", astute)) if src in s)
            f.write(f"{src} {status} {by}\n")
    return [out]


if __name__ == "__main__":
    import sys

    print(task(sys.argv[1:-2], sys.argv[-2], sys.argv[-1]))
