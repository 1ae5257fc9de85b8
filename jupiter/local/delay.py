"""Link delay of the local testbed: packets held in userspace for the link's one-way delay.

This kernel has no ``netem`` (nor ``fq``/``etf``, so no earliest-departure-time pacing):
no qdisc can hold a packet for a while. Netfilter's queue can. In each emulated node's
namespace an ``iptables`` rule (mangle table, PREROUTING, on ``eth0``) hands every packet
coming from another node ``s`` to NFQUEUE number ``index(s)``; the testbed's delay process
(``python -m jupiter.local.delay``, one per deployment) reads every namespace's queues over
netlink and accepts each packet once it has waited ``delay_ms(s) + delay_ms(here)``
(:meth:`TestbedSpec.link_delay_ms`). Every packet of one queue waits the same time, so a
queue is released in order, with one batch verdict for all the packets that are due.

The delay is applied where packets arrive, after the sender's htb shaping: a packet held
on the sending side would still be charged to its TCP socket, and TCP small queues would
then stall the sender after a packet or two. Traffic with the host's address (readiness
probes, the supervisor) and on a node's loopback is never delayed.

One process serves all namespaces, and it wakes as seldom as it can: the kernel stamps each
packet's arrival, so arrivals are read in batches, and due packets are released in rounds
at least :data:`QUANTUM_S` apart. Each wake-up of a process on this machine costs the
processes it interrupts: six lines waking every 0.5 ms made the task processes' CPU per
item 20 % higher; one, 7-10 %.

The pure part (netlink messages, rules, the delay plan) is separate from
:class:`DelayLines`, the loop that owns the sockets, the rules and a small HTTP endpoint
(``/ready``, ``/status``).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import ipaddress
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jupiter.errors import JupiterError
from jupiter.local.spec import TestbedSpec

DELAY_PORT = 7690
CHAIN = "JUPITER-DELAY"
IFACE = "eth0"
QUEUE_MAXLEN = 10000  # packets one queue may hold; beyond that the kernel drops, as a router
RCVBUF = 16 << 20

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_CONFIG, NFQNL_MSG_VERDICT_BATCH = 0, 2, 3
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_TIMESTAMP = 1, 2, 4
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1  # the packet's metadata (its id), never its payload
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
SO_RCVBUFFORCE = 33
SO_TIMESTAMP = 29  # on any socket: the kernel stamps every packet it receives
#: packets are released in rounds at least this far apart: a packet waits its delay plus at
#: most this, and a busy line wakes at most 1/QUANTUM_S times a second
QUANTUM_S = 0.001
_NLMSG = struct.Struct("=IHHII")
_NLA = struct.Struct("=HH")


class DelayError(JupiterError):
    pass


# ---------------------------------------------------------------- the plan (pure)


@dataclass(frozen=True)
class DelayedPeer:
    """Packets from ``node`` (at ``address``) wait ``delay_s`` in queue ``queue``."""

    node: str
    address: str
    queue: int
    delay_s: float


def plan(state: Mapping[str, Any], node: str) -> list[DelayedPeer]:
    """The delayed peers of ``node`` in a recorded testbed (``testbed.json``)."""
    return _peers(state, _spec(state), node)


def _spec(state: Mapping[str, Any]) -> TestbedSpec:
    return TestbedSpec.from_dict(state.get("spec"), "testbed.json spec")


def _peers(state: Mapping[str, Any], spec: TestbedSpec, node: str) -> list[DelayedPeer]:
    if node not in spec.node_names:
        raise DelayError(f"node {node!r} is not in the testbed (nodes: {spec.node_names})")
    addresses = {n["name"]: n["address"] for n in state.get("nodes", [])}
    return [
        DelayedPeer(peer, addresses[peer], spec.index(peer), delay / 1000.0)
        for peer in spec.node_names
        if peer != node and (delay := spec.link_delay_ms(peer, node)) > 0
    ]


def programs(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The program spec (group ``testbed``) of the delay process a recorded testbed needs.

    It carries its whole plan in its command, so a changed delay changes the program and
    supervisord restarts it. It runs on the first node (whose address serves ``/ready``)
    outside the node's CPU cgroup: its work is the network's.
    """
    if not state.get("latency_emulated"):
        return []
    spec = _spec(state)
    lines = []
    for node in state["nodes"]:
        peers = _peers(state, spec, node["name"])
        if peers:
            lines.append({"node": node["name"], "netns": node["netns"],
                          "peers": [[p.node, p.address, p.queue, p.delay_s * 1000]
                                    for p in peers]})
    if not lines:
        return []
    first = state["nodes"][0]
    listen = f"{first['address']}:{DELAY_PORT}"
    return [{
        "name": "delay",
        "node": first["name"],
        "command": [sys.executable, "-m", "jupiter.local.delay", "--listen", listen,
                    "--plan", json.dumps({"lines": lines}, separators=(",", ":"))],
        "ready_url": f"http://{listen}/ready",
        "cgroup": False,
    }]


@dataclass(frozen=True)
class LinePlan:
    """The delayed peers of one node, whose packets arrive in namespace ``netns``."""

    node: str
    netns: str | None
    peers: tuple[DelayedPeer, ...]


def parse_plan(text: str) -> list[LinePlan]:
    """The ``--plan`` JSON of :func:`programs`; DelayError naming what is wrong."""
    try:
        data = json.loads(text)
        out = []
        for line in data["lines"]:
            peers = tuple(parse_peer(p) for p in line["peers"])
            if not peers:
                raise DelayError(f"--plan: node {line['node']!r} has no delayed peers")
            out.append(LinePlan(str(line["node"]), line.get("netns"), peers))
    except (ValueError, KeyError, TypeError) as exc:
        raise DelayError(f"--plan: expected {{\"lines\": [{{node, netns, peers: "
                         f"[[node, ipv4, queue, ms], ...]}}]}} ({type(exc).__name__}: {exc})"
                         ) from None
    if not out:
        raise DelayError("--plan: no lines")
    return out


def parse_peer(item: Sequence[Any]) -> DelayedPeer:
    """``[node, ipv4, queue, delay_ms]`` (a plan's peer) as a :class:`DelayedPeer`."""
    try:
        node, address, queue, delay_ms = item
        peer = DelayedPeer(str(node), str(ipaddress.IPv4Address(address)), int(queue),
                           float(delay_ms) / 1000.0)
    except (ValueError, TypeError):
        raise DelayError(f"peer {item!r}: expected [node, ipv4, queue, delay_ms]") from None
    if not 0 <= peer.queue <= 65535 or not 0 < peer.delay_s < 3600:
        raise DelayError(f"peer {item!r}: queue 0..65535 and a delay > 0 ms")
    return peer


def iptables() -> str:
    """The legacy ``iptables`` command (the nf_tables one cannot queue on this kernel)."""
    for name in ("iptables-legacy", "iptables"):
        path = shutil.which(name)
        if path and (name == "iptables-legacy" or "legacy" in _version(path)):
            return path
    raise DelayError(
        "link delays (jupiter_delay_ms) need iptables with the legacy backend: install the "
        "Debian package iptables (`apt-get install iptables`), or set jupiter_delay_ms to 0"
    )


def _version(path: str) -> str:
    proc = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout


def rule_lines(peers: Sequence[DelayedPeer]) -> list[list[str]]:
    """iptables arguments (after the command) that create the chain and hook it in."""
    lines = [["-t", "mangle", "-N", CHAIN]]
    for p in peers:
        lines.append(["-t", "mangle", "-A", CHAIN, "-s", f"{p.address}/32", "-j", "NFQUEUE",
                      "--queue-num", str(p.queue)])
    lines.append(["-t", "mangle", "-A", "PREROUTING", "-i", IFACE, "-j", CHAIN])
    return lines


def unrule_lines() -> list[list[str]]:
    """iptables arguments that remove the hook and the chain (each may fail if absent)."""
    return [["-t", "mangle", "-D", "PREROUTING", "-i", IFACE, "-j", CHAIN],
            ["-t", "mangle", "-F", CHAIN], ["-t", "mangle", "-X", CHAIN]]


# ---------------------------------------------------------------- netlink messages (pure)


def _attr(kind: int, payload: bytes) -> bytes:
    size = _NLA.size + len(payload)
    return _NLA.pack(size, kind) + payload + b"\0" * (-size % 4)


def message(kind: int, queue: int, attrs: Sequence[bytes], *, flags: int = NLM_F_REQUEST,
            seq: int = 0) -> bytes:
    """One nfnetlink queue message (``NFQNL_MSG_*`` ``kind``) for queue number ``queue``."""
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue) + b"".join(attrs)
    return _NLMSG.pack(_NLMSG.size + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq,
                       0) + body


def bind_message(queue: int, seq: int) -> bytes:
    return message(NFQNL_MSG_CONFIG, queue,
                   [_attr(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, 0))],
                   flags=NLM_F_REQUEST | NLM_F_ACK, seq=seq)


def params_message(queue: int, seq: int, maxlen: int = QUEUE_MAXLEN) -> bytes:
    return message(NFQNL_MSG_CONFIG, queue,
                   [_attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)),
                    _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen))],
                   flags=NLM_F_REQUEST | NLM_F_ACK, seq=seq)


def accept_through(queue: int, packet_id: int) -> bytes:
    """Batch verdict: accept every packet of ``queue`` up to and including ``packet_id``."""
    return message(NFQNL_MSG_VERDICT_BATCH, queue,
                   [_attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))])


def parse(data: bytes) -> tuple[list[tuple[int, int, float | None]], list[tuple[int, int]]]:
    """(packets [(queue, packet id, kernel arrival time or None)], acks [(seq, errno)]) in a
    buffer of netlink messages. The arrival time (``NFQA_TIMESTAMP``, wall-clock seconds) is
    there when the kernel stamps received packets (see :data:`SO_TIMESTAMP`)."""
    packets: list[tuple[int, int, float | None]] = []
    acks: list[tuple[int, int]] = []
    off = 0
    while off + _NLMSG.size <= len(data):
        length, kind, _flags, seq, _pid = _NLMSG.unpack_from(data, off)
        if length < _NLMSG.size or off + length > len(data):
            break
        if kind == NLMSG_ERROR:
            acks.append((seq, -struct.unpack_from("=i", data, off + _NLMSG.size)[0]))
        elif kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            queue = struct.unpack_from("!H", data, off + _NLMSG.size + 2)[0]
            at, end = off + _NLMSG.size + 4, off + length
            packet_id: int | None = None
            stamp: float | None = None
            while at + _NLA.size <= end:
                alen, akind = _NLA.unpack_from(data, at)
                if alen < _NLA.size:
                    break
                akind &= 0x7FFF
                if akind == NFQA_PACKET_HDR:
                    packet_id = struct.unpack_from("!I", data, at + _NLA.size)[0]
                elif akind == NFQA_TIMESTAMP:
                    sec, usec = struct.unpack_from("!QQ", data, at + _NLA.size)
                    stamp = sec + usec / 1e6
                at += (alen + 3) & ~3
            if packet_id is not None:
                packets.append((queue, packet_id, stamp))
        off += (length + 3) & ~3
    return packets, acks


# ---------------------------------------------------------------- the running delay process


@contextlib.contextmanager
def _in_netns(name: str | None) -> Iterator[None]:
    """Run the block (on this thread) in namespace ``name``, then come back."""
    if name is None:
        yield
        return
    from jupiter.local.execnode import ExecError, enter_netns, setns

    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            enter_netns(name)
        except (ExecError, OSError) as exc:
            raise DelayError(f"cannot enter namespace {name}: {exc}") from None
        yield
    finally:
        setns(own, "the delay process's own namespace")
        os.close(own)


class _Line:
    """One node's queues: a netlink socket opened in its namespace, packets waiting."""

    def __init__(self, plan: LinePlan) -> None:
        self.plan = plan
        self.delay = {p.queue: p.delay_s for p in plan.peers}
        self.waiting: dict[int, collections.deque[tuple[float, int]]] = {
            q: collections.deque() for q in self.delay}
        self.released = dict.fromkeys(self.delay, 0)
        self.sock: socket.socket | None = None


class DelayLines:
    """Holds the packets of every delayed link of a testbed for their link's delay."""

    def __init__(self, plans: Sequence[LinePlan], listen: tuple[str, int]) -> None:
        self.lines = [_Line(p) for p in plans]
        self.listen = listen
        self.dropped_notices = 0  # ENOBUFS: the kernel dropped packets we never saw
        self.stamped = True  # every packet so far came with the kernel's arrival time
        self.ready = False
        self.wakeups = 0
        self._shortest = min(d for line in self.lines for d in line.delay.values())
        self._stamping: socket.socket | None = None
        self._seq = 0
        self._iptables = iptables()
        self._http: ThreadingHTTPServer | None = None

    # setup / teardown
    def open(self) -> None:
        # any socket asking for receive timestamps makes the kernel stamp every packet it
        # receives; the queues pass the stamps on, so arrivals can be read in batches
        self._stamping = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._stamping.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        for line in self.lines:
            self._unrule(line)  # a run killed hard leaves its chain: nobody answers its queues
            with _in_netns(line.plan.netns):
                sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            line.sock = sock
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
            sock.bind((0, 0))
            for q in line.delay:
                self._request(sock, bind_message(q, self._next_seq()), line, f"bind queue {q}")
                self._request(sock, params_message(q, self._next_seq()), line,
                              f"configure queue {q}")
            sock.setblocking(False)
            for args in rule_lines(line.plan.peers):
                self._run_iptables(line, args)
        self._serve_http()
        self.ready = True

    def close(self) -> None:
        self.ready = False
        for line in self.lines:
            self._unrule(line)
        for line in self.lines:
            if line.sock is None:
                continue
            self.receive(line, time.monotonic())
            for queue, waiting in line.waiting.items():  # nothing is dropped on the way out
                if waiting:
                    line.sock.send(accept_through(queue, waiting[-1][1]))
                    waiting.clear()
            line.sock.close()
            line.sock = None
        if self._stamping is not None:
            self._stamping.close()
            self._stamping = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _request(self, sock: socket.socket, msg: bytes, line: _Line, what: str) -> None:
        seq = _NLMSG.unpack_from(msg)[3]
        sock.send(msg)
        while True:
            _, acks = parse(sock.recv(65536))
            for got, err in acks:
                if got == seq:
                    if err:
                        raise DelayError(f"{line.plan.node}: {what}: {os.strerror(err)} (is "
                                         "another delay process running for this testbed?)")
                    return

    def _run_iptables(self, line: _Line, args: list[str], check: bool = True) -> bool:
        netns = line.plan.netns
        argv = [*(["ip", "netns", "exec", netns] if netns else []), self._iptables, "-w", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise DelayError(f"{line.plan.node}: `iptables {' '.join(args)}` failed: "
                             f"{proc.stderr.strip()}")
        return proc.returncode == 0

    def _unrule(self, line: _Line) -> None:
        hook, *rest = unrule_lines()
        while self._run_iptables(line, hook, check=False):
            pass  # the hook might be in twice
        for args in rest:
            self._run_iptables(line, args, check=False)

    def _serve_http(self) -> None:
        lines = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                if self.path == "/ready":
                    code, body = (200 if lines.ready else 503), {"ready": lines.ready}
                elif self.path == "/status":
                    code, body = 200, lines.status()
                else:
                    code, body = 404, {"error": f"no {self.path}; try /ready or /status"}
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(self.listen, Handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True,
                         name="delay-http").start()

    def status(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "dropped_notices": self.dropped_notices,
            "kernel_stamps": self.stamped,
            "wakeups": self.wakeups,
            "quantum_ms": QUANTUM_S * 1000,
            "nodes": {line.plan.node: {p.node: {
                "delay_ms": p.delay_s * 1000, "queue": p.queue,
                "waiting": len(line.waiting[p.queue]), "released": line.released[p.queue]}
                for p in line.plan.peers} for line in self.lines},
        }

    # the loop
    def release_due(self, now: float) -> float | None:
        """Accept every packet that has waited its delay; the next one's due time."""
        soonest = None
        for line in self.lines:
            for queue, waiting in line.waiting.items():
                last = None
                count = 0
                while waiting and waiting[0][0] <= now:
                    last = waiting.popleft()[1]
                    count += 1
                if last is not None:
                    assert line.sock is not None
                    line.sock.send(accept_through(queue, last))
                    line.released[queue] += count
                if waiting and (soonest is None or waiting[0][0] < soonest):
                    soonest = waiting[0][0]
        return soonest

    def receive(self, line: _Line, now: float) -> None:
        """Queue every packet notice the kernel has for ``line``, with its due time: its
        arrival (the kernel's stamp, else now) plus its link's delay."""
        assert line.sock is not None
        wall_to_mono = now - time.time()
        while True:
            try:
                data = line.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.dropped_notices += 1
                    continue
                raise
            for queue, packet_id, stamp in parse(data)[0]:
                delay = line.delay.get(queue)
                if delay is None:
                    continue
                if stamp is None:
                    self.stamped = False
                    arrived = now
                else:
                    arrived = min(now, stamp + wall_to_mono)
                line.waiting[queue].append((arrived + delay, packet_id))

    def run(self) -> None:
        """Release due packets in rounds. While packets wait, sleep until the next is due
        (at least :data:`QUANTUM_S`); with the kernel stamping arrivals there is no need to
        wake for each arrival either, only often enough that a packet arriving meanwhile on
        the shortest delay is not released late."""
        socks = [line.sock for line in self.lines]
        while True:
            now = time.monotonic()
            soonest = self.release_due(now)
            if soonest is None:
                select.select(socks, [], [])  # idle until a packet arrives
            else:
                wake = max(soonest, now + QUANTUM_S)
                if self.stamped:
                    time.sleep(min(wake, now + max(self._shortest, QUANTUM_S)) - now)
                else:
                    select.select(socks, [], [], wake - now)
            self.wakeups += 1
            now = time.monotonic()
            for line in self.lines:
                self.receive(line, now)


# ---------------------------------------------------------------- command line


def _stop(_signum: int, _frame: Any) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m jupiter.local.delay --listen ADDRESS:PORT --plan JSON`` (see
    :func:`programs`), started on the testbed's first node by ``jupiter local exec``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m jupiter.local.delay",
                                     description="Hold the packets of the testbed's links.")
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT of /ready and /status")
    parser.add_argument("--plan", required=True, help="JSON {lines: [{node, netns, peers}]}")
    args = parser.parse_args(argv)
    try:
        host, sep, port = args.listen.rpartition(":")
        if not sep or not port.isdigit():
            raise DelayError(f"--listen {args.listen!r}: expected ADDRESS:PORT")
        plans = parse_plan(args.plan)
        lines = DelayLines(plans, (host, int(port)))
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        lines.open()
    except (JupiterError, OSError) as exc:
        print(f"jupiter local delay: {exc}", file=sys.stderr, flush=True)
        return 1
    for p in plans:
        print(f"delaying what {p.node} receives: "
              + ", ".join(f"from {x.node} {x.delay_s * 1000:g} ms" for x in p.peers), flush=True)
    try:
        lines.run()
    finally:
        lines.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
