"""global_fusion: the union of the three fusion centres, the app's result.

Jupiter legacy task with NUM_INPUTS 3: ``inputs`` is the list
``<n>fused_anomalies0.log``, ``<n>fused_anomalies1.log``, ``<n>fused_anomalies2.log``
(any order). Every source flagged in any part is reported once; it is ``confirmed`` when
at least one part confirmed it (both detectors agreed there), else ``suspected``.
Output (to home): ``<n>global_anomalies.log``::

    <ip_src> confirmed|suspected <parts>

one line per source sorted by address, ``parts`` listing the part numbers that flagged it.
"""

import ipaddress
import os

MARKER = "fused_anomalies"


def item_prefix(name):
    base = os.path.basename(name)
    if MARKER not in base:
        raise ValueError(f"{base}: expected inputs named <item>{MARKER}<part>.log")
    return base[: base.rindex(MARKER)]


def part_of(name):
    stem = os.path.splitext(os.path.basename(name))[0]
    return int(stem[stem.rindex(MARKER) + len(MARKER) :] or 0)


def _sort_key(ip):
    try:
        return (0, int(ipaddress.ip_address(ip)), ip)
    except ValueError:
        return (1, 0, ip)


def task(inputs, pathin, pathout):
    names = [inputs] if isinstance(inputs, str) else sorted(inputs)
    prefix = item_prefix(names[0])
    status = {}  # source -> confirmed?
    parts = {}  # source -> set of parts
    for name in names:
        part = part_of(name)
        with open(os.path.join(pathin, name), encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if not fields or line.startswith("!"):
                    continue
                src = fields[0]
                confirmed = len(fields) > 1 and fields[1] == "confirmed"
                status[src] = status.get(src, False) or confirmed
                parts.setdefault(src, set()).add(part)
    out = os.path.join(pathout, f"{prefix}global_anomalies.log")
    confirmed_count = sum(1 for v in status.values() if v)
    with open(out, "w", encoding="utf-8") as f:
        f.write(
            f"!global_fusion: union of {len(names)} parts "
            f"({confirmed_count} confirmed, {len(status) - confirmed_count} suspected)\n"
        )
        for src in sorted(status, key=_sort_key):
            label = "confirmed" if status[src] else "suspected"
            f.write(f"{src} {label} {','.join(str(p) for p in sorted(parts[src]))}\n")
    return [out]


if __name__ == "__main__":
    import sys

    print(task(sys.argv[1:-2], sys.argv[-2], sys.argv[-1]))
