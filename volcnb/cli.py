"""The ``volcnb`` command line: ``demo``, ``run``, ``sim`` (and ``gateway`` later).

::

    volcnb demo [--out DIR]                                   # the main job, on the embedded simulator
    volcnb run REQ_KEY IMAGE... --out DIR [--param k=v ...]   # one task per image, text progress
    volcnb sim --port 8000 [--access-key AK --secret-key SK] [--db PATH] [--service-time KEY=MEDIAN[:SIGMA]]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param wants KEY=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


def _service_time(text: str) -> tuple[str, float, float]:
    key, sep, spec = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--service-time wants REQ_KEY=MEDIAN[:SIGMA], got {text!r}")
    median, _, sigma = spec.partition(":")
    try:
        return key, float(median), float(sigma) if sigma else 0.3
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad --service-time {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="volcnb", description="Volcengine visual-AI async APIs from the terminal.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run saliency_seg on a sample photo on the simulator; write PNGs")
    d.add_argument("--out", default="volcnb-demo", help="output directory (default: ./volcnb-demo)")

    r = sub.add_parser("run", help="run a capability on images and save the results")
    r.add_argument("req_key")
    r.add_argument("images", nargs="*", help="image paths or http(s) URLs (none for text-to-image keys)")
    r.add_argument("--out", required=True, help="directory for the results")
    r.add_argument("--param", "-p", action="append", type=_param, default=[], metavar="KEY=VALUE",
                   help="a capability parameter (JSON values: 1, true, [0,0,0], \"text\")")
    r.add_argument("--simulator", action="store_true", help="use the embedded simulator even if keys are set")
    r.add_argument("--endpoint", help="base URL of the service (e.g. a `volcnb sim` at http://127.0.0.1:8000)")
    r.add_argument("--timeout", type=float, default=300.0, help="overall deadline per task, seconds")

    s = sub.add_parser("sim", help="serve the simulator over HTTP")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--access-key", default=None)
    s.add_argument("--secret-key", default=None)
    s.add_argument("--db", default=None, help="SQLite file: tasks survive a restart")
    s.add_argument("--service-time", action="append", type=_service_time, default=[],
                   metavar="REQ_KEY=MEDIAN[:SIGMA]", help="log-normal service time per req_key")
    s.add_argument("--queue-time", type=float, default=0.05)
    s.add_argument("--submit-qps", type=float, default=None)
    s.add_argument("--max-unfinished", type=int, default=None)
    s.add_argument("--seed", type=int, default=None)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``volcnb`` command."""
    args = build_parser().parse_args(argv)
    if args.command == "sim":
        return _sim(args)
    if args.command == "demo":
        from ._demo import demo

        return demo(Path(args.out))
    return _run(args)


def _sim(args: argparse.Namespace) -> int:
    from .sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Quotas, ServiceTime, Simulator
    from .sim._server import serve

    keys = {DEFAULT_ACCESS_KEY: DEFAULT_SECRET_KEY}
    if args.access_key or args.secret_key:
        if not (args.access_key and args.secret_key):
            print("volcnb sim: give both --access-key and --secret-key", file=sys.stderr)
            return 2
        keys[args.access_key] = args.secret_key
    quotas = Quotas()
    if args.submit_qps is not None:
        quotas.submit_qps = args.submit_qps
    if args.max_unfinished is not None:
        quotas.max_unfinished = args.max_unfinished
    sim = Simulator(keys=keys, db=args.db, queue_time=args.queue_time, quotas=quotas, seed=args.seed,
                    service_times={k: ServiceTime(m, s) for k, m, s in args.service_time})
    print(f"volcnb simulator on http://{args.host}:{args.port}  access keys: {', '.join(sorted(keys))}"
          f"{'  db: ' + args.db if args.db else '  (tasks in memory)'}", flush=True)
    serve(sim, host=args.host, port=args.port)
    return 0


def _run(args: argparse.Namespace) -> int:
    from . import _verbs
    from ._exceptions import VolcError
    from .display.progress import TextProgress

    if args.simulator:
        _verbs.use_simulator()
    elif args.endpoint:
        _verbs.set_default_client(_verbs.Client(endpoint=args.endpoint))
    client = _verbs.get_default_client()
    out = Path(args.out)
    params = dict(args.param)
    inputs: list[str | None] = list(args.images) or [None]
    tasks = []
    from ._verbs import submit

    failed = 0
    for image in inputs:
        try:
            tasks.append((image, submit(args.req_key, image, client=client, display=False, deadline=args.timeout,
                                        **params)))
        except VolcError as err:
            print(f"volcnb: {image or args.req_key}: {err}", file=sys.stderr)
            failed += 1
    progress = TextProgress([t for _, t in tasks], stream=sys.stderr)
    for image, task in tasks:
        try:
            res = task.result(timeout=args.timeout)
        except VolcError as err:
            progress.message(f"volcnb: {image or args.req_key}: {err}")
            failed += 1
            continue
        paths = res.save(out)
        progress.message(f"{image or args.req_key} -> " + ", ".join(str(p) for p in paths))
        if not sys.stdout.isatty():
            print("\n".join(str(p) for p in paths), flush=True)  # machine-readable: the written files
    progress.close()
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
