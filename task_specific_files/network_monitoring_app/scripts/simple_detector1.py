"""simple_detector1: flag sources that send far more packets than the others.

Jupiter legacy task. Input: ``<n>merged_file1.ipsum`` (per-source summary from
aggregate1). A source is anomalous when its packet count exceeds ``mean + K * std`` of
the packet counts of all sources in this part (population standard deviation, K = 2).
Output: ``<n>anomalies_simple1.log``: a ``!`` comment with the threshold, then
``<ip_src> <packets>`` per flagged source, sorted by address.
"""

import ipaddress
import math
import os

INDEX = 1
K = 2.0
MARKER = "merged_file"


def item_prefix(name):
    base = os.path.basename(name)
    if MARKER not in base:
        raise ValueError(f"{base}: expected an input named <item>{MARKER}{INDEX}.ipsum")
    return base[: base.rindex(MARKER)]


def _sort_key(ip):
    try:
        return (0, int(ipaddress.ip_address(ip)), ip)
    except ValueError:
        return (1, 0, ip)


def read_summary(path):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("!"):
                continue
            fields = line.split()
            if len(fields) >= 6:
                rows[fields[0]] = [int(v) for v in fields[1:6]]
    return rows


def detect(counts):
    """(threshold, flagged sources) for {source: packets}."""
    if not counts:
        return 0.0, []
    values = list(counts.values())
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    threshold = mean + K * std
    return threshold, [s for s, v in counts.items() if v > threshold]


def task(inputs, pathin, pathout):
    name = inputs if isinstance(inputs, str) else inputs[0]
    prefix = item_prefix(name)
    rows = read_summary(os.path.join(pathin, name))
    counts = {src: r[0] for src, r in rows.items()}
    threshold, flagged = detect(counts)
    out = os.path.join(pathout, f"{prefix}anomalies_simple{INDEX}.log")
    with open(out, "w", encoding="utf-8") as f:
        f.write(
            f"!simple_detector{INDEX}: packets per source > mean + {K:g}*std "
            f"(threshold {threshold:.2f}, {len(counts)} sources)\n"
        )
        for src in sorted(flagged, key=_sort_key):
            f.write(f"{src} {counts[src]}\n")
    return [out]


if __name__ == "__main__":
    import sys

    print(task(sys.argv[1], sys.argv[2], sys.argv[3]))
