"""Re-attaching to a task by id: in-process, from a NEW PROCESS against ``volcnb sim --db``, and the typed
errors (TaskExpiredError / TaskNotFoundError, keeping the task id) for ids that are too old or unknown."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from matplotlib import cbook

import volcnb
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, ServiceTime, SimProcess, Simulator

GRACE = str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
AK, SK = "AKATTACHTEST", "attach-test-secret"


def fast(c: volcnb.Client) -> volcnb.Client:
    c.poller = volcnb.BackoffPoller(first=0.02, factor=1.5, cap=0.1)
    return c


# ------------------------------------------------------------------------------------- in-process


async def test_attach_fetches_a_finished_task(client: volcnb.Client, sim: Simulator) -> None:
    original = await volcnb.run("saliency_seg", GRACE, only_mask=1)
    other = fast(volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, transport=client.transport))
    polls = sim.counters.polls
    task = volcnb.Task.attach("saliency_seg", original.task_id, client=other, display=False)
    assert sim.counters.polls == polls  # attach itself sends nothing
    assert task.task_id == original.task_id and task.submitted_at is None
    assert f"task_id={original.task_id}" in repr(task)
    res = await task
    assert res.task_id == original.task_id and res.bbox == original.bbox
    assert res.contours == original.contours
    assert sim.counters.accepted == 1  # nothing re-submitted
    await other.aclose()


async def test_attach_waits_for_an_unfinished_task(client: volcnb.Client, sim: Simulator) -> None:
    sim.set_service_time("saliency_seg", 0.5, 0.0)
    submitted = volcnb.submit("saliency_seg", GRACE)
    task_id = await submitted.submitted()
    task = volcnb.Task.attach("saliency_seg", task_id)  # the default client (the fixture's)
    res = await task
    assert res.task_id == task_id and task.polls >= 1 and task.status == "done"
    assert sim.counters.accepted == 1


def test_attach_to_an_unknown_id_raises_not_found_with_the_id(client: volcnb.Client) -> None:
    task = volcnb.Task.attach("saliency_seg", "7000000000000000042", display=False)
    with pytest.raises(volcnb.TaskNotFoundError) as info:
        task.result(timeout=10)
    assert info.value.task_id == "7000000000000000042" and info.value.code == "not_found"
    assert "7000000000000000042" in str(info.value)
    assert task.status == "not_found" and task.error is info.value


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def aging() -> Iterator[tuple[Simulator, FakeClock, volcnb.Client]]:
    clock = FakeClock()
    s = Simulator(clock=clock, max_clock_skew=1e9, queue_time=0.0, seed=4,
                  service_times={"saliency_seg": ServiceTime(1.0, 0.0)})
    c = fast(volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, transport=httpx.ASGITransport(app=s.app())))
    yield s, clock, c
    s.close()


def test_expired_and_purged_ids_give_typed_errors(aging: tuple[Simulator, FakeClock, volcnb.Client]) -> None:
    sim, clock, c = aging
    task_id, _ = c.submit_task_sync("saliency_seg", {"binary_data_base64": [_b64(GRACE)]})
    sim.wait_idle()
    clock.now += 2
    assert volcnb.Task.attach("saliency_seg", task_id, client=c, display=False).result(timeout=10).bbox

    clock.now += 12 * 3600  # older than the 12 h validity
    task = volcnb.Task.attach("saliency_seg", task_id, client=c, display=False)
    with pytest.raises(volcnb.TaskExpiredError) as expired:
        task.result(timeout=10)
    assert expired.value.task_id == task_id and task.error is expired.value
    assert isinstance(expired.value, volcnb.TaskNotFoundError)  # one except clause catches both

    clock.now += 12 * 3600  # purged after 24 h
    with pytest.raises(volcnb.TaskNotFoundError) as gone:
        volcnb.Task.attach("saliency_seg", task_id, client=c, display=False).result(timeout=10)
    assert type(gone.value) is volcnb.TaskNotFoundError and gone.value.task_id == task_id


def _b64(path: str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


# ----------------------------------------------------------------------------- in a new process


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLC_")}
    env["VOLCNB_QUIET"] = "1"
    return env


def _python(code: str, cwd: Path) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=120, env=_env(), cwd=cwd)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.slow
def test_attach_by_id_in_a_new_process(tmp_path: Path) -> None:
    db, log = tmp_path / "sim.sqlite", tmp_path / "sim.log"
    server = SimProcess("--access-key", AK, "--secret-key", SK, "--db", str(db), "--queue-time", "0.05", "--service-time", "saliency_seg=0.5:0", log=log).start()
    try:
        # process A: submit, print the id, exit without waiting
        task_id = _python(f"""
            import volcnb
            client = volcnb.Client({AK!r}, {SK!r}, endpoint={server.url!r})
            task = volcnb.submit("saliency_seg", {GRACE!r}, client=client, display=False)
            print(task.task_id)
        """, tmp_path)
        assert task_id.isdigit()

        # the server restarts (SIGKILL) in between: the --db keeps the task
        server.kill()
        server = SimProcess("--access-key", AK, "--secret-key", SK, "--db", str(db), "--queue-time", "0.05", "--service-time", "saliency_seg=0.5:0", log=log).start()

        # process B: attach by id and fetch; also an unknown id, which must keep its id in the error
        out = _python(f"""
            import json, volcnb
            client = volcnb.Client({AK!r}, {SK!r}, endpoint={server.url!r})
            task = volcnb.Task.attach("saliency_seg", {task_id!r}, client=client)
            res = task.result(timeout=60)
            print(json.dumps({{"task_id": res.task_id, "bbox": list(res.bbox), "contours": len(res.contours),
                              "shape": list(res.mask.shape), "polls": task.polls, "status": task.status}}))
            try:
                volcnb.Task.attach("saliency_seg", "7000000000000000777", client=client).result(timeout=30)
            except volcnb.TaskNotFoundError as err:
                print(json.dumps({{"error": type(err).__name__, "task_id": err.task_id}}))
        """, tmp_path)
        found, missing = (json.loads(line) for line in out.splitlines())
        assert found["task_id"] == task_id and found["status"] == "done" and found["polls"] >= 1
        assert found["shape"] == [600, 512] and found["contours"] >= 1
        x1, y1, x2, y2 = found["bbox"]
        assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 600
        assert missing == {"error": "TaskNotFoundError", "task_id": "7000000000000000777"}

        stats = httpx.get(server.url + "/sim/stats").json()
        assert stats["counters"]["submits"] == 0  # the second server never saw a submit: B only polled
        assert stats["tasks_stored"] == 1
    finally:
        server.kill()
