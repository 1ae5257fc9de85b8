"""build_config (pure) and loading/validating the config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from circe_apps import dnad_app

from jupiter.circe.config import DEFAULT_OPTIONS, SCHEMA, build_config, load_config
from jupiter.errors import InvalidInput


def _inputs(tmp_path: Path) -> dict:
    app = dnad_app(tmp_path / "app")
    return {
        "app": app.to_dict(),
        "mapping": {t.name: "edge1" for t in app.tasks},
        "endpoints": {"home": "http://10.77.0.2:7800",
                      "tasks": {t.key: f"http://10.77.0.3:{7801 + i}"
                                for i, t in enumerate(app.tasks)}},
        "app_dir": str(tmp_path / "app"),
        "token_file": str(tmp_path / "token"),
        "state_dir": str(tmp_path / "state"),
    }


def test_build_config_merges_defaults_and_round_trips(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    cfg = build_config(**inputs, options={"concurrency": 2,
                                          "tasks": {"aggregate0": {"retries": 0}}})
    assert cfg["schema"] == SCHEMA
    assert cfg["options"]["concurrency"] == 2
    assert cfg["options"]["spool_max_items"] == DEFAULT_OPTIONS["spool_max_items"]
    path = tmp_path / "circe.json"
    path.write_text(json.dumps(cfg))
    loaded = load_config(path)
    agg = loaded.task_by_key("aggregate0")
    assert loaded.option("retries", "aggregate0") == 0
    assert loaded.option("retries", "local-pro-b9e7c5") == DEFAULT_OPTIONS["retries"]
    assert loaded.option("concurrency", agg.key) == 2
    assert loaded.parent_keys(loaded.app.task("local_pro")) == ["home"]
    assert loaded.parent_keys(loaded.app.task("global_fusion")) == [
        loaded.app.task(f"fusion_center{i}").key for i in range(3)]
    assert loaded.child_keys(loaded.app.task("global_fusion")) == ["home"]
    assert loaded.sink_keys() == [loaded.app.task("global_fusion").key]
    assert loaded.results_dir == tmp_path / "state" / "results"
    assert load_config(path, state_dir=str(tmp_path / "x")).state_dir == tmp_path / "x"


def test_build_config_reports_every_problem(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path)
    del inputs["mapping"]["aggregate1"]
    del inputs["endpoints"]["tasks"]["aggregate2"]
    with pytest.raises(InvalidInput) as err:
        build_config(**inputs, options={"concurency": 2, "retries": -1, "executor": "gpu",
                                        "tasks": {"nope": {}}})
    text = str(err.value)
    for expected in ("'aggregate1' is not mapped", "no endpoint URL for task key 'aggregate2'",
                     "unknown option 'concurency'", "retries must be an integer >= 0",
                     "executor must be 'thread' or 'process'", "unknown task key 'nope'"):
        assert expected in text
    assert len(err.value.problems) == 6


def test_load_config_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "circe.json"
    bad.write_text('{"schema": "jupiter.circe/v1",\n  "app": }\n')
    with pytest.raises(InvalidInput, match=r"circe.json:2: not JSON"):
        load_config(bad)
    bad.write_text(json.dumps({"schema": "jupiter.wave/v1"}))
    with pytest.raises(InvalidInput, match=r"expected schema 'jupiter\.circe/v1'"):
        load_config(bad)
    with pytest.raises(InvalidInput, match="cannot read"):
        load_config(tmp_path / "missing.json")
    cfg = build_config(**_inputs(tmp_path), options={})
    del cfg["endpoints"]
    bad.write_text(json.dumps(cfg))
    with pytest.raises(InvalidInput, match="missing field 'endpoints'"):
        load_config(bad)


def test_a_local_pipeline_gives_every_process_its_own_port(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """Ports are picked before the servers bind them: two draws of one port would start one
    server and leave the other's URL answered by it (CI saw a task's pushes refused by
    another task this way). Even when the draw keeps landing on one port, they differ."""
    import random

    from circe_apps import diamond_app

    from jupiter.circe import devrun

    monkeypatch.setattr(random.Random, "choice", lambda self, seq: seq[0])
    assert devrun.free_port() == devrun.free_port()  # the draw: always the first candidate
    app = diamond_app(tmp_path / "app")
    pipeline = devrun.LocalPipeline(app, tmp_path / "app", tmp_path / "state")
    assert len(set(pipeline.ports.values())) == len(pipeline.ports) == len(app.tasks) + 1
    first = devrun.free_port()
    assert devrun.free_port(taken=[first]) != first
