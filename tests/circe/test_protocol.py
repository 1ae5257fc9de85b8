"""The HTTP protocol of task servers and home: auth, integrity, names, sizes, repeats.

One real pipeline (diamond, process interface) serves every test of this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from circe_apps import diamond_app

from jupiter.circe.devrun import LocalPipeline
from jupiter.circe.transport import FILES_HEADER, SHA_HEADER, sha256_hex

MAX_BODY = 4096


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    root = tmp_path_factory.mktemp("protocol")
    app = diamond_app(root / "app")
    p = LocalPipeline(app, root / "app", root / "state",
                      options={"max_body_bytes": MAX_BODY, "event_interval_s": 0.05})
    p.start()
    yield p
    p.stop()


def key(p: LocalPipeline, name: str) -> str:
    return p.app.task(name).key


def put(p: LocalPipeline, target: str, path: str, body: bytes, *, sha: str | None = None,
        headers: dict[str, str] | None = None, token: str | None = None
        ) -> tuple[int, dict[str, str], dict]:
    hdrs = {SHA_HEADER: sha if sha is not None else sha256_hex(body), **(headers or {})}
    code, resp_headers, raw = p.request(target, path, body, method="PUT", headers=hdrs,
                                        token=token)
    return code, resp_headers, json.loads(raw or b"{}")


def test_open_endpoints_and_token_protected_ones(pipe: LocalPipeline) -> None:
    a = key(pipe, "A")
    for target in ("home", a):
        for path in ("/healthz", "/ready", "/metrics"):
            assert pipe.request(target, path, token="")[0] == 200
        assert pipe.request(target, "/status", token="")[0] == 401
        assert pipe.request(target, "/status", token="wrong-token-0123456789")[0] == 401
        assert pipe.request(target, "/status")[0] == 200
    metrics = pipe.request("home", "/metrics")[2].decode()
    assert "jupiter_circe_items_submitted_total" in metrics
    assert "jupiter_circe_task_spool_items" in pipe.request(a, "/metrics")[2].decode()


def test_wrong_or_missing_token_is_401(pipe: LocalPipeline) -> None:
    a = key(pipe, "A")
    for token in ("", "not-the-token-0123456789"):
        code, headers, body = put(pipe, a, "/items/t1/home/t1.bin", b"x", token=token)
        assert code == 401 and "bearer token" in body["error"]
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert put(pipe, "home", "/submit/t1.bin", b"x", token=token)[0] == 401
    assert pipe.status(a)["spool"]["items"] == 0


def test_corrupt_or_unhashed_bodies_are_400(pipe: LocalPipeline) -> None:
    a = key(pipe, "A")
    code, _, body = put(pipe, a, "/items/c1/home/c1.bin", b"payload",
                        sha=sha256_hex(b"other payload"))
    assert code == 400 and "does not match" in body["error"]
    code, _, body = put(pipe, a, "/items/c1/home/c1.bin", b"payload", sha="")
    assert code == 400 and "missing X-Content-SHA256" in body["error"]
    code, _, body = put(pipe, a, "/items/c1/home/c1.bin", b"payload", sha="abc")
    assert code == 400 and "malformed" in body["error"]
    code, _, body = put(pipe, "home", "/submit/c1.bin", b"payload", sha=sha256_hex(b"x"))
    assert code == 400
    code, _, body = put(pipe, a, "/items/c1/home/c1.bin", b"x", headers={FILES_HEADER: "zero"})
    assert code == 400 and FILES_HEADER in body["error"]
    assert pipe.status(a)["spool"]["items"] == 0 and "c1" not in pipe.status()["failures"]


@pytest.mark.parametrize("path", [
    "/items/n1/home/%2E%2E",                 # ..
    "/items/n1/home/%2E%2E%2Fescape",        # ../escape
    "/items/n1/home/a%2Fb",                  # separator
    "/items/n1/home/a%5Cb",                  # backslash
    "/items/n1/home/a%00b",                  # NUL
    "/items/%2E%2E/home/f.bin",              # item id ..
    "/items/n%2F1/home/f.bin",               # item id with a separator
    "/items/n1/not-a-parent/f.bin",          # unknown parent
])
def test_escaping_names_and_unknown_parents_are_400(pipe: LocalPipeline, path: str) -> None:
    code, _, body = put(pipe, key(pipe, "A"), path, b"x")
    assert code == 400, body
    assert pipe.status(key(pipe, "A"))["spool"]["items"] == 0


def test_escaping_names_at_home_are_400(pipe: LocalPipeline) -> None:
    assert put(pipe, "home", "/submit/%2E%2E%2Fescape.bin", b"x")[0] == 400
    assert put(pipe, "home", "/submit/..", b"x")[0] == 400
    d = key(pipe, "D")
    assert put(pipe, "home", "/items/n1/" + d + "/%2E%2E%2Fx", b"x")[0] == 400
    assert put(pipe, "home", "/items/n1/" + key(pipe, "A") + "/x", b"x")[0] == 400  # no sink
    assert not any(pipe.state_dir.glob("**/escape*"))


def test_oversized_bodies_are_413(pipe: LocalPipeline) -> None:
    big = b"z" * (MAX_BODY + 1)
    code, _, body = put(pipe, key(pipe, "A"), "/items/big1/home/big1.bin", big)
    assert code == 413 and "exceeds" in body["error"]
    assert put(pipe, "home", "/submit/big1.bin", big)[0] == 413


def test_repeated_delivery_is_acknowledged_once_and_runs_once(pipe: LocalPipeline) -> None:
    a = key(pipe, "A")
    before = pipe.status(a)["entered"]
    path = "/items/rep1/home/rep1.bin"
    code, _, first = put(pipe, a, path, b"repeat me", headers={FILES_HEADER: "1"})
    assert code == 200 and first.get("stored") is True
    code, _, again = put(pipe, a, path, b"repeat me", headers={FILES_HEADER: "1"})
    assert code == 200 and again.get("duplicate") is True
    code, _, _ = put(pipe, a, path, b"other content")
    assert code in (200, 409)  # 409 while spooled; 200 (already done) once finished
    record = pipe.wait_item("rep1")
    assert record["status"] == "completed" and record["files"] == ["result.txt"]
    code, _, late = put(pipe, a, path, b"repeat me")
    assert code == 200 and late.get("duplicate") is True
    assert pipe.status(a)["entered"] == before + 1
    assert pipe.status(key(pipe, "D"))["spool"]["items"] == 0


def test_resubmission_is_a_duplicate_and_a_clash_is_409(pipe: LocalPipeline) -> None:
    code, body = pipe.submit("sub1.bin", b"content")
    assert code == 200 and json.loads(body)["accepted"] is True
    code, body = pipe.submit("sub1.bin", b"content")
    assert code == 200 and json.loads(body)["duplicate"] is True
    code, body = pipe.submit("sub1.bin", b"different")
    assert code == 409 and "already submitted" in json.loads(body)["error"]
    code, body = pipe.submit("anything.dat", b"x", item="explicit-id.7")
    assert code == 200 and json.loads(body)["item"] == "explicit-id.7"
    pipe.wait_item("sub1")
    pipe.wait_item("explicit-id.7")
    results = json.loads(pipe.request("home", "/results")[2])["items"]
    assert results["sub1"] == {"status": "completed", "files": ["result.txt"], "error": None}
    code, headers, data = pipe.request("home", "/results/sub1/result.txt")
    assert code == 200 and headers[SHA_HEADER] == sha256_hex(data)
    assert data == (pipe.state_dir / "results" / "sub1" / "result.txt").read_bytes()


def test_results_from_a_sink_are_idempotent(pipe: LocalPipeline) -> None:
    d = key(pipe, "D")
    path = f"/items/direct1/{d}/result.txt"
    assert put(pipe, "home", path, b"r1")[0] == 200
    code, _, body = put(pipe, "home", path, b"r1")
    assert code == 200 and body["duplicate"] is True
    code, _, body = put(pipe, "home", path, b"r2")
    assert code == 409
    assert (pipe.state_dir / "results" / "direct1" / "result.txt").read_bytes() == b"r1"
    code, _, body = put(pipe, "home", f"/items/direct2/{d}", b"not json")
    assert code == 400 and "marker" in body["error"]


def test_status_reports_progress_numbers(pipe: LocalPipeline) -> None:
    status = pipe.status()
    for field in ("submitted", "completed", "failed", "in_flight", "done", "total", "tasks",
                  "latency_s", "throughput_items_per_s"):
        assert field in status
    assert status["done"] <= status["total"]
    task = pipe.status(key(pipe, "B"))
    assert task["ready"] is True and task["parents"] == [key(pipe, "A")]
    assert Path(status["results_dir"]) == pipe.state_dir / "results"


def test_events_with_a_bad_cpu_figure_are_left_out_and_the_rest_kept(pipe: LocalPipeline
                                                                     ) -> None:
    a = key(pipe, "A")
    done = pipe.status(a)["done"]  # A's own runs so far (earlier tests' items)

    def reported(status: dict) -> bool:  # A's events for them are batched: wait until counted
        return sum(status["tasks"][a][k] for k in ("finish", "failed", "skipped")) == done

    before = pipe.wait_for(reported, 30, f"home to count {a}'s {done} runs")["tasks"][a]["finish"]
    events = [{"task": a, "node": "local", "item": f"cpu{i}", "kind": "finish", "t": 5.0,
               "cpu": cpu} for i, cpu in enumerate([-1.0, "1.5", True, 2.5])]
    body = json.dumps({"events": events}).encode()
    code, _, raw = pipe.request("home", "/events", body, method="POST", headers={
        SHA_HEADER: sha256_hex(body), "Content-Type": "application/json"})
    assert code == 200 and json.loads(raw) == {"accepted": 1}
    assert pipe.status()["tasks"][a]["finish"] == before + 1  # only the good one counted
    code, _, raw = pipe.request("home", "/results/cpu3")
    assert code == 200 and json.loads(raw)["tasks"][a]["cpu"] == 2.5
    code, _, raw = pipe.request("home", "/results/cpu0")
    assert code == 404  # the bad events recorded nothing
