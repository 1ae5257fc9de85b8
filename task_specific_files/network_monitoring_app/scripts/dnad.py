"""dnad: the per-part logic of the network monitoring app, shared by its three parts.

local_pro splits a capture into parts 0, 1 and 2; part ``i`` runs ``aggregate<i>`` ->
``simple_detector<i>`` and ``astute_detector<i>`` -> ``fusion_center<i>``. Each of those
scripts is a Jupiter legacy task whose ``task(inputs, pathin, pathout)`` calls the function
of the same name here with its index ``i``; the index only appears in the file names and in
the ``!`` comment line each output starts with. Every output name starts with the item
prefix ``<n>`` of the input (``<n>split_0.ipsum`` -> ``<n>merged_file0.ipsum`` ...).

Not a task: the scripts import it from their own folder, which Jupiter puts on ``sys.path``.

``aggregate``
    Input ``<n>split_<i>.ipsum`` (the packets of part ``i``, ipsumdump format). Output
    ``<n>merged_file<i>.ipsum``, one line per source address, sorted by address::

        ip_src packets bytes dsts dports flows first last

    (``dsts``: distinct destination addresses, ``dports``: distinct destination ports,
    ``flows``: distinct (destination, port) pairs, ``first``/``last``: timestamps).

``simple_detector``
    Input ``<n>merged_file<i>.ipsum``. A source is anomalous when its packet count exceeds
    ``mean + K * std`` of the packet counts of all sources in this part (population standard
    deviation, K = 2). Output ``<n>anomalies_simple<i>.log``: a ``!`` comment with the
    threshold, then ``<ip_src> <packets>`` per flagged source, sorted by address.

``astute_detector``
    Input ``<n>merged_file<i>.ipsum``. The fan-out of a source is the number of distinct
    (destination address, destination port) pairs it contacted. A source is anomalous when
    its fan-out is at least MIN_FANOUT and its robust z-score ``(x - median) / (1.4826 *
    MAD)`` exceeds Z (3.5, the usual cut for the modified z-score); when the MAD is 0 the
    mean absolute deviation is used, and when that is 0 too, any fan-out above the median
    counts. Output ``<n>anomalies_astute<i>.log``: a ``!`` comment, then ``<ip_src>
    <fan-out>`` per flagged source, sorted by address.

``fusion_center``
    Inputs (NUM_INPUTS 2, any order) ``<n>anomalies_simple<i>.log`` and
    ``<n>anomalies_astute<i>.log``. Sources flagged by both detectors (the intersection) are
    ``confirmed``; sources flagged by only one (the rest of the union) are ``suspected``.
    Output ``<n>fused_anomalies<i>.log``: ``<ip_src> confirmed|suspected <detectors>`` per
    source, sorted by address.
"""

import ipaddress
import math
import os
import sys

K = 2.0  # simple_detector: threshold mean + K * std
Z = 3.5  # astute_detector: threshold on the robust z-score of the fan-out
MIN_FANOUT = 8  # astute_detector: smaller fan-outs are never flagged


def item_prefix(name, marker, expected):
    """The item prefix of ``name``: its base name up to the last ``marker``."""
    base = os.path.basename(name)
    if marker not in base:
        raise ValueError(f"{base}: expected {expected}")
    return base[: base.rindex(marker)]


def sort_key(ip):
    """Addresses in numeric order (IPv4 before IPv6), anything else after them by text."""
    try:
        return (0, int(ipaddress.ip_address(ip)), ip)
    except ValueError:
        return (1, 0, ip)


# ---- aggregate -------------------------------------------------------------------------------


def _port(text):
    return int(text) if text.isdigit() else 0


def aggregate(index, inputs, pathin, pathout):
    name = inputs if isinstance(inputs, str) else inputs[0]
    prefix = item_prefix(name, "split_", f"an input named <item>split_{index}.ipsum")
    stats = {}
    with open(os.path.join(pathin, name), encoding="utf-8") as f:
        for line in f:
            if line.startswith("!"):
                continue
            fields = line.split()
            if len(fields) < 6:
                continue
            ts, src, dst = fields[0], fields[1], fields[3]
            dport = _port(fields[4])
            size = _port(fields[5])
            s = stats.get(src)
            if s is None:
                s = stats[src] = [0, 0, set(), set(), set(), ts, ts]
            s[0] += 1
            s[1] += size
            s[2].add(dst)
            s[3].add(dport)
            s[4].add((dst, dport))
            if float(ts) < float(s[5]):
                s[5] = ts
            if float(ts) > float(s[6]):
                s[6] = ts
    out = os.path.join(pathout, f"{prefix}merged_file{index}.ipsum")
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"!aggregate{index}: per-source summary of part {index}\n")
        f.write("!data ip_src packets bytes dsts dports flows first last\n")
        for src in sorted(stats, key=sort_key):
            pk, by, dsts, ports, flows, first, last = stats[src]
            f.write(f"{src} {pk} {by} {len(dsts)} {len(ports)} {len(flows)} {first} {last}\n")
    return [out]


# ---- simple_detector -------------------------------------------------------------------------


def _summary_prefix(name, index):
    return item_prefix(name, "merged_file", f"an input named <item>merged_file{index}.ipsum")


def read_summary(path):
    """{source: [packets, bytes, dsts, dports, flows]} of an aggregate output."""
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("!"):
                continue
            fields = line.split()
            if len(fields) >= 6:
                rows[fields[0]] = [int(v) for v in fields[1:6]]
    return rows


def simple_detect(counts):
    """(threshold, flagged sources) for {source: packets}."""
    if not counts:
        return 0.0, []
    values = list(counts.values())
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    threshold = mean + K * std
    return threshold, [s for s, v in counts.items() if v > threshold]


def write_flagged(path, header, flagged, values):
    """A detector's log: the ``!`` header line, then ``source value`` per flagged source in
    address order."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(header + "\n")
        for src in sorted(flagged, key=sort_key):
            f.write(f"{src} {values[src]}\n")
    return [path]


def simple_detector(index, inputs, pathin, pathout):
    name = inputs if isinstance(inputs, str) else inputs[0]
    prefix = _summary_prefix(name, index)
    rows = read_summary(os.path.join(pathin, name))
    counts = {src: r[0] for src, r in rows.items()}
    threshold, flagged = simple_detect(counts)
    header = (f"!simple_detector{index}: packets per source > mean + {K:g}*std "
              f"(threshold {threshold:.2f}, {len(counts)} sources)")
    return write_flagged(os.path.join(pathout, f"{prefix}anomalies_simple{index}.log"),
                         header, flagged, counts)


# ---- astute_detector -------------------------------------------------------------------------


def _median(values):
    s = sorted(values)
    n = len(s)
    mid = n // 2
    return float(s[mid]) if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def read_fanout(path):
    """{source: fan-out (distinct destination/port pairs)} of an aggregate output."""
    return {src: row[4] for src, row in read_summary(path).items()}


def astute_detect(fanout):
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


def astute_detector(index, inputs, pathin, pathout):
    name = inputs if isinstance(inputs, str) else inputs[0]
    prefix = _summary_prefix(name, index)
    fanout = read_fanout(os.path.join(pathin, name))
    med, scale, flagged = astute_detect(fanout)
    header = (f"!astute_detector{index}: fan-out robust z > {Z:g} and >= {MIN_FANOUT} "
              f"(median {med:.1f}, scale {scale:.2f}, {len(fanout)} sources)")
    return write_flagged(os.path.join(pathout, f"{prefix}anomalies_astute{index}.log"),
                         header, flagged, fanout)


# ---- fusion_center ---------------------------------------------------------------------------


def read_flagged(path):
    """The sources a detector log flags."""
    with open(path, encoding="utf-8") as f:
        return {line.split()[0] for line in f if line.strip() and not line.startswith("!")}


def fusion_center(index, inputs, pathin, pathout):
    names = [inputs] if isinstance(inputs, str) else sorted(inputs)
    prefix = item_prefix(
        names[0], "anomalies_", f"inputs named <item>anomalies_<detector>{index}.log"
    )
    flagged = {}  # detector -> set of sources
    for name in names:
        base = os.path.basename(name)
        detector = "simple" if "anomalies_simple" in base else "astute"
        flagged.setdefault(detector, set()).update(read_flagged(os.path.join(pathin, name)))
    simple = flagged.get("simple", set())
    astute = flagged.get("astute", set())
    out = os.path.join(pathout, f"{prefix}fused_anomalies{index}.log")
    with open(out, "w", encoding="utf-8") as f:
        f.write(
            f"!fusion_center{index}: confirmed = simple AND astute, suspected = only one "
            f"({len(simple & astute)} confirmed, {len(simple ^ astute)} suspected)\n"
        )
        for src in sorted(simple | astute, key=sort_key):
            status = "confirmed" if src in simple and src in astute else "suspected"
            by = ",".join(d for d, s in (("simple", simple), ("astute", astute)) if src in s)
            f.write(f"{src} {status} {by}\n")
    return [out]


# ---- command line ----------------------------------------------------------------------------


def main(task, *, many=False):
    """Run a script by hand: ``python <script>.py INPUT PATHIN PATHOUT``, or with ``many``
    (fusion_center) ``INPUT... PATHIN PATHOUT``; prints the returned output paths."""
    argv = sys.argv
    if many:
        print(task(argv[1:-2], argv[-2], argv[-1]))
    else:
        print(task(argv[1], argv[2], argv[3]))
