"""burst_speed, host, input_bytes and warm_seconds: measured, carried to the profile, parsed
with defaults."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from drupe_helpers import make_config

from jupiter.drupe import resources
from jupiter.drupe.config import parse_config
from jupiter.drupe.state import HomeState, ReportError
from jupiter.profile import SCHEMA, ExecProfile, NodeProfile, Profile

OLD_PROFILE: dict[str, Any] = {  # as published before the three fields existed
    "schema": SCHEMA,
    "complete": True,
    "generated_at": 1.0,
    "nodes": {"a": {"cpu_count": 2, "speed": 0.5, "mem_total": 1, "mem_free": 1,
                    "cpu_percent": 0.0, "mem_percent": 0.0, "updated": 1.0, "stale": False}},
    "links": {},
    "exec": {"t": {"a": {"seconds": 0.01, "output_bytes": 10}}},
}


def _with(node: dict[str, Any] | None = None, ex: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    doc = json.loads(json.dumps(OLD_PROFILE))
    doc["nodes"]["a"].update(node or {})
    doc["exec"]["t"]["a"].update(ex or {})
    return doc


def test_host_id_hashes_the_boot_id(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    boot = tmp_path / "boot_id"
    boot.write_text("6a1f0c2e-0000-4d3b-9e8f-0123456789ab\n", encoding="ascii")
    monkeypatch.setattr(resources, "BOOT_ID_PATH", boot)
    h = resources.host_id()
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert h == hashlib.sha256(b"6a1f0c2e-0000-4d3b-9e8f-0123456789ab").hexdigest()[:16]
    assert resources.host_id() == h
    node = resources.resource_profile(1.0)
    assert node.host == h
    assert "6a1f0c2e" not in json.dumps(node.to_dict())  # never the raw boot id


def test_host_id_is_empty_when_the_boot_id_is_unreadable(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.setattr(resources, "BOOT_ID_PATH", tmp_path / "missing")
    assert resources.host_id() == ""
    assert resources.resource_profile(1.0).host == ""


def test_host_id_of_this_machine_is_stable() -> None:
    if not resources.BOOT_ID_PATH.exists():
        pytest.skip(f"{resources.BOOT_ID_PATH} does not exist here")
    h = resources.host_id()
    assert re.fullmatch(r"[0-9a-f]{16}", h) and resources.host_id() == h


def test_resource_profile_carries_burst_speed() -> None:
    assert resources.resource_profile(0.5).burst_speed == 0.0  # unknown
    assert resources.resource_profile(0.5, burst_speed=1.23456).burst_speed == 1.2346
    assert resources.resource_profile(0.5, burst_speed=0.4).burst_speed == 0.5  # >= speed


def test_old_profiles_parse_with_unknown_defaults() -> None:
    prof = Profile.from_dict(OLD_PROFILE)
    assert prof.nodes["a"].burst_speed == 0.0 and prof.nodes["a"].host == ""
    assert prof.exec["t"]["a"].input_bytes == 0
    assert prof.exec["t"]["a"].warm_seconds == 0.0  # unknown: a stream pays `seconds`


def test_new_fields_round_trip() -> None:
    doc = _with({"burst_speed": 1.9, "host": "0123456789abcdef"},
                {"input_bytes": 1200, "digest": "3f0c9a1b2d4e5f60", "warm_seconds": 0.004})
    prof = Profile.from_dict(doc)
    assert prof.nodes["a"] == NodeProfile(cpu_count=2, speed=0.5, mem_total=1, mem_free=1,
                                          updated=1.0, burst_speed=1.9,
                                          host="0123456789abcdef")
    assert prof.exec["t"]["a"] == ExecProfile(seconds=0.01, output_bytes=10, input_bytes=1200,
                                              digest="3f0c9a1b2d4e5f60", warm_seconds=0.004)
    again = json.loads(json.dumps(prof.to_dict()))
    assert again == doc
    assert Profile.from_dict(again) == prof


@pytest.mark.parametrize(("doc", "field"), [
    (_with({"burst_speed": -0.1}), "nodes.a.burst_speed"),
    (_with({"burst_speed": "fast"}), "nodes.a.burst_speed"),
    (_with({"host": 7}), "nodes.a.host"),
    (_with(ex={"digest": 7}), "exec.t.a.digest"),
    (_with(ex={"input_bytes": -1}), "exec.t.a.input_bytes"),
    (_with(ex={"input_bytes": "many"}), "exec.t.a.input_bytes"),
    (_with(ex={"warm_seconds": -0.001}), "exec.t.a.warm_seconds"),
    (_with(ex={"warm_seconds": "NaN"}), "exec.t.a.warm_seconds"),
    (_with(ex={"seconds": "inf"}), "exec.t.a.seconds"),
    (_with(ex={"digest": "f" * 65}), "exec.t.a.digest"),
])
def test_bad_new_fields_are_rejected_by_name(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"field '{re.escape(field)}'"):
        Profile.from_dict(doc)


def _state(tmp_path: Path) -> HomeState:
    _, doc = make_config(tmp_path, ["h", "w"], base_ip=140)
    st = HomeState(parse_config(doc), clock=lambda: 1000.0)
    for i, n in enumerate(("h", "w")):
        st.register({"node": n, "address": f"http://127.0.0.1:{i + 1}",
                     "resources": {"cpu_count": 2, "host": "0123456789abcdef"}})
    return st


def test_home_keeps_burst_speed_from_bench_slots_and_host_from_resources(tmp_path: Path
                                                                        ) -> None:
    st = _state(tmp_path)
    st.apply_report({"node": "h", "bench": {"speed": 0.25, "burst_speed": 1.02},
                     "resources": {"speed": 0.25, "burst_speed": 1.02,
                                   "host": "0123456789abcdef"}})
    st.apply_report({"node": "w", "bench": {"speed": 1.1}})  # an older agent: no burst_speed
    prof = Profile.from_dict(st.profile().to_dict())
    assert (prof.nodes["h"].speed, prof.nodes["h"].burst_speed) == (0.25, 1.02)
    assert (prof.nodes["w"].speed, prof.nodes["w"].burst_speed) == (1.1, 0.0)
    assert prof.nodes["h"].host == prof.nodes["w"].host == "0123456789abcdef"
    with pytest.raises(ReportError, match=r"'bench\.burst_speed'"):
        st.apply_report({"node": "h", "bench": {"speed": 0.25, "burst_speed": -1}})
    with pytest.raises(ReportError, match="'burst_speed'"):
        st.apply_report({"node": "h", "resources": {"burst_speed": -1}})
    with pytest.raises(ReportError, match="'host'"):
        st.apply_report({"node": "h", "resources": {"host": None}})
    assert st.profile().nodes["h"].burst_speed == 1.02  # rejected reports changed nothing


def test_home_merges_input_bytes(tmp_path: Path) -> None:
    st = _state(tmp_path)
    st.merge_exec({"exec": {"t": {"h": {"seconds": 0.1, "output_bytes": 5, "input_bytes": 7},
                                  "w": {"seconds": 0.2, "output_bytes": 5}}}})
    prof = Profile.from_dict(st.profile().to_dict())
    assert prof.exec["t"]["h"].input_bytes == 7 and prof.exec["t"]["w"].input_bytes == 0
    with pytest.raises(ReportError, match=r"'exec\.t\.h\.input_bytes'"):
        st.merge_exec({"exec": {"t": {"h": {"seconds": 0.1, "output_bytes": 5,
                                            "input_bytes": -7}}}})
    with pytest.raises(ReportError, match=r"'exec\.t\.w\.warm_seconds'"):
        st.merge_exec({"exec": {"t": {"w": {"seconds": 0.1, "output_bytes": 5,
                                            "warm_seconds": "slow"}}}})
    st.merge_exec({"exec": {"t": {"w": {"seconds": 0.3, "output_bytes": 5,
                                        "warm_seconds": 0.1}}}})
    assert Profile.from_dict(st.profile().to_dict()).exec["t"]["w"].warm_seconds == 0.1
    assert st.profile().exec["t"]["h"].input_bytes == 7  # the refused reports changed nothing
    # a restarted home reads them back from the published profile
    (tmp_path / "again").mkdir()
    st2 = _state(tmp_path / "again")
    assert st2.load_exec(st.profile().to_dict()) == 2
    assert st2.exec["t"]["h"].input_bytes == 7


def test_link_burst_bytes_parse_with_a_default_and_bad_values_name_the_field() -> None:
    doc = json.loads(json.dumps(OLD_PROFILE))
    doc["nodes"]["b"] = dict(doc["nodes"]["a"])
    doc["links"] = {"a": {"b": {"latency_s": 0.001, "bandwidth_bps": 2e7,
                                "quad_ms_kbit": [0, 0.05, 1], "samples": 8}}}
    assert Profile.from_dict(doc).links["a"]["b"].burst_bytes == 0.0  # older profiles
    doc["links"]["a"]["b"]["burst_bytes"] = 12500
    prof = Profile.from_dict(doc)
    assert prof.links["a"]["b"].burst_bytes == 12500.0
    assert Profile.from_dict(prof.to_dict()).links["a"]["b"].burst_bytes == 12500.0
    for bad in (-1, float("inf"), "lots"):
        doc["links"]["a"]["b"]["burst_bytes"] = bad
        with pytest.raises(ValueError, match=r"links\.a\.b"):
            Profile.from_dict(doc)


def test_an_agent_report_with_a_bad_burst_is_refused(tmp_path: Path) -> None:
    st = _state(tmp_path)
    good = {"latency_s": 0.001, "bandwidth_bps": 2e7, "quad_ms_kbit": [0, 0.05, 1],
            "samples": 8, "burst_bytes": 3125.0}
    st.apply_report({"node": "h", "links": {"w": good}})
    assert st.profile().links["h"]["w"].burst_bytes == 3125.0
    with pytest.raises(ReportError, match="burst_bytes must be a finite number >= 0"):
        st.apply_report({"node": "h", "links": {"w": {**good, "burst_bytes": -5}}})
    assert st.profile().links["h"]["w"].burst_bytes == 3125.0  # nothing stored is lost
