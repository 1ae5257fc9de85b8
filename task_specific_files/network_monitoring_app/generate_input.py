#!/usr/bin/env python3
"""Generate packet summaries in ipsumdump's text format for the network monitoring app.

Each file is one item named ``<n>botnet.ipsum`` (n = 1, 2, ...): ``!`` header lines (tool,
creator, host, runtime and the ``!data`` line naming the columns), then one packet per line::

    timestamp ip_src sport ip_dst dport ip_len ip_proto tcp_flags

Normal traffic comes from a few dozen internal hosts talking to web, DNS, NTP and SSH
servers. Anomalous sources are injected so the detectors have something to find: a port
scanner (one source, many destinations and ports, bare SYNs), a flooder (one source, one
victim, many packets) and, in some files, a small botnet beaconing to one controller.

Deterministic: the same ``--seed`` always gives byte-identical files.

    python generate_input.py --out sample_input --files 8 --packets 1000 --seed 14635
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

COLUMNS = "timestamp ip_src sport ip_dst dport ip_len ip_proto tcp_flags"
BASE_TIME = 1510000000.0  # fixed, so that output does not depend on the clock

SERVERS = [
    ("93.184.216.34", 443, "T"),
    ("93.184.216.34", 80, "T"),
    ("151.101.1.69", 443, "T"),
    ("151.101.65.69", 443, "T"),
    ("142.250.72.14", 443, "T"),
    ("140.82.114.4", 22, "T"),
    ("104.16.132.229", 443, "T"),
    ("8.8.8.8", 53, "U"),
    ("1.1.1.1", 53, "U"),
    ("129.6.15.28", 123, "U"),
]
TCP_FLAGS = ["S", "A", "A", "PA", "PA", "A", "PA", "FA", "A"]


def _header(n: int, rng: random.Random) -> list[str]:
    runtime = BASE_TIME + n * 60
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(runtime))
    return [
        "!IPSummaryDump 1.3",
        f'!creator "ipsumdump -r capture{n}.pcap -tsSdDlpF"',
        f"!host probe{rng.randint(1, 4)}",
        f"!runtime {runtime:.6f} ({stamp})",
        f"!data {COLUMNS}",
    ]


def _packet(
    ts: float,
    src: str,
    sport: int | str,
    dst: str,
    dport: int | str,
    length: int,
    proto: str,
    flags: str,
) -> str:
    return f"{ts:.6f} {src} {sport} {dst} {dport} {length} {proto} {flags}"


def generate_file(n: int, packets: int, seed: int) -> str:
    """The text of item ``n`` (1-based): ``packets`` packet lines after the header."""
    rng = random.Random(seed * 1009 + n)
    lines = _header(n, rng)
    hosts = [f"10.0.{rng.randint(0, 7)}.{rng.randint(2, 254)}" for _ in range(40)]
    hosts = sorted(set(hosts))
    weights = [math.exp(rng.gauss(0.0, 0.5)) for _ in hosts]
    # which anomalies this item carries (every item has at least one)
    scanner = n % 2 == 1
    flooder = n % 3 != 2
    botnet = n % 4 == 0
    anomalies: list[tuple[str, float]] = []
    if scanner:
        anomalies.append(("scan", 0.08))
    if flooder:
        anomalies.append(("flood", 0.12))
    if botnet:
        anomalies.append(("bot", 0.10))
    scan_src = f"10.0.{rng.randint(8, 15)}.{rng.randint(2, 254)}"
    flood_src = f"10.0.{rng.randint(8, 15)}.{rng.randint(2, 254)}"
    victim = f"10.1.{rng.randint(0, 3)}.{rng.randint(2, 254)}"
    bots = [f"10.0.{rng.randint(16, 23)}.{rng.randint(2, 254)}" for _ in range(4)]
    controller = f"185.{rng.randint(100, 200)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    ts = BASE_TIME + n * 60
    for _ in range(packets):
        ts += rng.expovariate(20.0)
        kind = "normal"
        u = rng.random()
        acc = 0.0
        for name, share in anomalies:
            acc += share
            if u < acc:
                kind = name
                break
        if kind == "scan":
            dst = f"10.1.{rng.randint(0, 3)}.{rng.randint(2, 254)}"
            dport = rng.choice([21, 22, 23, 25, 80, 110, 139, 443, 445, 3306, 3389, 8080])
            lines.append(_packet(ts, scan_src, rng.randint(40000, 60000), dst, dport, 40, "T", "S"))
        elif kind == "flood":
            lines.append(
                _packet(
                    ts,
                    flood_src,
                    rng.randint(1024, 65535),
                    victim,
                    80,
                    rng.choice([40, 40, 52, 60]),
                    "T",
                    "S",
                )
            )
        elif kind == "bot":
            src = rng.choice(bots)
            lines.append(
                _packet(
                    ts,
                    src,
                    rng.randint(30000, 60000),
                    controller,
                    6667,
                    rng.randint(60, 120),
                    "T",
                    "PA",
                )
            )
        else:
            src = rng.choices(hosts, weights)[0]
            if rng.random() < 0.03:  # a ping now and then (ICMP has no ports or flags)
                dst = rng.choice(SERVERS)[0]
                lines.append(_packet(ts, src, "-", dst, "-", 84, "I", "-"))
                continue
            dst, dport, proto = rng.choice(SERVERS)
            if proto == "U":
                lines.append(
                    _packet(
                        ts,
                        src,
                        rng.randint(1024, 65535),
                        dst,
                        dport,
                        rng.randint(60, 120),
                        "U",
                        "-",
                    )
                )
            else:
                length = rng.choice([40, 52, 60, 576, 1500, 1500, 1500])
                lines.append(
                    _packet(
                        ts,
                        src,
                        rng.randint(32768, 60999),
                        dst,
                        dport,
                        length,
                        "T",
                        rng.choice(TCP_FLAGS),
                    )
                )
    return "\n".join(lines) + "\n"


def generate(out: Path, files: int, packets: int, seed: int) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for n in range(1, files + 1):
        path = out / f"{n}botnet.ipsum"
        path.write_text(generate_file(n, packets, seed), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "sample_input")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--packets", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=14635)
    args = parser.parse_args(argv)
    if args.files < 1 or args.packets < 1:
        parser.error("--files and --packets must be at least 1")
    for path in generate(args.out, args.files, args.packets, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
