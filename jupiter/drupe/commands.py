"""``jupiter drupe agent|home|exec``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from jupiter.drupe.config import DrupeConfig, default_listen, load_config, parse_listen
from jupiter.drupe.execprof import IDLE_S
from jupiter.errors import JupiterError
from jupiter.profile import Profile


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    drupe = sub.add_parser("drupe", help="DRUPE profilers: network, resources, execution")
    dsub = drupe.add_subparsers(dest="drupe_command", metavar="COMMAND", required=True)

    a = dsub.add_parser("agent", help="run the agent of one node (probe server + measurements)")
    a.add_argument("--config", required=True, help="DRUPE config JSON (see docs/drupe.md)")
    a.add_argument("--node", required=True, help="this node's inventory name")
    a.add_argument("--listen", help="HOST:PORT to bind (default: from the node's endpoint)")
    a.add_argument("--advertise", help="URL peers reach this agent at (default: its endpoint)")
    a.set_defaults(func=cmd_agent)

    h = dsub.add_parser("home", help="run the home aggregator (schedules probes, publishes)")
    h.add_argument("--config", required=True, help="DRUPE config JSON")
    h.add_argument("--listen", help="HOST:PORT to bind (default: from the home endpoint)")
    h.set_defaults(func=cmd_home)

    e = dsub.add_parser("exec", help="profile each task of an app on this node")
    e.add_argument("--app", required=True, help="app folder (app.yaml or configuration.txt)")
    e.add_argument("--node", required=True, help="node name the results are recorded for")
    e.add_argument("--out", required=True, help="write the exec profile (JSON) here")
    e.add_argument("--input", help="sample file for the ingress tasks, absolute or relative "
                   "to the app folder (default: the first file of the app's sample_input/)")
    e.add_argument("--repeat", type=int, default=3, help="runs per task, back to back and "
                   "after an idle pause each; the medians are kept")
    e.add_argument("--idle", type=float, default=IDLE_S, metavar="SECONDS",
                   help="pause before each round of runs after idle (what an item that comes "
                   "alone meets); 0: back-to-back runs only")
    e.add_argument("--scale-from", metavar="NODE", help="do not run anything: estimate this "
                   "node from NODE's exec profile scaled by CPU speed")
    e.add_argument("--profile", help="profile JSON to scale from (default with --config: "
                   "GET it from home)")
    e.add_argument("--config", help="DRUPE config (to reach home for --post / --scale-from)")
    e.add_argument("--post", action="store_true", help="POST the result to home's /exec")
    e.add_argument("--only-missing", action="store_true", help="with --config: do nothing "
                   "(and say 'up to date') when home's profile already has every task of the "
                   "app on this node, made from the app's current files and this sample (with "
                   "--scale-from: from NODE's current entries)")
    e.set_defaults(func=cmd_exec)


def _run(coro: Coroutine[Any, Any, None]) -> int:
    async def main() -> None:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    from jupiter.drupe.agent import Agent

    cfg = load_config(args.config)
    if args.node not in cfg.nodes:
        raise JupiterError(f"{cfg.source}: --node {args.node!r} is not one of the configured "
                           f"nodes ({', '.join(cfg.nodes)})")
    listen = parse_listen(args.listen or default_listen(cfg.agent_urls[args.node]))
    token = cfg.read_token()

    async def go() -> None:
        agent = Agent(cfg, args.node, token, listen=listen, advertise=args.advertise)
        await agent.run_forever()

    return _run(go())


def cmd_home(args: argparse.Namespace) -> int:
    from jupiter.drupe.home import Home
    from jupiter.drupe.publish import make_publisher

    cfg = load_config(args.config)
    listen = parse_listen(args.listen or default_listen(cfg.home_url))
    token = cfg.read_token()
    publisher = make_publisher(cfg.publish, cfg.state_dir)

    async def go() -> None:
        home = Home(cfg, token, listen=listen, publisher=publisher)
        await home.run_forever()

    return _run(go())


def _http_json(cfg: DrupeConfig, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(f"{cfg.home_url}{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {cfg.read_token()}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise JupiterError(f"DRUPE home {cfg.home_url}{path}: HTTP {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise JupiterError(f"DRUPE home {cfg.home_url}{path} unreachable: {exc}") from exc


def cmd_exec(args: argparse.Namespace) -> int:
    from jupiter.app.loader import load_app
    from jupiter.drupe.execprof import (
        default_sample,
        exec_digest,
        exec_document,
        profile_app,
        scale_exec,
    )

    cfg = load_config(args.config) if args.config else None
    if args.post and cfg is None:
        raise JupiterError("--post needs --config (to find home and the token)")
    app = load_app(args.app)
    sample, digest = None, ""
    if not args.scale_from:
        sample = Path(app.root, args.input) if args.input else default_sample(app)
        if not sample.is_file():
            raise JupiterError(f"--input {args.input}: no such file ({sample}); give a path "
                               "relative to the app folder or an absolute one")
        digest = exec_digest(app, sample, args.idle)
    if args.only_missing:
        if cfg is None:
            raise JupiterError("--only-missing needs --config (to read home's profile)")
        have = Profile.from_dict(_http_json(cfg, "GET", "/profile")).exec
        tasks = app.topological_order()
        # what this node's entries must have been made from: this app and sample, or (scaled)
        # the reference node's entries as they are now
        want = dict.fromkeys(tasks, digest) if sample is not None else {
            t: have[t][args.scale_from].digest for t in tasks
            if args.scale_from in have.get(t, {})}
        stale = [t for t in tasks if args.node not in have.get(t, {})
                 or have[t][args.node].digest != want.get(t)]
        if not stale:
            print(f"[drupe exec] {args.node}: up to date (all {len(tasks)} tasks profiled)",
                  file=sys.stderr)
            return 0
        print(f"[drupe exec] {args.node}: {len(stale)} of {len(tasks)} tasks missing or "
              "profiled from other code or another sample (e.g. "
              f"{', '.join(stale[:3])}): profiling", file=sys.stderr)
    if args.scale_from:
        if args.profile:
            try:
                doc = json.loads(Path(args.profile).read_text(encoding="utf-8"))
                prof = Profile.from_dict(doc)
            except (OSError, json.JSONDecodeError, ValueError) as exc:
                raise JupiterError(f"--profile {args.profile}: {exc}") from exc
        elif cfg is not None:
            prof = Profile.from_dict(_http_json(cfg, "GET", "/profile"))
        else:
            raise JupiterError("--scale-from needs --profile FILE or --config (home's profile)")
        per_task = scale_exec(prof, args.scale_from, args.node, app.topological_order())
        print(f"[drupe exec] {args.node}: scaled from {args.scale_from} by speed "
              f"{prof.nodes[args.scale_from].speed:.3f}/{prof.nodes[args.node].speed:.3f}",
              file=sys.stderr)
    else:
        assert sample is not None
        results = profile_app(app, sample=sample, repeat=args.repeat, idle_s=args.idle,
                              progress=lambda m: print(f"[drupe exec] {args.node}: {m}",
                                                       file=sys.stderr))
        per_task = {t: r.to_exec(digest) for t, r in results.items()}
    doc = exec_document({args.node: per_task})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out)
    if args.post:
        assert cfg is not None
        answer = _http_json(cfg, "POST", "/exec", doc)
        print(f"[drupe exec] {args.node}: home merged {answer.get('merged')} entries",
              file=sys.stderr)
    return 0
