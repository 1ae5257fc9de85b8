"""build_config / load_config: defaults, overrides, errors naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupiter.drupe.config import (
    SCHEMA,
    build_config,
    default_listen,
    load_config,
    parse_config,
    parse_listen,
)
from jupiter.errors import InvalidInput, JupiterError

EP = {"home": "http://10.77.0.2:7700",
      "agents": {"home": "http://10.77.0.2:7701", "edge1": "http://10.77.0.3:7701"}}


def _build(**over):
    kw = dict(deployment="jupiter", nodes=["home", "edge1"], home="home", endpoints=EP,
              token_file="/s/token", state_dir="/s", options={})
    kw.update(over)
    return build_config(**kw)


def test_defaults_and_round_trip() -> None:
    doc = _build()
    assert doc["schema"] == SCHEMA and doc["nodes"] == ["home", "edge1"]
    assert doc["publish"] == {"kind": "file"} and doc["min_samples"] == 8
    cfg = parse_config(json.loads(json.dumps(doc)))
    assert cfg.home_url == "http://10.77.0.2:7700"
    assert cfg.agent_urls["edge1"] == "http://10.77.0.3:7701"
    assert cfg.probe.target_s == 0.2 and cfg.profile_path == Path("/s/profile.json")


def test_options_override_nested_values() -> None:
    doc = _build(options={"min_samples": 12, "probe": {"target_s": 0.3},
                          "publish": {"kind": "configmap", "name": "jupiter-drupe-profile",
                                      "namespace": "jupiter"}})
    cfg = parse_config(doc)
    assert cfg.min_samples == 12 and cfg.probe.target_s == 0.3 and cfg.probe.repeats == 2
    assert cfg.publish == {"kind": "configmap", "name": "jupiter-drupe-profile",
                           "namespace": "jupiter"}


def test_bad_options_name_every_field() -> None:
    with pytest.raises(InvalidInput) as err:
        _build(home="nowhere", endpoints={"home": "ftp://x", "agents": {"home": "http://a:1"}},
               options={"min_samples": 1, "ewma_alpha": 2, "probe": {"factor": 1, "bogus": 1,
                                                                  "idle_s": -1},
                        "publish": {"kind": "configmap", "name": "Bad_Name"}, "typo": 1})
    fields = {p.field for p in err.value.problems}
    assert {"home", "endpoints.home", "endpoints.agents.edge1", "min_samples", "ewma_alpha",
            "probe.factor", "probe.bogus", "probe.idle_s", "publish.name", "publish.namespace",
            "typo"} <= fields
    assert "drupe options" in str(err.value)


def test_load_config_errors_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "drupe.json"
    with pytest.raises(InvalidInput, match="cannot read"):
        load_config(p)
    p.write_text("{\n  oops\n}")
    with pytest.raises(InvalidInput) as err:
        load_config(p)
    assert f"{p}:2" in str(err.value)
    doc = _build()
    doc["schema"] = "other/v9"
    p.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput) as err:
        load_config(p)
    assert str(p) in str(err.value) and "schema" in str(err.value)


def test_token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = tmp_path / "token"
    tok.write_text("  secret \n")
    assert parse_config(_build(token_file=str(tok))).read_token() == "secret"
    with pytest.raises(JupiterError, match="cannot read token file"):
        parse_config(_build(token_file=str(tmp_path / "missing"))).read_token()
    monkeypatch.setenv("JUPITER_TOKEN_FILE", str(tok))
    assert parse_config(_build(token_file="")).read_token() == "secret"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(JupiterError, match="is empty"):
        parse_config(_build(token_file=str(tmp_path / "empty"))).read_token()


def test_listen_addresses() -> None:
    assert default_listen("http://10.77.0.3:7701") == "10.77.0.3:7701"
    assert default_listen("http://jupiter-drupe-home:7700") == "0.0.0.0:7700"
    assert parse_listen("127.0.1.2:80") == ("127.0.1.2", 80)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("nohost", "h:0", "h:99999", "h:x"):
        with pytest.raises(JupiterError, match="HOST:PORT"):
            parse_listen(bad)
