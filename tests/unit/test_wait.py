"""jupiter.wait against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jupiter.errors import JupiterError
from jupiter.wait import WaitSpec, dig, is_done, wait_for_status


class _Status:
    def __init__(self) -> None:
        self.polls = 0
        self.token = "s3cret"


@pytest.fixture
def server() -> Iterator[tuple[str, _Status]]:
    state = _Status()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {state.token}":
                self.send_response(401)
                self.end_headers()
                return
            state.polls += 1
            body = json.dumps({"done": min(state.polls, 3), "total": 3,
                               "missing": ["a->b"] if state.polls < 3 else []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/status", state
    httpd.shutdown()


def test_dig_and_is_done() -> None:
    assert dig({"a": {"b": 2}}, "a.b") == 2
    assert dig({"a": 1}, "a.b") is None
    spec = WaitSpec(url="x")
    assert is_done(spec, {"done": 3, "total": 3})
    assert not is_done(spec, {"done": 0, "total": 0})
    assert is_done(WaitSpec(url="x", until="complete"), {"complete": True})


def test_waits_until_done_and_reports_progress(server: tuple[str, _Status],
                                               tmp_path: Path) -> None:
    url, state = server
    token = tmp_path / "token"
    token.write_text(state.token)
    lines: list[str] = []
    status, _ = wait_for_status(WaitSpec(url=url, token_file=str(token), label="t",
                                         interval=0.01, timeout=30), progress=lines.append)
    assert status["done"] == 3
    assert [line.split("  ")[0] for line in lines] == ["[t] 1/3", "[t] 2/3", "[t] 3/3"]


def test_timeout_names_what_is_missing(server: tuple[str, _Status], tmp_path: Path) -> None:
    url, state = server
    token = tmp_path / "token"
    token.write_text(state.token)
    spec = WaitSpec(url=url, token_file=str(token), until="never", missing_key="missing",
                    interval=0.01, timeout=0.0, label="drupe")
    with pytest.raises(JupiterError, match=r"drupe: not done after 0s .*missing: \['a->b'\]"):
        wait_for_status(spec, progress=lambda _: None)


def test_wrong_token_is_reported(server: tuple[str, _Status], tmp_path: Path) -> None:
    url, _ = server
    token = tmp_path / "token"
    token.write_text("wrong")
    spec = WaitSpec(url=url, token_file=str(token), interval=0.01, timeout=0.0)
    with pytest.raises(JupiterError, match="401"):
        wait_for_status(spec, progress=lambda _: None)
