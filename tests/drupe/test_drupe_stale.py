"""Agents that stop reporting are marked stale (not silently kept), and recover."""

from __future__ import annotations

import json
from pathlib import Path

from drupe_helpers import Cluster, make_config, wait_until

from jupiter.drupe.config import parse_config
from jupiter.drupe.state import HomeState
from jupiter.profile import Profile


async def test_agent_that_stops_goes_stale_and_comes_back(tmp_path: Path) -> None:
    cfg, _ = make_config(tmp_path, ["home", "e1", "e2"], base_ip=110,
                         options={"stale_after_s": 1.0, "poll_wait_s": 0.25})
    c = Cluster(cfg)
    await c.start_home()
    try:
        for n in cfg.nodes:
            await c.start_agent(n)

        async def complete() -> bool:
            return bool((await c.status())["complete"])

        await wait_until(complete, 60, "complete", c.status)
        await c.stop_agent("e2")

        async def e2_stale() -> bool:
            return (await c.status())["stale"] == ["e2"]

        await wait_until(e2_stale, 20, "e2 stale", c.status)
        st = await c.status()
        assert not st["complete"]
        prof = Profile.from_dict((await c.get("/profile"))[1])
        assert prof.nodes["e2"].stale and not prof.nodes["e1"].stale
        assert not prof.complete

        async def file_says_stale() -> bool:
            doc = json.loads(cfg.profile_path.read_text())
            return doc["nodes"]["e2"]["stale"] is True and doc["complete"] is False

        await wait_until(file_says_stale, 10, "published profile marks e2 stale")

        await c.start_agent("e2")
        await wait_until(complete, 60, "complete again after e2 restarted", c.status)
        assert (await c.status())["stale"] == []
    finally:
        await c.stop()


def test_staleness_is_a_function_of_the_clock(tmp_path: Path) -> None:
    _, doc = make_config(tmp_path, ["h", "w"], base_ip=120)
    cfg = parse_config(doc)
    now = [1000.0]
    st = HomeState(cfg, clock=lambda: now[0])
    st.register({"node": "h", "address": "http://127.0.0.1:1"})
    st.register({"node": "w", "address": "http://127.0.0.1:2"})
    now[0] += cfg.stale_after_s - 0.1
    st.seen("h")
    assert st.stale() == []
    now[0] += 0.2
    assert st.stale() == ["w"]
    assert st.live() == ["h"]
    assert st.status()["stale"] == ["w"]
    assert st.profile().nodes["w"].stale is True
    st.seen("w")
    assert st.stale() == []
