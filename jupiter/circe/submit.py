"""``jupiter submit``: feed files to a deployment's home, optionally waiting for the results.

Each file is one item (id: ``--item`` for a single file, else the file name up to the first
'.'). Submissions are paced at ``--rate`` items per second when given; a full home answers
503 and the client waits as long as its Retry-After says. A resubmission of the same id and
content is acknowledged as a duplicate; the same id with other content is an error (409).

With ``--window K`` at most K items are in flight (submitted, neither completed nor failed):
each of K slots submits an item, then waits for its result (home's ``GET /results/{item}
?wait=``) before it takes the next. That is a closed-loop source: the pipeline stays full
while the upstream tasks cannot run ahead of the slowest one by more than K items, so the
completion rate is the pipeline's sustained throughput (a folder fed at once instead lets
every task race through it, and the rate mixes that rush with the drain that follows).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp

from jupiter.circe.transport import ITEM_HEADER, Sender, auth_headers, derive_item_id
from jupiter.errors import InvalidInput, JupiterError, Problem


@dataclass
class SubmitReport:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # file -> error
    items: dict[str, str] = field(default_factory=dict)  # item -> file


def collect_files(paths: Sequence[str | Path], item: str | None = None
                  ) -> list[tuple[str, Path]]:
    """(item id, path) for every file named or inside a named folder (not recursive)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            problems.append(Problem(str(p), "no such file or folder"))
    if item is not None and len(files) != 1:
        problems.append(Problem("--item", f"an explicit item id needs exactly one file, "
                                f"got {len(files)}"))
    out: list[tuple[str, Path]] = []
    seen: dict[str, Path] = {}
    for f in files:
        try:
            item_id = derive_item_id(f.name, item)
        except ValueError as exc:
            problems.append(Problem(str(f), str(exc)))
            continue
        if item_id in seen:
            problems.append(Problem(str(f), f"item id {item_id!r} is also derived from "
                                    f"{seen[item_id]}; ids must be unique"))
            continue
        seen[item_id] = f
        out.append((item_id, f))
    if problems:
        raise InvalidInput(problems, what="submission")
    if not out:
        raise JupiterError("nothing to submit: no files given or found")
    return out


WINDOW_POLL_S = 30.0  # one long poll of GET /results/{item}?wait= (home caps it at 300)


async def wait_item(session: aiohttp.ClientSession, url: str, item: str, deadline: float) -> str:
    """Long-poll home until ``item`` is completed or failed; its status."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise JupiterError(f"timed out waiting for item {item!r} to complete or fail")
        try:
            async with session.get(f"{url.rstrip('/')}/results/{quote(item, safe='')}",
                                   params={"wait": f"{min(WINDOW_POLL_S, left):.3f}"}) as resp:
                if resp.status != 200:
                    raise JupiterError(f"home answered {resp.status} for item {item!r}: "
                                       f"{(await resp.text())[:200]}")
                status = (await resp.json())["status"]
        except (aiohttp.ClientError, ValueError, KeyError) as exc:
            raise JupiterError(f"waiting for item {item!r} at {url}: {exc!r}") from exc
        if status in ("completed", "failed"):
            return status


async def submit_files(url: str, token: str, files: list[tuple[str, Path]], *,
                       rate: float | None = None, explicit: bool = False, parallel: int = 4,
                       window: int | None = None, item_timeout: float = 600.0,
                       progress: Callable[[str], None] | None = None) -> SubmitReport:
    """Submit ``files``: ``parallel`` at once, or with ``window`` at most that many in flight.

    ``item_timeout``: with a window, how long a slot waits for one item's result."""
    if window is not None and window < 1:
        raise JupiterError(f"--window must be at least 1 item in flight, got {window}")
    report = SubmitReport()
    slots = window or max(1, parallel)
    sender = Sender(token, parallel_per_destination=slots)
    session = aiohttp.ClientSession(headers=auth_headers(token)) if window else None
    queue: asyncio.Queue[tuple[int, str, Path]] = asyncio.Queue()
    for i, (item, path) in enumerate(files):
        queue.put_nowait((i, item, path))
    start = time.monotonic()

    async def worker() -> None:
        while not queue.empty():
            i, item, path = queue.get_nowait()
            if rate:
                wait = start + i / rate - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            body = await asyncio.to_thread(path.read_bytes)
            headers = {ITEM_HEADER: item} if explicit else {}
            result = await sender.deliver(f"{url.rstrip('/')}/submit/{quote(path.name, safe='')}",
                                          body, headers)
            report.items[item] = path.name
            if result.ok and isinstance(result.body, dict) and result.body.get("duplicate"):
                report.duplicates.append(item)
            elif result.ok:
                report.accepted.append(item)
            else:
                msg = result.body.get("error") if isinstance(result.body, dict) else result.body
                report.errors[str(path)] = f"{result.status}: {msg}"
            if session is not None and result.ok:
                await wait_item(session, url, item, time.monotonic() + item_timeout)
            if progress:
                n = len(report.accepted) + len(report.duplicates) + len(report.errors)
                progress(f"[submit] {n}/{len(files)}")

    try:
        async with asyncio.TaskGroup() as group:  # one slot failing stops the others
            for _ in range(slots):
                group.create_task(worker())
    except* JupiterError as failure:
        raise failure.exceptions[0] from None
    finally:
        await sender.close()
        if session is not None:
            await session.close()
    return report


async def wait_results(url: str, token: str, items: Sequence[str], timeout: float,
                       progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Poll home's /results until every item is completed or failed (bounded by timeout)."""
    deadline = time.monotonic() + timeout
    wanted = set(items)
    last = ""
    async with aiohttp.ClientSession(headers=auth_headers(token)) as session:
        while True:
            async with session.get(f"{url.rstrip('/')}/results") as resp:
                data = json.loads(await resp.text())
            states = {i: v for i, v in data.get("items", {}).items() if i in wanted}
            done = {i: v for i, v in states.items() if v["status"] in ("completed", "failed")}
            line = f"[circe] results {len(done)}/{len(wanted)}"
            if progress and line != last:
                progress(line)
                last = line
            if len(done) == len(wanted):
                return done
            if time.monotonic() > deadline:
                missing = sorted(wanted - set(done))
                raise JupiterError(f"timed out after {timeout:.0f}s waiting for "
                                   f"{len(missing)} item(s): {', '.join(missing[:10])}")
            await asyncio.sleep(0.25)
