"""CLI: ``jupiter circe task|home|reference`` and ``jupiter submit``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from jupiter.circe.config import load_config
from jupiter.circe.transport import listen_default, parse_listen, read_token
from jupiter.errors import JupiterError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    circe = sub.add_parser("circe", help="CIRCE data plane: task servers, home, reference run")
    csub = circe.add_subparsers(dest="circe_command", metavar="COMMAND")
    circe.set_defaults(func=lambda args: (circe.print_help(), 2)[1])

    p = csub.add_parser("task", help="run one task of the app (one process per task)")
    p.add_argument("--config", required=True, help="CIRCE config JSON (state_dir/circe.json)")
    p.add_argument("--task", required=True, help="task key (as in the config's endpoints)")
    p.add_argument("--listen", help="HOST:PORT (default: from the task's endpoint)")
    p.add_argument("--state-dir", help="override the config's state_dir")
    p.set_defaults(func=cmd_task)

    p = csub.add_parser("home", help="run home: ingress, results, per-item records, status")
    p.add_argument("--config", required=True, help="CIRCE config JSON (state_dir/circe.json)")
    p.add_argument("--listen", help="HOST:PORT (default: from the home endpoint)")
    p.add_argument("--state-dir", help="override the config's state_dir")
    p.set_defaults(func=cmd_home)

    p = csub.add_parser("reference", help="run the whole DAG in-process on a folder of inputs "
                        "(no network); results as home would store them")
    p.add_argument("app_dir", help="the app folder (configuration.txt or app.yaml)")
    p.add_argument("input_dir", help="folder of input files, one item per file")
    p.add_argument("out_dir", help="where results go: OUT_DIR/<item>/<file>")
    p.add_argument("--retries", type=int, default=2, help="extra attempts of a raising task")
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser("submit", help="submit input files (or a folder of them) to CIRCE home")
    p.add_argument("files", nargs="+", metavar="FILES|DIR")
    p.add_argument("--config", help="CIRCE config JSON (gives the home URL and token file)")
    p.add_argument("--url", help="home URL, e.g. http://10.77.0.2:7800 (instead of --config)")
    p.add_argument("--token-file", help="bearer token file (with --url)")
    p.add_argument("--rate", type=float, help="at most R items per second")
    p.add_argument("--item", help="explicit item id (one file only)")
    p.add_argument("--parallel", type=int, default=4, help="concurrent submissions")
    p.add_argument("--window", type=int, metavar="K",
                   help="keep at most K items in flight: each of K slots submits an item and "
                   "waits for its result before the next (a steady stream; --wait bounds each "
                   "item's wait, default 600 s)")
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="then wait up to SECONDS for every item's results")
    p.set_defaults(func=cmd_submit)


def _serve(server: object, listen: str | None, url: str) -> int:
    from jupiter.circe.service import Service

    assert isinstance(server, Service)
    host, port = parse_listen(listen) if listen else listen_default(url)
    asyncio.run(server.serve(host, port))
    return 0


def cmd_task(args: argparse.Namespace) -> int:
    from jupiter.circe.service import setup_logging
    from jupiter.circe.taskserver import TaskServer

    cfg = load_config(args.config, args.state_dir)
    if args.task not in cfg.task_urls:
        raise JupiterError(f"--task {args.task!r}: no such task key in {args.config} "
                           f"(keys: {', '.join(sorted(cfg.task_urls))})")
    setup_logging(f"circe-task[{args.task}]")
    return _serve(TaskServer(cfg, args.task), args.listen, cfg.task_urls[args.task])


def cmd_home(args: argparse.Namespace) -> int:
    from jupiter.circe.home import HomeServer
    from jupiter.circe.service import setup_logging

    cfg = load_config(args.config, args.state_dir)
    setup_logging("circe-home")
    return _serve(HomeServer(cfg), args.listen, cfg.home_url)


def cmd_reference(args: argparse.Namespace) -> int:
    from jupiter.app.loader import load_app
    from jupiter.circe.reference import items_from_dir, reference_run

    app = load_app(args.app_dir)
    items = items_from_dir(args.input_dir)
    report = reference_run(app, args.app_dir, items, args.out_dir,
                           retries=args.retries)
    print(f"reference run of {app.name}: {len(items)} item(s), {len(report.completed)} "
          f"completed, {len(report.failed)} failed; results in {args.out_dir}")
    for item, error in sorted(report.failed.items()):
        print(f"  failed {item}: {error}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_submit(args: argparse.Namespace) -> int:
    from jupiter.circe.submit import collect_files, submit_files, wait_results

    if args.config:
        cfg = load_config(args.config)
        url, token_file = args.url or cfg.home_url, args.token_file or cfg.token_file
    elif args.url:
        url, token_file = args.url, args.token_file
    else:
        raise JupiterError("submit: give --config FILE, or --url URL with --token-file FILE")
    token = read_token(token_file)
    files = collect_files(args.files, args.item)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = asyncio.run(submit_files(url, token, files, rate=args.rate,
                                      explicit=bool(args.item), parallel=args.parallel,
                                      window=args.window, item_timeout=args.wait or 600.0,
                                      progress=progress if sys.stderr.isatty() else None))
    print(f"accepted {len(report.accepted)} item(s), {len(report.duplicates)} already "
          f"submitted, {len(report.errors)} refused")
    for path, error in sorted(report.errors.items()):
        print(f"  {path}: {error}", file=sys.stderr)
    if report.errors:
        return 1
    if args.wait:
        done = asyncio.run(wait_results(url, token, list(report.items), args.wait, progress))
        failed = {i: v for i, v in done.items() if v["status"] == "failed"}
        print(f"results: {len(done) - len(failed)} completed, {len(failed)} failed")
        for item, v in sorted(failed.items()):
            print(f"  failed {item}: {v.get('error')}", file=sys.stderr)
        return 1 if failed else 0
    return 0
