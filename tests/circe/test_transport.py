"""Transport rules (names, ids, tokens) and the retrying sender against a real server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from aiohttp import web

from jupiter.circe.transport import (
    SHA_HEADER,
    Backoff,
    Sender,
    bearer_ok,
    derive_item_id,
    file_name_problem,
    item_id_problem,
    item_url,
    listen_default,
    parse_listen,
    read_token,
    sha256_hex,
)
from jupiter.errors import JupiterError


@pytest.mark.parametrize("name", ["..", ".", "../etc", "a/b", "a\\b", "x\x00y", "tab\tx", "",
                                  "x" * 256])
def test_escaping_or_odd_file_names_are_refused(name: str) -> None:
    assert file_name_problem(name) is not None


@pytest.mark.parametrize("name", ["1botnet.ipsum", "1split_0", ".hidden", "a b.txt", "é.txt"])
def test_plain_file_names_are_accepted(name: str) -> None:
    assert file_name_problem(name) is None


def test_item_ids() -> None:
    assert derive_item_id("1botnet.ipsum") == "1botnet"
    assert derive_item_id("/some/dir/frame-0007.tar.gz") == "frame-0007"
    assert derive_item_id("whatever.bin", "batch.42") == "batch.42"
    with pytest.raises(ValueError, match="cannot derive an item id"):
        derive_item_id(".hidden")
    with pytest.raises(ValueError, match="cannot derive an item id"):
        derive_item_id("my file.txt")
    assert item_id_problem("..") is not None
    assert item_id_problem("a/b") is not None


def test_item_url_encodes_every_component() -> None:
    assert (item_url("http://h:1/", "7", "home", "a b/c")
            == "http://h:1/items/7/home/a%20b%2Fc")
    assert item_url("http://h:1", "7", "p0") == "http://h:1/items/7/p0"


def test_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "token"
    f.write_text("s3cret-token-0123456789\n")
    assert read_token(str(f)) == "s3cret-token-0123456789"
    monkeypatch.setenv("JUPITER_TOKEN_FILE", str(f))
    assert read_token(None) == "s3cret-token-0123456789"
    with pytest.raises(JupiterError, match="cannot read the token file"):
        read_token(str(tmp_path / "missing"))
    (tmp_path / "short").write_text("abc")
    with pytest.raises(JupiterError, match="at least 16"):
        read_token(str(tmp_path / "short"))
    assert bearer_ok("Bearer s3cret-token-0123456789", "s3cret-token-0123456789")
    assert not bearer_ok("Bearer wrong", "s3cret-token-0123456789")
    assert not bearer_ok(None, "s3cret-token-0123456789")
    assert not bearer_ok("Basic s3cret-token-0123456789", "s3cret-token-0123456789")


def test_listen_addresses() -> None:
    assert listen_default("http://10.77.0.4:7801") == ("10.77.0.4", 7801)
    assert listen_default("http://jupiter-circe-aggregate0:7801") == ("0.0.0.0", 7801)
    assert parse_listen("127.0.0.1:9000") == ("127.0.0.1", 9000)
    with pytest.raises(JupiterError, match="HOST:PORT"):
        parse_listen("nonsense")


def test_backoff_grows_and_is_capped() -> None:
    b = Backoff(base=0.1, cap=1.0)
    assert 0.05 <= b.delay(0) <= 0.1
    assert 0.2 <= b.delay(2) <= 0.4
    assert 0.5 <= b.delay(30) <= 1.0


async def test_sender_honours_retry_after_and_retries_server_errors(unused_port: int) -> None:
    answers = [503, 500, 200]
    seen: list[tuple[float, str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((time.monotonic(), request.headers[SHA_HEADER], request.headers.get(
            "Authorization", "")))
        assert request.headers[SHA_HEADER] == sha256_hex(body)
        status = answers.pop(0)
        headers = {"Retry-After": "1"} if status == 503 else {}
        return web.json_response({"status": status}, status=status, headers=headers)

    app = web.Application()
    app.router.add_put("/x", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_port).start()
    sender = Sender("t" * 20, backoff=Backoff(base=0.01, cap=0.02))
    try:
        result = await sender.deliver(f"http://127.0.0.1:{unused_port}/x", b"payload")
    finally:
        await sender.close()
        await runner.cleanup()
    assert result.ok and result.attempts == 3
    assert seen[1][0] - seen[0][0] >= 1.0  # waited as long as Retry-After said
    assert all(auth == "Bearer " + "t" * 20 for _, _, auth in seen)
    assert sender.pushbacks == 1 and sender.retries == 2


async def test_sender_returns_permanent_errors_and_gives_up_at_a_deadline(unused_port: int
                                                                          ) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": "no"}, status=400)

    app = web.Application()
    app.router.add_put("/x", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_port).start()
    sender = Sender("t" * 20, backoff=Backoff(base=0.01, cap=0.02))
    try:
        result = await sender.deliver(f"http://127.0.0.1:{unused_port}/x", b"p")
        assert result.status == 400 and result.attempts == 1 and result.body == {"error": "no"}
    finally:
        await runner.cleanup()
    # nothing listens any more: retried until the deadline, then status 0
    try:
        result = await sender.deliver(f"http://127.0.0.1:{unused_port}/x", b"p",
                                      deadline=time.monotonic() + 0.3)
    finally:
        await sender.close()
    assert result.status == 0 and result.attempts >= 2


@pytest.fixture
def unused_port() -> int:
    from jupiter.circe.devrun import free_port

    return free_port()


def test_token_file_created_by_the_launcher_is_private(tmp_path: Path) -> None:
    from circe_apps import chain_app

    from jupiter.circe.devrun import LocalPipeline

    app = chain_app(tmp_path / "app", 1)
    p = LocalPipeline(app, tmp_path / "app", tmp_path / "state")
    assert os.stat(p.token_file).st_mode & 0o077 == 0
