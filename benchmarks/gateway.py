"""Load test of the Jimeng gateway on loopback: concurrent creates from many users, then their polls.

    python benchmarks/gateway.py [--tasks 200] [--users 20] [--service-time 1] [--json]

One ``volcnb gateway`` subprocess (simulated upstream, a temporary SQLite file). All creates are sent at once
(``--tasks`` from ``--users`` users, ``--tasks/--users`` each, so within the per-user limit of 10 when the
defaults are kept), then every task is polled each 0.5 s until it finishes. Printed: p50/p95/p99/max of the
create call, wall time to all completed, counts per status code, and PASS/FAIL (no 5xx, all completed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from volcnb.gateway._server import GatewayProcess


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _load(url: str, tasks: int, users: int, deadline: float) -> dict[str, object]:
    codes: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=tasks, max_keepalive_connections=tasks)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        async def create(i: int) -> tuple[float, str | None]:
            t0 = time.perf_counter()
            r = await http.post(f"{url}/ai/image/task", json={"prompt": f"负载 {i}", "user_id": f"load{i % users}",
                                                             "size": "512x512"})
            codes[r.status_code] += 1
            return time.perf_counter() - t0, r.json()["data"]["task_id"] if r.status_code == 201 else None

        async def poll(task_id: str) -> int:
            while time.monotonic() < deadline:
                try:
                    r = await http.get(f"{url}/ai/image/result/{task_id}")
                except httpx.TransportError:  # a keep-alive connection closed under us: GET again
                    codes[0] += 1
                    continue
                codes[r.status_code] += 1
                if r.status_code != 202:
                    return r.status_code
                await asyncio.sleep(0.5)
            return 0

        start = time.monotonic()
        made = await asyncio.gather(*(create(i) for i in range(tasks)))
        finals = await asyncio.gather(*(poll(tid) for _, tid in made if tid))
        wall = time.monotonic() - start
    lat = [t * 1000 for t, _ in made]
    return {"tasks": tasks, "users": users, "created": sum(1 for _, t in made if t),
            "completed": finals.count(200), "wall_s": round(wall, 2),
            "create_ms": {"p50": round(_pct(lat, 50), 1), "p95": round(_pct(lat, 95), 1),
                          "p99": round(_pct(lat, 99), 1), "max": round(max(lat), 1),
                          "mean": round(statistics.mean(lat), 1)},
            "status_codes": dict(sorted(codes.items()))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--service-time", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=150.0, help="seconds before giving up (bounded)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "gateway.sqlite")
        with GatewayProcess("--db", db, "--service-time", str(args.service_time)) as gw:
            out = asyncio.run(_load(gw.url, args.tasks, args.users, time.monotonic() + args.timeout))
    fivexx = sum(n for code, n in out["status_codes"].items() if code >= 500)  # type: ignore[union-attr]
    ok = fivexx == 0 and out["completed"] == args.tasks
    if args.json:
        print(json.dumps({**out, "pass": ok}))
    else:
        c = out["create_ms"]
        print(f"{out['tasks']} creates from {out['users']} users: create p50 {c['p50']} ms, p95 {c['p95']} ms, "  # type: ignore[index]
              f"p99 {c['p99']} ms, max {c['max']} ms; all done in {out['wall_s']} s; "  # type: ignore[index]
              f"completed {out['completed']}/{out['tasks']}; status codes {out['status_codes']}; "
              f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
