"""local_pro: split one capture into three parts by a CRC32 hash of the address pair.

Jupiter legacy task (``task(inputs, pathin, pathout)``). Input: ``<n>botnet.ipsum``, an
ipsumdump packet summary. Output: ``<n>split_0.ipsum``, ``<n>split_1.ipsum`` and
``<n>split_2.ipsum``; packet ``src -> dst`` goes to part ``crc32(src + dst, 14635) % 3``
(zlib's CRC32 started from the value 14635, i.e. seeded). Every part keeps the ``!``
header lines, so each is a valid ipsumdump file; all three are always written (possibly
without packets), because FLAG false sends the i-th output (sorted by name) to the i-th
child. The item prefix ``<n>`` is carried forward in the output names.
"""

import os
import zlib

SEED = 14635
PARTS = 3
MARKER = "botnet"


def item_prefix(name):
    base = os.path.basename(name)
    if MARKER in base:
        return base.split(MARKER, 1)[0]
    return os.path.splitext(base)[0] + "_"


def part_of(src, dst):
    return zlib.crc32((src + dst).encode("ascii", "replace"), SEED) % PARTS


def task(inputs, pathin, pathout):
    name = inputs if isinstance(inputs, str) else inputs[0]
    prefix = item_prefix(name)
    header = []
    parts = [[] for _ in range(PARTS)]
    with open(os.path.join(pathin, name), encoding="utf-8") as f:
        for line in f:
            if line.startswith("!"):
                header.append(line if line.endswith("\n") else line + "\n")
                continue
            fields = line.split()
            if len(fields) < 4:
                continue  # blank or truncated line
            parts[part_of(fields[1], fields[3])].append(" ".join(fields) + "\n")
    outputs = []
    for i, lines in enumerate(parts):
        out = os.path.join(pathout, f"{prefix}split_{i}.ipsum")
        with open(out, "w", encoding="utf-8") as f:
            f.writelines(header)
            f.write(f"!split {i} of {PARTS} (crc32 seed {SEED})\n")
            f.writelines(lines)
        outputs.append(out)
    return outputs


if __name__ == "__main__":
    import sys

    print(task(sys.argv[1], sys.argv[2], sys.argv[3]))
