"""aggregate0: per-source summary of part 0 of a capture.

Jupiter legacy task. Input: ``<n>split_0.ipsum`` (packets of part 0 from local_pro).
Output: ``<n>merged_file0.ipsum``, one line per source address, sorted by address::

    ip_src packets bytes dsts dports flows first last

(``dsts``: distinct destination addresses, ``dports``: distinct destination ports,
``flows``: distinct (destination, port) pairs, ``first``/``last``: timestamps). Both
detectors of this part read it. The item prefix ``<n>`` is carried forward.
"""

import ipaddress
import os

INDEX = 0
MARKER = "split_"


def item_prefix(name):
    base = os.path.basename(name)
    if MARKER not in base:
        raise ValueError(f"{base}: expected an input named <item>{MARKER}{INDEX}.ipsum")
    return base[: base.rindex(MARKER)]


def _port(text):
    return int(text) if text.isdigit() else 0


def _sort_key(ip):
    try:
        return (0, int(ipaddress.ip_address(ip)), ip)
    except ValueError:
        return (1, 0, ip)


def task(inputs, pathin, pathout):
    name = inputs if isinstance(inputs, str) else inputs[0]
    prefix = item_prefix(name)
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
    out = os.path.join(pathout, f"{prefix}merged_file{INDEX}.ipsum")
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"!aggregate{INDEX}: per-source summary of part {INDEX}\n")
        f.write("!data ip_src packets bytes dsts dports flows first last\n")
        for src in sorted(stats, key=_sort_key):
            pk, by, dsts, ports, flows, first, last = stats[src]
            f.write(f"{src} {pk} {by} {len(dsts)} {len(ports)} {len(flows)} {first} {last}\n")
    return [out]


if __name__ == "__main__":
    import sys

    print(task(sys.argv[1], sys.argv[2], sys.argv[3]))
