"""``jupiter submit``: feed files to a deployment's home, optionally waiting for the results.

Each file is one item (id: ``--item`` for a single file, else the file name up to the first
'.'). Submissions are paced at ``--rate`` items per second when given; a full home answers
503 and the client waits as long as its Retry-After says. A resubmission of the same id and
content is acknowledged as a duplicate; the same id with other content is an error (409).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from jupiter.circe.transport import ITEM_HEADER, Sender, derive_item_id
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


async def submit_files(url: str, token: str, files: list[tuple[str, Path]], *,
                       rate: float | None = None, explicit: bool = False, parallel: int = 4,
                       progress: Callable[[str], None] | None = None) -> SubmitReport:
    report = SubmitReport()
    sender = Sender(token, parallel_per_destination=parallel)
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
            if progress:
                n = len(report.accepted) + len(report.duplicates) + len(report.errors)
                progress(f"[submit] {n}/{len(files)}")

    try:
        await asyncio.gather(*[worker() for _ in range(max(1, parallel))])
    finally:
        await sender.close()
    return report


async def wait_results(url: str, token: str, items: Sequence[str], timeout: float,
                       progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Poll home's /results until every item is completed or failed (bounded by timeout)."""
    import aiohttp

    from jupiter.circe.transport import auth_headers

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
