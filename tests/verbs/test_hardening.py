"""Hardening through the public API: bad input refused before anything is sent, wait options never sent,
``asyncio.run(volcnb.run(...))``, a client that paces itself, refused fetch options that lose nothing."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

import volcnb
from volcnb.sim import DEFAULT_ACCESS_KEY as AK
from volcnb.sim import DEFAULT_SECRET_KEY as SK
from volcnb.sim import ServiceTime, SimProcess, Simulator

IMAGE = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


class Counting(httpx.AsyncBaseTransport):
    """Wraps a transport and remembers every request; ``refuse_options`` answers 50200 to a GetResult that
    carries ``req_json`` (what the real service does with fetch options it rejects)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, refuse_options: bool = False) -> None:
        self.inner, self.refuse_options = inner, refuse_options
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content or b"{}")
        if self.refuse_options and "GetResult" in str(request.url) and "req_json" in body:
            return httpx.Response(400, json={"code": 50200, "message": "Request Invalid Args: req_json.logo_info",
                                             "request_id": "r1", "data": None, "status": 50200})
        return await self.inner.handle_async_request(request)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    s = Simulator(queue_time=0.0, service_times={"saliency_seg": ServiceTime(0.2, 0.0)})
    yield s
    s.close()  # drops queued computations: 200 unfinished segmentations must not load the next tests


def client_on(sim: Simulator, **kw: object) -> tuple[volcnb.Client, Counting]:
    transport = Counting(httpx.ASGITransport(app=sim.app()), **kw)  # type: ignore[arg-type]
    return volcnb.Client(AK, SK, transport=transport), transport


@pytest.mark.parametrize(("params", "field", "kind"), [
    ({"logo_info": {"add_logo": True, "position": True}}, "logo_info.position", volcnb.ValidationError),
    ({"logo_info": {"add_logo": "no"}}, "logo_info.add_logo", volcnb.ValidationError),
    ({"return_url": "no"}, "return_url", volcnb.ArgumentTypeError),
    ({"deadline": -5}, "deadline", volcnb.ValidationError),
    ({"only_mask": 9}, "only_mask", volcnb.ValidationError),
])
def test_bad_input_is_refused_before_sending(sim: Simulator, params: dict[str, object], field: str,
                                             kind: type[Exception]) -> None:
    client, transport = client_on(sim)
    with pytest.raises(kind) as info:
        volcnb.submit("saliency_seg", IMAGE, client=client, display=False, **params)
    assert info.value.field == field  # type: ignore[attr-defined]
    assert field.split(".")[-1] in str(info.value)
    assert transport.requests == [] and sim.counters.submits == 0


def test_wrong_client_and_attach_arguments_send_nothing(sim: Simulator) -> None:
    client, transport = client_on(sim)
    with pytest.raises(volcnb.ArgumentTypeError) as info:
        volcnb.submit("saliency_seg", IMAGE, client="x", display=False)  # type: ignore[arg-type]
    assert info.value.field == "client" and isinstance(info.value, TypeError)
    for args, field in [(("saliency_seg", ""), "task_id"), (("saliency_seg", None), "task_id"),
                        (("", "1"), "req_key"), ((123, "1"), "req_key")]:
        with pytest.raises(volcnb.ValidationError) as refused:
            volcnb.Task.attach(*args, client=client)  # type: ignore[arg-type]
        assert refused.value.field == field
    assert transport.requests == []


def test_asyncio_run_of_run_with_a_wait_timeout_and_a_dict_logo(sim: Simulator) -> None:
    """How a script user writes it: the task is submitted once, ``timeout`` is the wait's (never an API
    parameter), and ``logo_info`` as a plain dict is sent as the documented JSON at query time."""
    client, transport = client_on(sim)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about `timeout`
        res = asyncio.run(volcnb.run("saliency_seg", IMAGE, client=client, display=False, timeout=60,
                                     logo_info={"add_logo": True, "position": 2}))
    assert isinstance(res, volcnb.SegmentationResult) and res.images
    submits = [json.loads(r.content) for r in transport.requests if "SubmitTask" in str(r.url)]
    polls = [json.loads(r.content) for r in transport.requests if "GetResult" in str(r.url)]
    assert len(submits) == 1 and "timeout" not in submits[0] and "on_timeout" not in submits[0]
    sent = json.loads(polls[-1]["req_json"])["logo_info"]
    assert sent["add_logo"] is True and sent["position"] == 2
    assert sim.counters.accepted == 1


async def test_two_hundred_gathered_submits_pace_themselves(sim: Simulator) -> None:
    """200 submits gathered in one cell against the default quota (20/s): none fails with 50429."""
    client, _ = client_on(sim)
    tasks = [volcnb.submit("saliency_seg", IMAGE, client=client, display=False) for _ in range(200)]
    ids = await asyncio.gather(*(t.submitted() for t in tasks))
    assert len(set(ids)) == 200
    assert sim.counters.accepted == 200 and sim.counters.rejected.get("50429", 0) == 0
    await client.aclose()


async def test_refused_fetch_options_lose_nothing(sim: Simulator) -> None:
    client, transport = client_on(sim, refuse_options=True)
    task = volcnb.submit("saliency_seg", IMAGE, client=client, display=False,
                         logo_info=volcnb.LogoInfo(add_logo=True))
    with pytest.raises(volcnb.FetchOptionsError) as info:
        await task
    err = info.value
    assert err.task_id == task.task_id and err.options["logo_info"]["add_logo"] is True
    assert task.status != "failed" and sim.counters.accepted == 1
    res = await task.fetch()  # without options: the same task, no new submit
    assert res.images and sim.counters.accepted == 1
    await client.aclose()


async def test_an_outage_while_tasks_generate_ends_no_handle() -> None:
    """The service is unreachable for 3 s while 10 tasks generate: every handle still gets its result
    (polls are retried until the task's deadline, not a fixed count), and nothing is submitted twice."""
    from volcnb.sim import SimServer
    from volcnb.sim._server import free_port

    sim = Simulator(queue_time=0.0, service_times={"saliency_seg": ServiceTime(1.0, 0.0)})
    port = free_port()
    server = SimServer(sim, port=port).start()
    client = volcnb.Client(AK, SK, endpoint=server.url)
    try:
        tasks = [volcnb.submit("saliency_seg", IMAGE, client=client, display=False) for _ in range(10)]
        await asyncio.gather(*(t.submitted() for t in tasks))
        await asyncio.to_thread(server.stop)  # connections refused from now on
        await asyncio.sleep(3.0)
        assert not any(t.done for t in tasks)
        server = SimServer(sim, port=port).start()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 60)
        assert all(r.images for r in results)
        assert sim.counters.accepted == 10 and sim.counters.submits == 10
    finally:
        await client.aclose()
        server.stop()
        sim.close()


async def test_volcnb_sim_killed_for_3_s_while_tasks_generate(tmp_path: Path) -> None:
    """``volcnb sim --db`` is SIGKILLed while 10 tasks generate and restarted 3 s later on the same port:
    all 10 handles finish done and the restarted server accepted no new submit."""
    db = tmp_path / "sim.sqlite"
    server = SimProcess("--db", str(db), "--queue-time", "0", "--service-time", "saliency_seg=2:0",
                        log=tmp_path / "sim.log").start()
    client = volcnb.Client(AK, SK, endpoint=server.url)
    try:
        tasks = [volcnb.submit("saliency_seg", IMAGE, client=client, display=False) for _ in range(10)]
        ids = await asyncio.gather(*(t.submitted() for t in tasks))
        server.kill()
        await asyncio.sleep(3.0)
        assert not any(t.done for t in tasks)
        server = SimProcess("--db", str(db), "--queue-time", "0", "--service-time", "saliency_seg=2:0",
                            port=server.port, log=tmp_path / "sim.log").start()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 120)
        assert all(r.images for r in results) and [t.status for t in tasks] == ["done"] * 10
        counters = (await asyncio.to_thread(httpx.get, server.url + "/sim/stats", timeout=10)).json()["counters"]
        assert counters["submits"] == 0  # the restarted server: polls only
        with sqlite3.connect(db) as conn:
            assert sorted(r[0] for r in conn.execute("SELECT task_id FROM tasks")) == sorted(ids)
    finally:
        await client.aclose()
        server.stop()


async def test_three_hundred_gathered_submits_over_http_at_the_quota(tmp_path: Path) -> None:
    """300 ``volcnb.submit()`` gathered in one loop against ``volcnb sim`` with its default quotas: all done,
    no 50429/50430 reaches the user, exactly 300 distinct submits, within 1.3× of 300/quota + service time."""
    server = SimProcess("--queue-time", "0", "--service-time", "saliency_seg=1:0", "--processes", "2",
                        log=tmp_path / "sim.log").start()
    client = volcnb.Client(AK, SK, endpoint=server.url)
    try:
        base = np.asarray(Image.open(IMAGE).convert("RGB").resize((160, 128)))
        images = []
        for i in range(300):
            a = base.copy()
            a[0, :2, 0] = [i // 256, i % 256]  # distinct inputs: duplicates would show as such
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, "PNG")
            images.append(buf.getvalue())  # encoded bytes, as a file's would be
        started = time.monotonic()
        tasks = [volcnb.submit("saliency_seg", img, client=client, display=False) for img in images]
        results = await asyncio.wait_for(asyncio.gather(*tasks), 120)
        wall = time.monotonic() - started
        assert len(results) == 300 and all(t.status == "done" for t in tasks)
        counters = (await asyncio.to_thread(httpx.get, server.url + "/sim/stats", timeout=10)).json()["counters"]
        assert counters["accepted"] == 300 and counters["duplicates"] == 0
        assert wall <= 1.3 * (300 / 20 + 1.0), f"{wall:.1f} s"
    finally:
        await client.aclose()
        server.stop()


def test_asyncio_run_in_a_script_returns_a_result(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        "import asyncio, volcnb\n"
        "from matplotlib import cbook\n"
        "volcnb.use_simulator()\n"
        "res = asyncio.run(volcnb.run('saliency_seg', cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)))\n"
        "print(type(res).__name__, isinstance(res, volcnb.Result), len(res.images))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLC")}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    name, is_result, count = proc.stdout.split()
    assert name == "SegmentationResult" and is_result == "True" and int(count) >= 1


def test_auto_resize_downsizes_oversized_pictures_and_says_so(sim: Simulator) -> None:
    client, transport = client_on(sim)
    wide = Image.open(IMAGE).convert("RGB").resize((5000, 3000))
    with pytest.raises(volcnb.ValidationError) as info:
        volcnb.submit("saliency_seg", wide, client=client, display=False)
    assert "auto_resize=True" in info.value.message and transport.requests == []
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (2600, 2600, 3), dtype=np.uint8))
    for picture, most in ((wide, 4096), (noise, 2600)):
        with pytest.warns(UserWarning, match=r"downsized from \d+×\d+ to \d+×\d+ px .*auto_resize=True"):
            task = volcnb.submit("saliency_seg", picture, client=client, display=False, auto_resize=True)
        assert task.result().images
        row = sim.store.get_task(task.task_id)
        assert row is not None and "auto_resize" not in row.body
        raw = base64.b64decode(row.body["binary_data_base64"][0])
        assert len(row.body["binary_data_base64"][0]) <= int(4.7 * 1024 * 1024)
        with Image.open(io.BytesIO(raw)) as got:
            assert max(got.size) <= most and abs(got.width / got.height - picture.width / picture.height) < 0.01
