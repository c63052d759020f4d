"""Batch benchmark: ``volcnb.map`` against the ideal bound and against the official SDK, on `volcnb sim`.

One ``volcnb sim`` subprocess on loopback with the given quotas (``submit_qps`` = ``--qps``,
``max_unfinished`` = ``--concurrency``) and service time. Then, in the same run:

* **volcnb**: a client told the account's quotas (``Pacer(submit_rate=--qps, max_unfinished=--concurrency)``),
  then ``volcnb.map("saliency_seg", inputs, concurrency=--concurrency)`` over a lazy generator of
  distinct inputs (128×128 PNGs, or incompressible ``--image-mb`` MB PNGs), journaled, results streamed to a
  temporary folder. Wall time, polls per task, client CPU seconds per task and peak RSS of this process.
* **the SDK** the way its users write it: ``--concurrency`` threads, each taking the next input, calling
  ``cv_sync2async_submit_task`` (retried after 1 s on 50429/50430), then ``cv_sync2async_get_result`` every
  3 s until done. Measured after volcnb (so volcnb's peak RSS is its own).

Ideal bound: ``N / min(qps, concurrency / service_time) + service_time``.
Targets (the batches issue): ``--tasks 300 --qps 20 --concurrency 50 --service-time 1`` within 1.15× the
ideal bound and faster than the SDK loop; ``--tasks 1000 --image-mb 1 --no-sdk`` under 300 MB peak RSS.

Usage::

    python benchmarks/batch.py --tasks 300 --qps 20 --concurrency 50 --service-time 1
    python benchmarks/batch.py --tasks 1000 --image-mb 1 --no-sdk --json
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import queue
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import volcnb  # noqa: E402
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimProcess  # noqa: E402

REQ_KEY = "saliency_seg"


def inputs(n: int, image_mb: float | None, seed: int = 1) -> Iterator[bytes]:
    """``n`` distinct PNGs, made one at a time (never all in memory)."""
    rng = np.random.default_rng(seed)
    if image_mb:
        side = int((image_mb * 1_000_000 / 3) ** 0.5)
        base = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    else:
        base = np.full((128, 128, 3), 230, np.uint8)
        base[24:104, 30:98] = (40, 90, 200)
    for i in range(n):
        a = base.copy()
        a[0, :8, 0] = list(i.to_bytes(8, "big"))  # distinct bytes: distinct tasks
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG", compress_level=0 if image_mb else 6)
        yield buf.getvalue()


def rss_mb() -> float:
    """Peak resident set size of this process, MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def stats(url: str) -> dict[str, Any]:
    return dict(httpx.get(url + "/sim/stats", timeout=30).json()["counters"])


def run_volcnb(url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    # The account's quota told to the client (its default pacer stays at 18/s, under the inferred 20/s).
    client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=url, timeout=60.0,
                           pacer=volcnb.Pacer(submit_rate=args.qps, max_unfinished=args.concurrency))
    before = stats(url)
    cpu0, t0 = cpu_s(), time.monotonic()
    batch = volcnb.map(REQ_KEY, inputs(args.tasks, args.image_mb), client=client, concurrency=args.concurrency,
                       qps=args.qps * 0.97, journal=work / "journal.sqlite", out_dir=work / "out", display=False)
    batch.result()
    wall, cpu = time.monotonic() - t0, cpu_s() - cpu0
    after = stats(url)
    client.close()
    counts = dict(batch.counts())
    return {"wall_s": wall, "done": counts.get("done", 0), "counts": counts,
            "polls_per_task": (after["polls"] - before["polls"]) / args.tasks,
            "cpu_s_per_task": cpu / args.tasks, "peak_rss_mb": rss_mb(),
            "accepted": after["accepted"] - before["accepted"],
            "rejected": {k: v - before["rejected"].get(k, 0) for k, v in after["rejected"].items()}}


def run_sdk(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from volcengine.visual.VisualService import VisualService

    vs = VisualService()
    vs.set_ak(DEFAULT_ACCESS_KEY)
    vs.set_sk(DEFAULT_SECRET_KEY)
    vs.set_host(url.removeprefix("http://"))
    vs.set_scheme("http")
    todo: queue.Queue[bytes] = queue.Queue()
    for raw in inputs(args.tasks, args.image_mb, seed=2):
        todo.put(raw)
    done, polls, lock = [0], [0], threading.Lock()

    def worker() -> None:
        while True:
            try:
                raw = todo.get_nowait()
            except queue.Empty:
                return
            form = {"req_key": REQ_KEY, "binary_data_base64": [base64.b64encode(raw).decode()]}
            while True:
                try:
                    task_id = vs.cv_sync2async_submit_task(form)["data"]["task_id"]
                    break
                except Exception as exc:
                    if "50429" in str(exc) or "50430" in str(exc):
                        time.sleep(1.0)
                        continue
                    raise
            while True:
                time.sleep(3.0)
                reply = vs.cv_sync2async_get_result({"req_key": REQ_KEY, "task_id": task_id})
                with lock:
                    polls[0] += 1
                if reply["data"]["status"] == "done":
                    with lock:
                        done[0] += 1
                    break

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"sdk_wall_s": time.monotonic() - t0, "sdk_done": done[0], "sdk_polls_per_task": polls[0] / args.tasks}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=300)
    p.add_argument("--qps", type=float, default=20.0, help="the simulator's submit quota")
    p.add_argument("--concurrency", type=int, default=50, help="the simulator's unfinished-task quota")
    p.add_argument("--service-time", type=float, default=1.0)
    p.add_argument("--image-mb", type=float, default=None, help="input size, incompressible (default 128×128)")
    p.add_argument("--no-sdk", action="store_true")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    args = p.parse_args(argv)
    if args.image_mb and not args.no_sdk:
        p.error("--image-mb is for the memory run; add --no-sdk")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = SimProcess("--queue-time", "0", "--processes", "2", "--service-time", f"{REQ_KEY}={args.service_time}:0.05",
                            log=work / "sim.log").start()
        try:
            httpx.post(server.url + "/sim/config", json={"quotas": {
                "submit_qps": args.qps, "max_unfinished": args.concurrency,
                "get_result_qps": max(200.0, args.qps * 10)}}, timeout=10).raise_for_status()
            ideal = args.tasks / min(args.qps, args.concurrency / args.service_time) + args.service_time
            out: dict[str, Any] = {"tasks": args.tasks, "qps": args.qps, "concurrency": args.concurrency,
                                   "service_time_s": args.service_time, "image_mb": args.image_mb,
                                   "ideal_s": ideal}
            out |= run_volcnb(server.url, args, work)
            out["ratio_to_ideal"] = out["wall_s"] / ideal
            print(f"volcnb.map  {out['done']}/{args.tasks} done in {out['wall_s']:.2f} s  ideal {ideal:.2f} s  "
                  f"ratio {out['ratio_to_ideal']:.3f}  polls/task {out['polls_per_task']:.2f}  "
                  f"CPU/task {out['cpu_s_per_task'] * 1000:.1f} ms  peak RSS {out['peak_rss_mb']:.0f} MB  "
                  f"accepted {out['accepted']}  rejected {out['rejected']}")
            if not args.no_sdk:
                out |= run_sdk(server.url, args)
                out["speedup_vs_sdk"] = out["sdk_wall_s"] / out["wall_s"]
                print(f"SDK loop    {out['sdk_done']}/{args.tasks} done in {out['sdk_wall_s']:.2f} s  "
                      f"polls/task {out['sdk_polls_per_task']:.2f}  volcnb is {out['speedup_vs_sdk']:.2f}× faster")
            else:
                out["sdk_wall_s"] = out["speedup_vs_sdk"] = None
        finally:
            server.stop()
    ok = out["done"] == args.tasks
    if args.image_mb:
        print(f"target: peak RSS < 300 MB: {'PASS' if out['peak_rss_mb'] < 300 else 'FAIL'}")
        ok = ok and out["peak_rss_mb"] < 300
    else:
        beats = args.no_sdk or out["speedup_vs_sdk"] > 1.0
        print(f"target: ratio ≤ 1.15: {'PASS' if out['ratio_to_ideal'] <= 1.15 else 'FAIL'}; faster than the SDK: "
              f"{'PASS' if beats else 'FAIL'}")
        ok = ok and out["ratio_to_ideal"] <= 1.15 and beats
    if args.json:
        print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
