"""Batches against `volcnb sim` over real HTTP: 500 tasks through injected faults, and processes killed
after and during their submits — every task finished exactly once, nothing resubmitted unasked."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

import volcnb
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimProcess

pytestmark = pytest.mark.slow


def _pictures(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        a = np.full((128, 144, 3), 240, np.uint8)
        a[20 + i % 40:100, 10:120 - i % 50] = (i % 256, 80, 200)
        p = folder / f"p{i:04d}.png"
        Image.fromarray(a).save(p)
        out.append(str(p))
    return out


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SimProcess]:
    proc = SimProcess("--db", str(tmp_path / "sim.sqlite"), "--queue-time", "0.05",
                      "--service-time", "saliency_seg=0.3:0.2", log=tmp_path / "sim.log").start()
    yield proc
    proc.stop()


def _config(server: SimProcess, conf: dict[str, object]) -> None:
    r = httpx.post(server.url + "/sim/config", json=conf, timeout=10)
    assert r.status_code == 200, r.text


def _stats(server: SimProcess) -> dict[str, object]:
    return dict(httpx.get(server.url + "/sim/stats", timeout=10).json()["counters"])


def test_500_tasks_through_faults_finish_exactly_once(server: SimProcess, tmp_path: Path) -> None:
    paths = _pictures(tmp_path / "in", 500)
    rng = random.Random(7)
    # Submits: only faults after which no task can exist. GetResult: anything, ~10 %.
    submit_plan = [rng.choice(["code_50500"]) if rng.random() < 0.10 else "ok" for _ in range(560)]
    _config(server, {
        "quotas": {"submit_qps": 60, "max_unfinished": 80},
        "faults": {"http_500": 0.02, "code_50500": 0.02, "drop": 0.015, "drop_after": 0.015, "slow": 0.01,
                   "malformed": 0.02, "slow_seconds": 0.4, "actions": ["CVSync2AsyncGetResult"]},
        "plan": {"CVSync2AsyncSubmitTask": submit_plan},
    })
    client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=server.url, timeout=5.0,
                           retry=volcnb.RetryPolicy(max_retries=10, base=0.05, cap=0.5),
                           poller=volcnb.BackoffPoller(first=0.2, factor=1.4, cap=0.6))
    try:
        batch = volcnb.map("saliency_seg", paths, client=client, concurrency=60, qps=50,
                           journal=tmp_path / "journal.sqlite", out_dir=tmp_path / "out", display=False)
        batch.result()
    finally:
        client.close()
    assert batch.counts() == {"done": 500}, (batch.counts(), batch.failed[:3])
    stats = _stats(server)
    assert stats["accepted"] == 500 and stats["duplicates"] == 0, stats
    assert stats["faults"], "faults were injected"  # type: ignore[truthy-bool]
    lines = (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 500 and len({json.loads(x)["task_id"] for x in lines}) == 500


def test_an_ambiguous_submit_is_reported_never_resubmitted(server: SimProcess, tmp_path: Path) -> None:
    paths = _pictures(tmp_path / "in", 4)
    _config(server, {"plan": {"CVSync2AsyncSubmitTask": ["ok", "drop_after", "ok", "ok"]}})
    client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=server.url, timeout=5.0,
                           poller=volcnb.FixedPoller(0.2))
    try:
        batch = volcnb.map("saliency_seg", paths, client=client, concurrency=1, display=False,
                           journal=tmp_path / "journal.sqlite", out_dir=tmp_path / "out")
        batch.result()
        assert sorted(batch.counts().items()) == [("done", 3), ("possibly_created", 1)]
        (item,) = batch.possibly_created
        assert item.label == paths[1] and isinstance(item.error, volcnb.PossiblyCreatedError)
        assert "may exist" in item.error.message
        assert _stats(server)["accepted"] == 4  # the dropped submit DID create a task on the service
        again = volcnb.map("saliency_seg", paths, client=client, journal=tmp_path / "journal.sqlite",
                           out_dir=tmp_path / "out", display=False).result()
        assert sorted(again.counts().items()) == [("done", 3), ("possibly_created", 1)]
        assert _stats(server)["accepted"] == 4, "a re-run must not resubmit the possibly created one"
        again.retry_failed()  # the user's word
        assert again.counts() == {"done": 4} and _stats(server)["accepted"] == 5
    finally:
        client.close()


SCRIPT = """
import json, sys, volcnb
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
url, journal, out, verb = sys.argv[1:5]
paths, concurrency = json.loads(sys.argv[5]), int(sys.argv[6])
client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=url, poller=volcnb.FixedPoller(0.3))
if verb == "map":
    batch = volcnb.map("saliency_seg", paths, client=client, journal=journal, out_dir=out, concurrency=concurrency,
                       display=False)
else:
    batch = volcnb.resume(client=client, journal=journal, display=False)
batch.result()
print(json.dumps({"counts": dict(batch.counts()), "reused": sum(i.reused for i in batch.items),
                  "done_files": sum(1 for r in batch.results if r is not None)}))
"""


def _run(tmp_path: Path, server: SimProcess, verb: str, paths: list[str], concurrency: int = 3
         ) -> subprocess.Popen[str]:
    script = tmp_path / "batch_script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLC_")} | {"VOLCNB_QUIET": "1"}
    return subprocess.Popen([sys.executable, str(script), server.url, str(tmp_path / "journal.sqlite"),
                             str(tmp_path / "out"), verb, json.dumps(paths), str(concurrency)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _finish(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1]))


def _journal_rows(tmp_path: Path) -> list[tuple[str, str | None]]:
    db = tmp_path / "journal.sqlite"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return list(con.execute("SELECT state, task_id FROM entries"))
    except sqlite3.OperationalError:
        return []


def _wait_for(cond: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_killed_after_its_submits_resume_gets_everything_once(server: SimProcess, tmp_path: Path) -> None:
    paths = _pictures(tmp_path / "in", 6)
    _config(server, {"service_times": {"saliency_seg": [3.0, 0.0]}})
    proc = _run(tmp_path, server, "map", paths, concurrency=10)
    _wait_for(lambda: sum(1 for _s, t in _journal_rows(tmp_path) if t) == 6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _stats(server)["accepted"] == 6
    states = {s for s, _t in _journal_rows(tmp_path)}
    assert "done" not in states, "killed while the tasks generate"
    resumed = _finish(_run(tmp_path, server, "resume", paths))
    assert resumed["counts"] == {"done": 6} and resumed["done_files"] == 6
    assert _stats(server)["accepted"] == 6, "resume never resubmits"
    again = _finish(_run(tmp_path, server, "map", paths))
    assert again["counts"] == {"done": 6} and again["reused"] == 6
    assert _stats(server)["accepted"] == 6, "re-running the same map() makes 0 new submits"


def test_killed_during_its_submits_lists_them_as_possibly_created(server: SimProcess, tmp_path: Path) -> None:
    paths = _pictures(tmp_path / "in", 6)
    _config(server, {"faults": {"slow_seconds": 5.0, "actions": []},
                     "plan": {"CVSync2AsyncSubmitTask": ["slow", "slow", "slow"]}})
    proc = _run(tmp_path, server, "map", paths)
    _wait_for(lambda: _stats(server)["accepted"] == 3 and len(_journal_rows(tmp_path)) == 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [s for s, _t in _journal_rows(tmp_path)] == ["intent"] * 3
    resumed = _finish(_run(tmp_path, server, "resume", paths))
    assert resumed["counts"] == {"possibly_created": 3}
    assert _stats(server)["accepted"] == 3, "nothing is resubmitted without the user's word"
    rerun = _finish(_run(tmp_path, server, "map", paths))
    assert rerun["counts"] == {"possibly_created": 3, "done": 3}
    assert _stats(server)["accepted"] == 6  # only the three never sent before
