"""The ``volcnb`` command line: ``demo``, ``run``, ``sim``, ``gateway``.

::

    volcnb demo [--out DIR]                                   # the main job, on the embedded simulator
    volcnb run REQ_KEY INPUT... --out DIR [--param k=v ...]   # files, folders, quoted globs: a journaled batch
    volcnb resume [BATCH_ID] | volcnb status                  # the journal: re-attach, what it holds
    volcnb attach REQ_KEY TASK_ID --out DIR                   # come back to one task
    volcnb capabilities [REQ_KEY]                             # the catalog: parameters, defaults, ranges
    volcnb sim --port 8000 [--access-key AK --secret-key SK] [--db PATH] [--service-time KEY=MEDIAN[:SIGMA]]
               [--iva-callback URL] [--iva-task-id ID ...]               # IVA callbacks, accepted TaskIDs
    volcnb gateway --port 8080 [--db PATH] [--token T]          # the Jimeng gateway (即梦AI异步接口) + a page at /
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._exceptions import ValidationError
from .protocol.catalog import CAPABILITIES, get_capability, suggest_req_key


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


def _key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", help="base URL of the service (e.g. a `volcnb sim` at http://127.0.0.1:8000; "
                   "default $VOLCNB_ENDPOINT)")
    p.add_argument("--access-key", default=None, help="access key id (default: VOLC_ACCESSKEY, then ~/.volc)")
    p.add_argument("--secret-key", default=None, help="secret access key (default: VOLC_SECRETKEY, then ~/.volc)")


def _sim_parser(sub: Any) -> None:
    s = sub.add_parser("sim", help="serve the simulator over HTTP")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument("--access-key", default=None, help="an extra key pair it accepts, besides its public default")
    s.add_argument("--secret-key", default=None, help="the extra pair's secret")
    s.add_argument("--db", default=None, help="SQLite file: tasks survive a restart")
    s.add_argument("--service-time", action="append", type=_service_time, default=[],
                   metavar="REQ_KEY=MEDIAN[:SIGMA]", help="log-normal service time per req_key")
    s.add_argument("--queue-time", type=float, default=0.05, help="seconds a task stays in_queue (default 0.05)")
    s.add_argument("--submit-qps", type=float, default=None, help="submits per second per key (default 20; 50429)")
    s.add_argument("--max-unfinished", type=int, default=None,
                   help="unfinished tasks per key (default 200; 50430)")
    s.add_argument("--seed", type=int, default=None, help="seed of its random choices (service times, faults)")
    s.add_argument("--processes", type=int, default=0, metavar="N",
                   help="compute outputs in N worker processes (default 0: threads; N>0 uses N cores)")
    s.add_argument("--iva-callback", default=None, type=_callback_url, metavar="URL",
                   help="POST every IVA item's callback here (per TaskID: /sim/config iva_callbacks)")
    s.add_argument("--iva-task-id", action="append", default=None, metavar="ID",
                   help="accept only these IVA TaskIDs (repeatable; default: any)")


def _callback_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"--iva-callback must be an http(s) URL, got {value!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    from . import __version__

    p = argparse.ArgumentParser(prog="volcnb", description="Volcengine visual-AI async APIs from the terminal.")
    p.add_argument("--version", action="version", version=f"volcnb {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run saliency_seg on a sample photo on the simulator; write PNGs")
    d.add_argument("--out", default="volcnb-demo", help="output directory (default: ./volcnb-demo)")

    r = sub.add_parser("run", help="run a capability on images and save the results",
                       epilog="req_keys: " + ", ".join(sorted(CAPABILITIES)) + " (volcnb capabilities REQ_KEY: "
                       "its parameters)")
    r.add_argument("req_key")
    r.add_argument("images", nargs="*", help="image paths or http(s) URLs (none for text-to-image keys)")
    r.add_argument("--out", required=True, help="directory for the results")
    r.add_argument("--param", "-p", action="append", type=_param, default=[], metavar="KEY=VALUE",
                   help="a capability parameter (JSON values: 1, true, [0,0,0], \"text\")")
    r.add_argument("--simulator", action="store_true", help="use the embedded simulator even if keys are set")
    r.add_argument("--timeout", type=float, default=1800.0, help="how long to wait for each task, seconds")
    r.add_argument("--concurrency", type=int, default=None, help="unfinished tasks at most (default 32)")
    r.add_argument("--qps", type=float, default=None, help="submits per second at most (on top of the client's)")
    r.add_argument("--fresh", action="store_true", help="submit again even what the journal already holds")
    r.add_argument("--no-journal", action="store_true", help="keep no record (a re-run then pays again)")
    r.add_argument("--force", action="store_true", help="send a req_key volcnb does not know")
    _key_options(r)

    a = sub.add_parser("attach", help="come back to a task by its id: wait for it and save its results")
    a.add_argument("req_key")
    a.add_argument("task_id")
    a.add_argument("--out", required=True, help="directory for the results")
    a.add_argument("--timeout", type=float, default=1800.0, help="how long to wait, seconds")
    a.add_argument("--simulator", action="store_true", help="use the embedded simulator")
    _key_options(a)

    c = sub.add_parser("capabilities", help="the req_keys volcnb knows, or one's parameters and limits")
    c.add_argument("req_key", nargs="?", default=None, help="show this one's parameters")

    rs = sub.add_parser("resume", help="re-attach the unfinished tasks the journal holds (never resubmits)")
    rs.add_argument("batch_id", nargs="?", default=None, help="only this batch (see `volcnb status`)")
    rs.add_argument("--simulator", action="store_true", help="use the embedded simulator")
    _key_options(rs)

    sub.add_parser("status", help="what the journal holds, per batch")

    _sim_parser(sub)
    _gateway_parser(sub)
    return p


def _gateway_parser(sub: Any) -> None:
    g = sub.add_parser("gateway", help="serve the Jimeng image gateway (the 即梦AI异步接口 document) + a web page at /")
    g.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback: the API has no auth)")
    g.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    g.add_argument("--db", default=None, help="SQLite file: tasks (and the simulated upstream's) survive a restart")
    g.add_argument("--token", default=None, help="require Authorization: Bearer TOKEN (else $VOLCNB_GATEWAY_TOKEN)")
    g.add_argument("--per-user", type=int, default=10, help="unfinished tasks per user (default 10; then 429)")
    g.add_argument("--max-n", type=int, default=4, help="images per task (default 4)")
    g.add_argument("--task-timeout", type=float, default=300.0, help="seconds before a task fails (default 300)")
    g.add_argument("--lease", type=float, default=15.0,
                   help="seconds a gateway's claim on a task lasts unrenewed (a killed one's tasks resume after it)")
    g.add_argument("--service-time", type=float, default=None,
                   help="the simulated upstream's median seconds per image (no keys configured)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``volcnb`` command: errors are one plain line on stderr, never a traceback."""
    from ._exceptions import VolcError

    args = build_parser().parse_args(argv)
    warnings.showwarning = _one_line_warning
    try:
        return _dispatch(args)
    except ValidationError as err:  # refused before anything was sent
        print(f"volcnb {args.command}: {err.message}", file=sys.stderr)
        return 2
    except VolcError as err:
        print(f"volcnb {args.command}: {err.message}", file=sys.stderr)
        return 1


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    print(f"volcnb: warning: {message}", file=sys.stderr)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "sim":
        return _sim(args)
    if args.command == "gateway":
        return _gateway(args)
    if args.command == "demo":
        from ._demo import demo

        return demo(Path(args.out))
    if args.command == "resume":
        return _resume(args)
    if args.command == "attach":
        return _attach(args)
    if args.command == "capabilities":
        return _capabilities(args.req_key)
    if args.command == "status":
        return _status(args)
    return _run(args)


def _gateway(args: argparse.Namespace) -> int:
    import os

    from .gateway._server import run_foreground
    from .gateway._spec import Limits

    token = args.token or os.environ.get("VOLCNB_GATEWAY_TOKEN") or None
    print(f"volcnb gateway on http://{args.host}:{args.port}/ (API /api/v1; "
          f"{'bearer token required' if token else 'no auth: keep it on loopback'})", flush=True)
    run_foreground(host=args.host, port=args.port, db=args.db, token=token, service_time=args.service_time,
                   limits=Limits(per_user=args.per_user, max_n=args.max_n, task_timeout=args.task_timeout,
                                 lease=args.lease))
    return 0


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
                    service_times={k: ServiceTime(m, s) for k, m, s in args.service_time},
                    processes=max(0, args.processes), iva_task_ids=args.iva_task_id,
                    iva_callback=args.iva_callback)
    print(f"volcnb simulator on http://{args.host}:{args.port}  access keys: {', '.join(sorted(keys))}"
          f"{'  db: ' + args.db if args.db else '  (tasks in memory)'}", flush=True)
    serve(sim, host=args.host, port=args.port)
    return 0


def _client(args: argparse.Namespace) -> Any:
    from . import _verbs

    if getattr(args, "simulator", False):
        _verbs.use_simulator()
    elif args.endpoint or args.access_key or args.secret_key:
        if bool(args.access_key) != bool(args.secret_key):
            raise ValidationError("give both --access-key and --secret-key", field="--secret-key"
                                  if args.access_key else "--access-key", limit="both or neither")
        _verbs.set_default_client(_verbs.client_for(args.endpoint, args.access_key, args.secret_key))
    return _verbs.get_default_client()


def _check_req_key(req_key: str, force: bool) -> None:
    if get_capability(req_key) is None and not force:
        hint = suggest_req_key(req_key)
        raise ValidationError(f"unknown req_key {req_key!r}" + (f" (did you mean {hint}?)" if hint else "") +
                              "; `volcnb capabilities` lists them, --force sends it anyway", field="req_key",
                              limit="a known req_key")


def _check_params(req_key: str, params: dict[str, Any], n_images: int) -> None:
    """The ``-p`` parameters alone, once, before any input is read: a bad one is one line and exit 2."""
    cap = get_capability(req_key)
    for issue in cap.check(params, max(n_images, cap.min_images)) if cap else ():
        if issue.severity == "error" and issue.field.split(".")[0] in params:
            raise ValidationError(f"{req_key}: {issue.message}", field=issue.field, limit=issue.limit)


def _attach(args: argparse.Namespace) -> int:
    from .tasks.task import Task

    _check_req_key(args.req_key, False)
    task = Task.attach(args.req_key, args.task_id, client=_client(args), display=False, deadline=args.timeout)
    res = task.result()
    for f in res.save(args.out):
        print(f, flush=True)
    return 0


def _capabilities(req_key: str | None) -> int:
    if req_key is None:
        width = max(map(len, CAPABILITIES))
        for key, entry in sorted(CAPABILITIES.items()):
            print(f"{key:{width}s}  {entry.title}")
        return 0
    _check_req_key(req_key, False)
    cap = get_capability(req_key)
    assert cap is not None
    images = f"{cap.min_images}–{cap.max_images}" if cap.max_images else "none"
    print(f"{cap.req_key}: {cap.title}\nimages: {images}\nparameters (default; range; notes):")
    for prm in cap.params:
        limit = (" | ".join(map(str, prm.choices)) if prm.choices else
                 f"{prm.minimum:g}–{prm.maximum:g}" if prm.minimum is not None and prm.maximum is not None else
                 f"≤ {prm.max_length} characters" if prm.max_length else "")
        default = "required" if prm.required else json.dumps(prm.default, ensure_ascii=False)
        print(f"  {prm.name:22s} {prm.type:6s} {default:14s} {limit:20s} {prm.doc}")
    return 0


def _report(batch: Any) -> int:
    """Print the written files (stdout, when piped) and the failures (stderr); the exit code: 0 all done,
    2 when the only failures were refused before sending, 1 otherwise."""
    if not sys.stdout.isatty():
        for item in batch.items:
            for f in item.files:
                print(f, flush=True)
    for item in batch.items:
        if item.status != "done" and item.error is not None:
            print(f"volcnb: {item.label}: {item.status}: {item.error.message}", file=sys.stderr)
    if batch.possibly_created:
        print(f"volcnb: {len(batch.possibly_created)} submits may have created tasks whose ids were lost; "
              "they are not resubmitted (check the console; `volcnb run ... --fresh` submits them again)",
              file=sys.stderr)
    unfinished = [i for i in batch.items if i.status != "done"]
    if unfinished and all(i.status == "invalid" for i in unfinished):
        return 2  # refused before sending, as any user error
    return 1 if unfinished else 0


def _run(args: argparse.Namespace) -> int:
    from ._many import map as run_map
    from .tasks.inputs import iter_inputs

    _check_req_key(args.req_key, args.force)
    _check_params(args.req_key, dict(args.param), len(args.images))
    client = _client(args)
    items: list[Any] = []
    for arg in args.images or [None]:
        items.extend(iter_inputs(arg)[0] if arg is not None else [None])
    journal: Any = False if args.no_journal else None
    batch = run_map(args.req_key, items, client=client, out_dir=args.out, journal=journal, fresh=args.fresh,
                    concurrency=args.concurrency, qps=args.qps, deadline=args.timeout, display=True,
                    **dict(args.param))
    batch.result()
    return _report(batch)


def _resume(args: argparse.Namespace) -> int:
    from ._many import resume

    batch = resume(args.batch_id, client=_client(args), display=True)
    batch.result()
    if not batch.items:
        print("volcnb: nothing unfinished in the journal for this backend", file=sys.stderr)
    return _report(batch)


def _status(args: argparse.Namespace) -> int:
    import datetime

    from ._many import status

    rows = status()
    if not rows:
        print("the journal is empty")
    for b in rows:
        when = datetime.datetime.fromtimestamp(b["created_at"]).strftime("%Y-%m-%d %H:%M")
        counts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(b["states"].items())) or "no submits"
        print(f"{b['id']}  {when}  {b['label']}  [{counts}]  -> {b['out_dir']}  ({b['backend'].split('|')[0]})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
