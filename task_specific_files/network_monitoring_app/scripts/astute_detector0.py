"""astute_detector0: flag sources whose fan-out is an outlier (scanners, bots).

Jupiter legacy task. Input: ``<n>merged_file0.ipsum`` (per-source summary from
aggregate0). The fan-out of a source is the number of distinct (destination address,
destination port) pairs it contacted. A source is anomalous when its fan-out is at least
MIN_FANOUT and its robust z-score ``(x - median) / (1.4826 * MAD)`` exceeds Z (3.5, the
usual cut for the modified z-score); when the MAD is 0 the mean absolute deviation is used,
and when that is 0 too, any fan-out above the median counts. Output:
``<n>anomalies_astute0.log``: a ``!`` comment, then ``<ip_src> <fan-out>`` per flagged
source, sorted by address.
"""

import ipaddress
import os

INDEX = 0
Z = 3.5
MIN_FANOUT = 8
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


def _median(values):
    s = sorted(values)
    n = len(s)
    mid = n // 2
    return float(s[mid]) if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def read_fanout(path):
    fanout = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("!"):
                continue
            fields = line.split()
            if len(fields) >= 6:
                fanout[fields[0]] = int(fields[5])
    return fanout


def detect(fanout):
    """(median, scale, flagged sources) for {source: fan-out}."""
    if not fanout:
        return 0.0, 0.0, []
    values = list(fanout.values())
    med = _median(values)
    scale = 1.4826 * _median([abs(v - med) for v in values])
    if scale == 0:
        scale = 1.2533 * sum(abs(v - med) for v in values) / len(values)
    flagged = []
    for src, x in fanout.items():
        if x < MIN_FANOUT or x <= med:
            continue
        if scale == 0 or (x - med) / scale > Z:
            flagged.append(src)
    return med, scale, flagged


def task(inputs, pathin, pathout):
    name = inputs if isinstance(inputs, str) else inputs[0]
    prefix = item_prefix(name)
    fanout = read_fanout(os.path.join(pathin, name))
    med, scale, flagged = detect(fanout)
    out = os.path.join(pathout, f"{prefix}anomalies_astute{INDEX}.log")
    with open(out, "w", encoding="utf-8") as f:
        f.write(
            f"!astute_detector{INDEX}: fan-out robust z > {Z:g} and >= {MIN_FANOUT} "
            f"(median {med:.1f}, scale {scale:.2f}, {len(fanout)} sources)\n"
        )
        for src in sorted(flagged, key=_sort_key):
            f.write(f"{src} {fanout[src]}\n")
    return [out]


if __name__ == "__main__":
    import sys

    print(task(sys.argv[1], sys.argv[2], sys.argv[3]))
