"""Bad input never crashes home or an agent: each gets a clear status code and message."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from drupe_helpers import TOKEN, Cluster, free_port, make_config, wait_until

from jupiter.errors import JupiterError
from jupiter.wait import WaitSpec, wait_for_status

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def cluster(tmp_path: Path):
    cfg, _ = make_config(tmp_path, ["home", "a"], base_ip=70)
    c = Cluster(cfg)
    await c.start_home()
    await c.start_agent("a")
    yield c
    await c.stop()


async def _post(url: str, *, data=None, json_body=None, headers=None) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.post(url, data=data, json=json_body,
                                                    headers=headers) as r:
        return r.status, json.loads(await r.text())


async def test_unauthenticated_requests_get_401(cluster: Cluster) -> None:
    cfg = cluster.cfg
    for token in (None, "wrong-token"):
        code, body = await cluster.get("/status", token=token)
        assert code == 401 and "bearer token" in body["error"]
        code, _ = await cluster.get("/profile", token=token)
        assert code == 401
    code, body = await _post(f"{cfg.home_url}/register",
                             json_body={"node": "a", "address": "http://127.0.0.1:1"})
    assert code == 401
    code, body = await _post(f"{cfg.agent_urls['a']}/probe", data=b"x" * 100,
                             headers={"Authorization": "Bearer nope"})
    assert code == 401
    # open endpoints
    assert (await cluster.get("/healthz", token=None))[0] == 200
    assert (await cluster.get("/metrics", token=None))[0] == 200
    code, text = await cluster.get("/metrics", token=None)
    assert "drupe_requests_rejected_total" in text


async def test_oversized_and_unframed_probes(cluster: Cluster) -> None:
    url = f"{cluster.cfg.agent_urls['a']}/probe"
    cap = cluster.cfg.probe.max_bytes
    code, body = await _post(url, data=b"\0" * cap, headers=AUTH)
    assert code == 200 and body["bytes"] == cap
    # a declared size above the cap is refused before the body is read
    host, port = url.split("//")[1].split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST /probe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                 f"Content-Length: {10**12}\r\n\r\n".encode())
    await writer.drain()
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
    writer.close()
    assert head.startswith("HTTP/1.1 413"), head
    # a chunked body (no Content-Length) is refused
    async def chunks():
        yield b"a" * 1000

    code, body = await _post(url, data=chunks(), headers=AUTH)
    assert code == 400 and "Content-Length" in body["error"]
    # garbage that is not HTTP at all: the connection is dropped, the agent lives on
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"\x16\x03\x01garbage\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(reader.read(), 10)
    writer.close()
    async with aiohttp.ClientSession() as s, s.get(f"{cluster.cfg.agent_urls['a']}/healthz") as r:
        assert r.status == 200


async def test_garbage_json_and_unknown_names_get_400(cluster: Cluster) -> None:
    home = cluster.cfg.home_url
    cases = [
        ("/register", b"{not json", "not valid JSON"),
        ("/register", b"[1, 2]", "JSON object"),
        ("/register", json.dumps({"node": "mallory", "address": "http://1.2.3.4:1"}).encode(),
         "unknown node 'mallory'"),
        ("/register", json.dumps({"node": "a", "address": "ftp://x"}).encode(), "'address'"),
        ("/report", json.dumps({"node": "a", "links": {"home": {"latency_s": 0.001,
                                                                "bandwidth_bps": -5}}}).encode(),
         "links.home"),
        ("/report", json.dumps({"node": "a", "links": {"a": {}}}).encode(), "not a peer"),
        ("/report", json.dumps({"node": "a", "bench": {"speed": "fast"}}).encode(),
         "bench.speed"),
        ("/report", json.dumps({"node": "a", "resources": {"cpu_count": 2, "bogus": 1}}).encode(),
         "bogus"),
        ("/exec", json.dumps({"exec": {"t": {"nowhere": {"seconds": 1, "output_bytes": 2}}}})
         .encode(), "exec.t.nowhere"),
        ("/exec", json.dumps({"exec": {"t": {"a": {"seconds": "x"}}}}).encode(), "exec.t.a"),
    ]
    for path, body, expect in cases:
        code, answer = await _post(f"{home}{path}", data=body,
                                   headers={**AUTH, "Content-Type": "application/json"})
        assert code == 400, (path, body, answer)
        assert expect in answer["error"], (path, answer)
    code, answer = await cluster.get("/next?node=mallory")
    assert code == 400
    # a configured node that did not register yet is told to register (409)
    code, answer = await cluster.get("/next?node=home")
    assert code == 409 and "register" in answer["error"]
    # home is still fine
    st = await cluster.status()
    assert st["registered"] == ["a"]


async def test_unreachable_peer_is_a_link_error(tmp_path: Path) -> None:
    cfg, _ = make_config(tmp_path, ["home", "a", "ghost"], base_ip=80,
                         options={"slot_timeout_s": 2.0, "stale_after_s": 60.0,
                                  "register_grace_s": 0.5})
    c = Cluster(cfg)
    await c.start_home()
    try:
        await c.start_agent("home")
        await c.start_agent("a")
        # ghost registers with an address where nothing listens, then never polls
        dead = f"http://127.0.0.82:{free_port('127.0.0.82')}"
        code, _ = await _post(f"{cfg.home_url}/register", json_body={"node": "ghost",
                                                                     "address": dead},
                              headers=AUTH)
        assert code == 200

        async def errors_seen() -> bool:
            st = await c.status()
            pairs = {(e["src"], e["dst"]) for e in st["errors"]}
            measured = "home->a" not in st["missing"] and "a->home" not in st["missing"]
            return measured and {("home", "ghost"), ("a", "ghost"), ("ghost", "home")} <= pairs

        await wait_until(errors_seen, 30, "link errors for ghost, home<->a measured", c.status)
        st = await c.status()
        by_pair = {(e["src"], e["dst"]): e["error"] for e in st["errors"]}
        assert dead in by_pair[("home", "ghost")] and "failed" in by_pair[("home", "ghost")]
        assert "no report from agent ghost" in by_pair[("ghost", "home")]
        assert not st["complete"]
        assert "home->ghost" in st["missing"] and "home->a" not in st["missing"]
        assert (await c.get("/healthz"))[0] == 200
    finally:
        await c.stop()


async def test_node_that_never_reports(tmp_path: Path) -> None:
    cfg, _ = make_config(tmp_path, ["home", "a", "silent"], base_ip=90,
                         options={"register_grace_s": 0.5})
    c = Cluster(cfg)
    await c.start_home()
    try:
        await c.start_agent("home")
        await c.start_agent("a")

        async def live_pairs_done() -> bool:
            return (await c.status())["done"] == 2

        await wait_until(live_pairs_done, 30, "home<->a measured", c.status)
        st = await c.status()
        assert st["unregistered"] == ["silent"] and not st["complete"]
        assert set(st["missing"]) == {"home->silent", "a->silent", "silent->home", "silent->a"}
        assert "silent" not in json.loads(json.dumps((await c.get("/profile"))[1]["nodes"]))
        # the deploy's wait fails naming what is missing
        spec = WaitSpec(url=f"{cfg.home_url}/status", token_file=cfg.token_file,
                        until="complete", missing_key="missing", label="drupe", timeout=0.5,
                        interval=0.1)
        with pytest.raises(JupiterError) as err:
            await asyncio.to_thread(wait_for_status, spec, lambda _line: None)
        assert "silent->home" in str(err.value) and "[drupe] 2/6" in str(err.value)
    finally:
        await c.stop()


async def test_publish_failure_is_reported_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    cfg, _ = make_config(tmp_path, ["home", "a"], base_ip=100,
                         options={"publish": {"kind": "file",
                                              "path": str(blocker / "profile.json")}})
    c = Cluster(cfg)
    await c.start_home()
    try:
        code, body = await c.get("/ready", token=None)
        assert code == 503 and "cannot write the profile" in body["error"]
        st = await c.status()
        assert str(blocker) in st["publish"]["error"]
        assert (await c.get("/healthz", token=None))[0] == 200
    finally:
        await c.stop()
