"""A tiny TCP goodput and round-trip meter for the testbed tests (run in two namespaces).

    python local_netperf.py recv HOST PORT [SECONDS] [WARMUP]   -> prints "listening", then JSON
    python local_netperf.py send HOST PORT                      -> sends until the receiver closes
    python local_netperf.py echo HOST PORT                      -> prints "listening", echoes
    python local_netperf.py rtt HOST PORT [COUNT]               -> JSON round trips of 1 byte

The receiver measures *goodput at the receiver*: it starts its clock at the first byte,
ignores the first WARMUP seconds (htb's initial burst, TCP slow start), then counts the
payload bytes received during SECONDS and closes the connection, which stops the sender.
It also reports the connection's MSS so the caller can convert goodput to the on-the-wire
rate htb enforces: every full segment of MSS payload bytes is an MSS + 66-byte frame
(14 Ethernet + 20 IP + 32 TCP with timestamps) = 1514 bytes for a 1500-byte MTU.
"""

from __future__ import annotations

import json
import socket
import sys
import time


def receive(host: str, port: int, seconds: float = 1.5, warmup: float = 0.3) -> dict:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)
    srv.settimeout(30)
    print("listening", flush=True)
    conn, _ = srv.accept()
    conn.settimeout(10)
    buf = bytearray(1 << 16)
    n = conn.recv_into(buf)
    first = time.monotonic()
    total = n
    mark: tuple[float, int] | None = None
    now = first
    while True:
        n = conn.recv_into(buf)
        now = time.monotonic()
        if not n:
            break
        if mark is None and now >= first + warmup:
            mark = (now, total)
        total += n
        if now >= first + warmup + seconds:
            break
    mss = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    conn.close()
    srv.close()
    if mark is None:
        raise RuntimeError("the sender stopped before the warm-up ended")
    return {
        "goodput_bps": 8 * (total - mark[1]) / (now - mark[0]),
        "window_s": now - mark[0],
        "bytes": total,
        "mss": mss,
    }


def send(host: str, port: int) -> None:
    sock = socket.create_connection((host, port), timeout=10)
    data = b"\x00" * (1 << 16)
    try:
        while True:
            sock.sendall(data)
    except OSError:  # the receiver closed: done
        pass
    finally:
        sock.close()


def echo(host: str, port: int) -> None:
    """Answer every byte with itself, one connection at a time, until killed."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(4)
    print("listening", flush=True)
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(1 << 16):
            conn.sendall(data)
        conn.close()


def rtt(host: str, port: int, count: int = 20) -> dict:
    """Round trips of one byte over one connection (after its handshake): min and median."""
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        sock.sendall(b"x")
        if sock.recv(1) != b"x":
            raise RuntimeError("echo answered something else")
        times.append(time.perf_counter() - start)
    sock.close()
    times.sort()
    return {"min_s": times[0], "median_s": times[len(times) // 2], "count": count}


if __name__ == "__main__":
    if sys.argv[1] == "echo":
        echo(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "rtt":
        print(json.dumps(rtt(sys.argv[2], int(sys.argv[3]), *map(int, sys.argv[4:5]))))
    elif sys.argv[1] == "recv":
        extra = [float(x) for x in sys.argv[4:6]]
        print(json.dumps(receive(sys.argv[2], int(sys.argv[3]), *extra)), flush=True)
    else:
        send(sys.argv[2], int(sys.argv[3]))
