"""The WAVE service over real HTTP on 127.0.0.1."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from wave_helpers import dnad_app, dnad_profile

from jupiter.errors import InvalidInput
from jupiter.wave import schedule
from jupiter.wave.config import build_config, load_config
from jupiter.wave.service import create_app

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_config(tmp_path: Path, profile_url: str | None = None, **options) -> dict:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    app = dnad_app()
    mapping = schedule(app, dnad_profile(), algorithm="heft", input_bytes=50_000)
    return build_config(app=app.to_dict(), mapping=mapping.to_dict(), profile_url=profile_url,
                        token_file=str(token_file), state_dir=str(tmp_path / "state"),
                        options=options)


@pytest.fixture
async def wave(tmp_path):
    config = make_config(tmp_path)
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    async with ClientSession(base_url=str(server.make_url("/"))) as http:
        yield http, config
    await server.close()


def faster_cloud_profile() -> dict:
    """cloud1 gets 20x faster and well connected: HEFT moves work there."""
    prof = dnad_profile().to_dict()
    prof["generated_at"] += 600
    prof["nodes"]["cloud1"]["speed"] = 60.0
    for per in prof["exec"].values():
        per["cloud1"]["seconds"] = 0.05 / 60
    for s, dsts in prof["links"].items():
        for d, link in dsts.items():
            if "cloud1" in (s, d):
                link.update(latency_s=0.001, bandwidth_bps=1e9)
    return prof


async def test_health_ready_metrics_are_open_and_mapping_is_persisted(wave, tmp_path):
    http, config = wave
    async with http.get("/healthz") as r:
        assert r.status == 200
    async with http.get("/ready") as r:
        assert r.status == 200
    saved = json.loads((tmp_path / "state" / "mapping.json").read_text())
    assert saved == config["mapping"]
    async with http.get("/metrics") as r:
        text = await r.text()
    assert r.status == 200
    latency = config["mapping"]["predicted"]["latency_s"]
    line = next(x for x in text.splitlines()
                if x.startswith("jupiter_wave_predicted_latency_seconds "))
    assert float(line.split()[1]) == pytest.approx(latency)


async def test_requests_without_the_token_are_refused(wave):
    http, _ = wave
    for method, path in (("GET", "/mapping"), ("GET", "/status"), ("POST", "/reschedule")):
        async with http.request(method, path) as r:
            assert r.status == 401
            assert r.headers["WWW-Authenticate"] == "Bearer"
        async with http.request(method, path, headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
    async with http.get("/mapping", headers=AUTH) as r:
        assert r.status == 200


async def test_status_reports_progress_and_predictions(wave):
    http, config = wave
    async with http.get("/status", headers=AUTH) as r:
        status = await r.json()
    assert status["done"] == status["total"] == 1
    assert status["ready"] is True
    assert status["algorithm"] == "heft"
    assert status["generation"] == 0
    assert status["predicted"] == config["mapping"]["predicted"]


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda p: p["links"]["edge1"]["edge2"].update(bandwidth_bps=-5), "links.edge1.edge2"),
    (lambda p: p["nodes"].pop("edge2"), "nodes.edge2"),
    (lambda p: p.update(schema="jupiter.profile/v0"), "schema"),
    (lambda p: p["exec"]["global_fusion"]["pi1"].pop("seconds"),
     "exec.global_fusion.pi1.seconds"),
])
async def test_bad_profile_is_refused_and_the_old_mapping_kept(wave, tmp_path, mutate, field):
    http, config = wave
    prof = faster_cloud_profile()
    mutate(prof)
    async with http.post("/reschedule", json=prof, headers=AUTH) as r:
        body = await r.json()
    assert r.status == 400
    assert body["field"] == field
    assert field in body["error"]
    async with http.get("/mapping", headers=AUTH) as r:
        assert await r.json() == config["mapping"]
    assert json.loads((tmp_path / "state" / "mapping.json").read_text()) == config["mapping"]
    async with http.get("/status", headers=AUTH) as r:
        status = await r.json()
    assert status["reschedules"] == {"ok": 0, "rejected": 1}
    assert status["last_error"]["field"] == field


async def test_body_that_is_not_json_is_refused(wave):
    http, _ = wave
    async with http.post("/reschedule", data=b"{not json", headers=AUTH) as r:
        assert r.status == 400
        assert (await r.json())["field"] == "body"


async def test_reschedule_with_a_new_profile_replaces_and_persists_the_mapping(wave, tmp_path):
    http, config = wave
    old = config["mapping"]
    async with http.post("/reschedule", json=faster_cloud_profile(), headers=AUTH) as r:
        body = await r.json()
    assert r.status == 200, body
    assert body["changed"] is True and body["generation"] == 1
    new = body["mapping"]
    assert new["algorithm"] == "heft"
    assert "cloud1" in new["mapping"].values()
    assert new["predicted"]["latency_s"] < old["predicted"]["latency_s"]
    assert body["moved"] and all(new["mapping"][t] == n for t, (_, n) in body["moved"].items())
    async with http.get("/mapping", headers=AUTH) as r:
        assert await r.json() == new
    assert json.loads((tmp_path / "state" / "mapping.json").read_text()) == new
    assert not [p for p in (tmp_path / "state").iterdir() if p.name != "mapping.json"]
    async with http.get("/metrics") as r:
        text = await r.text()
    assert 'jupiter_wave_reschedules_total{result="ok"} 1.0' in text
    assert "jupiter_wave_mapping_generation 1.0" in text


async def test_reschedule_with_another_algorithm(wave):
    http, _ = wave
    async with http.post("/reschedule?algorithm=spread", json=faster_cloud_profile(),
                         headers=AUTH) as r:
        assert r.status == 200
        assert (await r.json())["mapping"]["algorithm"] == "spread"
    async with http.post("/reschedule?algorithm=bogus", json=faster_cloud_profile(),
                         headers=AUTH) as r:
        assert r.status == 400
        assert (await r.json())["field"] == "algorithm"


async def test_empty_reschedule_fetches_the_profile_from_drupe(tmp_path):
    seen: list[str | None] = []

    async def profile_handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response(faster_cloud_profile())

    drupe = web.Application()
    drupe.router.add_get("/profile", profile_handler)
    drupe_server = TestServer(drupe, host="127.0.0.1")
    await drupe_server.start_server()
    config = make_config(tmp_path, profile_url=str(drupe_server.make_url("/profile")))
    server = TestServer(create_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession(base_url=str(server.make_url("/"))) as http:
            async with http.post("/reschedule", headers=AUTH) as r:
                body = await r.json()
            assert r.status == 200, body
            assert "cloud1" in body["mapping"]["mapping"].values()
    finally:
        await server.close()
        await drupe_server.close()
    assert seen == [f"Bearer {TOKEN}"]


async def test_empty_reschedule_without_profile_url_is_a_400(wave):
    http, _ = wave
    async with http.post("/reschedule", headers=AUTH) as r:
        assert r.status == 400
        assert (await r.json())["field"] == "body"


def test_build_config_defaults_from_the_mapping(tmp_path):
    config = make_config(tmp_path, port=7799)
    assert config["schema"] == "jupiter.wave.config/v1"
    assert config["listen"] == "0.0.0.0:7799"
    assert config["algorithm"] == "heft"
    assert config["nodes"] == ["home", "edge1", "edge2", "cloud1", "pi1"]
    assert config["schedule_options"] == {"input_bytes": 50_000, "home": "home"}
    path = tmp_path / "wave.json"
    path.write_text(json.dumps(config))
    assert load_config(path) == config


def test_build_config_names_bad_input(tmp_path):
    good = make_config(tmp_path)
    mapping = copy.deepcopy(good["mapping"])
    del mapping["mapping"]["global_fusion"]
    mapping["mapping"]["ghost"] = "edge1"
    with pytest.raises(InvalidInput) as exc:
        build_config(app=good["app"], mapping=mapping, profile_url=None, token_file="",
                     state_dir=str(tmp_path), options={"listen": "nowhere", "colour": 1,
                                                       "algorithm": "magic"})
    fields = [p.field for p in exc.value.problems]
    assert fields.count("mapping") == 2
    assert {"listen", "colour", "algorithm", "token_file"} <= set(fields)
    assert "global_fusion" in str(exc.value) and "ghost" in str(exc.value)


def test_load_config_names_the_file_and_line(tmp_path):
    path = tmp_path / "wave.json"
    path.write_text('{\n  "schema": "jupiter.wave.config/v1",\n  oops\n}')
    with pytest.raises(InvalidInput) as exc:
        load_config(path)
    assert exc.value.problems[0].file == str(path)
    assert exc.value.problems[0].line == 3


def test_missing_token_file_is_named(tmp_path):
    config = make_config(tmp_path)
    config["token_file"] = str(tmp_path / "absent")
    with pytest.raises(InvalidInput, match="absent"):
        create_app(config)


async def test_reschedule_without_a_lost_node(wave):
    http, _ = wave
    prof = faster_cloud_profile()
    del prof["nodes"]["cloud1"]  # cloud1 is gone: not measured any more
    async with http.post("/reschedule", json=prof, headers=AUTH) as r:
        assert r.status == 400
        assert (await r.json())["field"] == "nodes.cloud1"
    async with http.post("/reschedule?nodes=home,edge1,edge2,pi1", json=prof,
                         headers=AUTH) as r:
        body = await r.json()
    assert r.status == 200, body
    assert set(body["mapping"]["mapping"].values()) <= {"edge1", "edge2", "pi1"}
