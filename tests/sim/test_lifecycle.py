"""The simulated task life cycle: statuses, expiry, quotas, moderation, result links, watermarks,
CPU work off the event loop, counters, and tasks surviving a SIGKILL with ``volcnb sim --db``.

Clock-dependent behaviour runs on an injected fake clock (``Simulator(clock=...)``) so 12 h pass in no time;
the signature's X-Date is checked against that clock, so those simulators get a huge ``max_clock_skew``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from _documents import PORTRAIT_REQUEST
from matplotlib import cbook
from PIL import Image

import volcnb
from volcnb.sim import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    RISK_IMAGE_COLOR,
    Quotas,
    ServiceTime,
    SimProcess,
    Simulator,
)

PORTRAIT = "img2img_anime_accelerated_maintain_id"
HOUR = 3600.0
ACTIONS = {"submit": ("CVSync2AsyncSubmitTask", "2022-08-31"), "get": ("CVSync2AsyncGetResult", "2022-08-31"),
           "cancel": ("CVCancelTask", "2024-06-06")}


class FakeClock:
    """A settable POSIX clock."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """Signed raw calls to an in-process simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=sim.app()), base_url="http://sim.local",
            auth=volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)))

    async def call(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name, version = ACTIONS[action]
        r = await self.http.post("/", params={"Action": name, "Version": version},
                                 content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        return r.status_code, r.json()

    async def submit(self, body: dict[str, Any]) -> str:
        status, reply = await self.call("submit", body)
        assert (status, reply["code"]) == (200, 10000), reply
        return str(reply["data"]["task_id"])

    async def status(self, req_key: str, task_id: str) -> str:
        _, reply = await self.call("get", {"req_key": req_key, "task_id": task_id})
        assert reply["code"] == 10000, reply
        return str(reply["data"]["status"])

    async def result(self, req_key: str, task_id: str, **req_json: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"req_key": req_key, "task_id": task_id}
        if req_json:
            body["req_json"] = json.dumps(req_json)
        status, reply = await self.call("get", body)
        assert (status, reply["code"], reply["data"]["status"]) == (200, 10000, "done"), reply
        return dict(reply["data"])


def client_for(sim: Simulator) -> volcnb.Client:
    """A volcnb client on ``sim`` in-process, polling fast."""
    c = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, transport=httpx.ASGITransport(app=sim.app()))
    c.poller = volcnb.BackoffPoller(first=0.01, factor=1.5, cap=0.1)
    return c


def picture(size: tuple[int, int] = (320, 240), *, corner: tuple[int, int, int] | None = None) -> Image.Image:
    """A disc on a gradient; ``corner`` paints the top-left 16×16 block (the moderation trigger)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 1] = (yy * 200 // max(h - 1, 1)).astype(np.uint8)
    arr[..., 2] = 120
    arr[(xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(w, h) / 3) ** 2] = (230, 60, 40)
    if corner is not None:
        arr[:16, :16] = corner
    return Image.fromarray(arr)


def b64(img: Image.Image, fmt: str = "PNG", **save: Any) -> str:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def grace() -> Image.Image:
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as img:
        return img.convert("RGB")


def portrait_body(**extra: Any) -> dict[str, Any]:
    return {"req_key": PORTRAIT, "binary_data_base64": [b64(grace(), "JPEG", quality=90)],
            "face_image": "uri://binary_data?index=0", "face_switch": True, "seed": 3, "width": 800, "height": 640,
            **extra}


def png_image(data: str | bytes) -> Image.Image:
    raw = base64.b64decode(data) if isinstance(data, str) else data
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(raw))
    img.load()
    return img


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_sim(clock: FakeClock) -> Iterator[Simulator]:
    s = Simulator(clock=clock, max_clock_skew=1e9, queue_time=10.0, seed=1,
                  service_times={k: ServiceTime(20.0, 0.0) for k in volcnb.CAPABILITIES})
    yield s
    s.close()


@pytest.fixture
async def api(fake_sim: Simulator) -> AsyncIterator[Api]:
    a = Api(fake_sim)
    yield a
    await a.http.aclose()


# ------------------------------------------------------------------------------------------ statuses


async def test_statuses_follow_queue_and_service_time(api: Api, fake_sim: Simulator, clock: FakeClock) -> None:
    tid = await api.submit({"req_key": "saliency_seg", "binary_data_base64": [b64(picture())]})
    assert await api.status("saliency_seg", tid) == "in_queue"
    clock.advance(9.9)
    assert await api.status("saliency_seg", tid) == "in_queue"
    clock.advance(0.2)  # queue_time (10 s) over
    assert await api.status("saliency_seg", tid) == "generating"
    fake_sim.wait_idle()  # the output is computed, but the service time (20 s) has not passed
    clock.advance(19.8)
    assert await api.status("saliency_seg", tid) == "generating"
    clock.advance(0.2)
    data = await api.result("saliency_seg", tid)
    assert data["bbox"] and data["binary_data_base64"]
    [timing] = fake_sim.stats(tasks=True)["tasks"]
    assert timing["finished_at"] - timing["submitted_at"] == pytest.approx(30.0)


async def test_statuses_in_real_time_through_the_client(client: volcnb.Client, sim: Simulator) -> None:
    sim.queue_time = 0.3
    sim.set_service_time("saliency_seg", 0.6, 0.0)
    started = time.monotonic()
    task = volcnb.submit("saliency_seg", picture())
    res = await task
    took = time.monotonic() - started
    seen = [s for _, s in task.history]
    assert [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s] == [
        "submitting", "in_queue", "generating", "done"]
    assert took >= 0.9 - 0.05 and res.bbox is not None


# ------------------------------------------------------------------------------------------- expiry


async def test_expired_after_ttl_then_not_found_after_purge(api: Api, fake_sim: Simulator,
                                                            clock: FakeClock) -> None:
    assert fake_sim.ttl == 12 * HOUR and fake_sim.purge_after == 24 * HOUR
    tid = await api.submit({"req_key": "saliency_seg", "binary_data_base64": [b64(picture())]})
    fake_sim.wait_idle()
    clock.advance(12 * HOUR - 60)
    await api.result("saliency_seg", tid)  # still fetchable just before 12 h
    clock.advance(120)
    assert await api.status("saliency_seg", tid) == "expired"

    c = client_for(fake_sim)
    with pytest.raises(volcnb.TaskExpiredError) as expired:
        await volcnb.Task.attach("saliency_seg", tid, client=c, display=False)
    assert expired.value.task_id == tid and expired.value.code == "expired"

    clock.advance(12 * HOUR)  # now past purge_after (24 h): the task is gone
    assert await api.status("saliency_seg", tid) == "not_found"
    assert fake_sim.store.get_task(tid) is None
    with pytest.raises(volcnb.TaskNotFoundError) as gone:
        await volcnb.Task.attach("saliency_seg", tid, client=c, display=False)
    assert not isinstance(gone.value, volcnb.TaskExpiredError) and gone.value.task_id == tid
    await c.aclose()


# ------------------------------------------------------------------------------------------- quotas


async def test_submit_qps_quota_is_50429(api: Api, fake_sim: Simulator, clock: FakeClock) -> None:
    fake_sim.quotas = Quotas(submit_qps=2, max_unfinished=100, get_result_qps=100)
    body = {"req_key": "saliency_seg", "binary_data_base64": [b64(picture())]}
    await api.submit(body)
    await api.submit(body)
    status, reply = await api.call("submit", body)
    assert (status, reply["code"]) == (429, 50429)
    assert reply["message"] == "Request Has Reached API Limit, Please Try Later"
    clock.advance(0.5)  # one token back at 2 per second
    await api.submit(body)
    assert fake_sim.counters.accepted == 3 and fake_sim.counters.rejected["50429"] == 1


async def test_unfinished_task_quota_is_50430(api: Api, fake_sim: Simulator, clock: FakeClock) -> None:
    fake_sim.quotas = Quotas(submit_qps=100, max_unfinished=2, get_result_qps=100)
    body = {"req_key": "saliency_seg", "binary_data_base64": [b64(picture())]}
    first = await api.submit(body)
    await api.submit(body)
    status, reply = await api.call("submit", body)
    assert (status, reply["code"]) == (429, 50430)
    assert "Concurrent" in reply["message"]
    fake_sim.wait_idle()
    clock.advance(31)  # both done: they no longer count
    assert await api.status("saliency_seg", first) == "done"
    await api.submit(body)


async def test_get_result_has_its_own_higher_limit(api: Api, fake_sim: Simulator, clock: FakeClock) -> None:
    fake_sim.quotas = Quotas(submit_qps=1, max_unfinished=100, get_result_qps=5)
    body = {"req_key": "saliency_seg", "binary_data_base64": [b64(picture())]}
    tid = await api.submit(body)
    status, reply = await api.call("submit", body)
    assert (status, reply["code"]) == (429, 50429)  # submits are exhausted for this second ...
    for _ in range(5):                              # ... polls are not
        assert await api.status("saliency_seg", tid) == "in_queue"
    status, reply = await api.call("get", {"req_key": "saliency_seg", "task_id": tid})
    assert (status, reply["code"]) == (429, 50429)
    clock.advance(1.0)
    assert await api.status("saliency_seg", tid) == "in_queue"
    assert Quotas().get_result_qps > Quotas().submit_qps  # the defaults keep polls cheaper than submits


# -------------------------------------------------------------------------------------- moderation


@pytest.mark.parametrize(("prompt", "code"), [("a portrait, sim:text-risk", 50412), ("违禁词", 50412),
                                              ("sim:ip-block in a hat", 50413), ("米老鼠 portrait", 50413)])
async def test_input_text_risk_at_submit(api: Api, fake_sim: Simulator, prompt: str, code: int) -> None:
    status, reply = await api.call("submit", portrait_body(positive_prompt=prompt))
    assert (status, reply["code"], reply["data"]) == (400, code, None)
    assert "Risk Not Pass" in reply["message"]
    assert fake_sim.counters.accepted == 0


@pytest.mark.parametrize("req_key", ["saliency_seg", PORTRAIT])
async def test_input_image_risk_at_submit(api: Api, req_key: str) -> None:
    body = portrait_body() if req_key == PORTRAIT else {"req_key": req_key}
    body["binary_data_base64"] = [b64(picture(corner=RISK_IMAGE_COLOR))]
    status, reply = await api.call("submit", body)
    assert (status, reply["code"], reply["message"]) == (400, 50411, "Pre Img Risk Not Pass")
    body["binary_data_base64"] = [b64(picture(corner=(254, 0, 255)))]  # not exactly the trigger: accepted
    status, reply = await api.call("submit", body)
    assert reply["code"] == 10000


async def test_output_risk_fails_the_done_task_with_50511(api: Api, fake_sim: Simulator, clock: FakeClock) -> None:
    tid = await api.submit(portrait_body(positive_prompt="1girl, sim:post-risk"))
    assert await api.status(PORTRAIT, tid) == "in_queue"
    fake_sim.wait_idle()
    clock.advance(31)
    status, reply = await api.call("get", {"req_key": PORTRAIT, "task_id": tid})
    assert (status, reply["code"], reply["message"]) == (400, 50511, "Post Img Risk Not Pass")
    assert reply["data"] == {"status": "done"}

    c = client_for(fake_sim)
    with pytest.raises(volcnb.ContentRiskError) as info:
        await volcnb.Task.attach(PORTRAIT, tid, client=c, display=False)
    assert info.value.code == 50511 and info.value.resubmittable and info.value.task_id == tid
    await c.aclose()


# --------------------------------------------------------------------------------- links, watermarks


async def test_return_url_serves_png_until_url_ttl(api: Api, fake_sim: Simulator, clock: FakeClock) -> None:
    tid = await api.submit({"req_key": "saliency_seg", "binary_data_base64": [b64(picture())], "only_mask": 1})
    fake_sim.wait_idle()
    clock.advance(31)
    inline = await api.result("saliency_seg", tid)
    linked = await api.result("saliency_seg", tid, return_url=True)
    assert linked["binary_data_base64"] == [""]  # an array, as documented (the example shows [""])
    [url] = linked["image_urls"]
    assert url.startswith("http://sim.local/sim/files/")
    r = await api.http.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == base64.b64decode(inline["binary_data_base64"][0])
    assert png_image(r.content).size == (320, 240)

    clock.advance(fake_sim.url_ttl - 60)  # 24 h links: still valid a minute before
    assert (await api.http.get(url)).status_code == 200
    clock.advance(61)
    r = await api.http.get(url)
    assert r.status_code == 403 and "expired" in r.text


async def test_watermark_is_applied_at_query_time(api: Api, fake_sim: Simulator, clock: FakeClock) -> None:
    tid = await api.submit(portrait_body())
    fake_sim.wait_idle()
    clock.advance(31)
    plain = png_image((await api.result(PORTRAIT, tid))["binary_data_base64"][0]).convert("RGB")
    w, h = plain.size
    corners = {0: (w - 300, h - 150, w, h), 1: (0, h - 150, 300, h), 2: (0, 0, 300, 150), 3: (w - 300, 0, w, 150)}
    for position, language in ((2, 0), (0, 1)):
        logo = {"add_logo": True, "position": position, "language": language, "opacity": 1.0}
        marked = png_image((await api.result(PORTRAIT, tid, logo_info=logo))["binary_data_base64"][0])
        assert marked.size == (w, h)
        diff = np.abs(np.asarray(marked.convert("RGB"), np.int16) - np.asarray(plain, np.int16)).max(axis=2) > 0
        for corner, (left, top, right, bottom) in corners.items():
            changed = int(diff[top:bottom, left:right].sum())
            if corner == position:
                assert changed > 200, f"position {position}: the corner is unchanged"
            else:
                assert changed == 0, f"position {position}: corner {corner} changed too"
    # the stored output itself is untouched: fetching without a logo again gives the same pixels
    again = png_image((await api.result(PORTRAIT, tid, logo_info={"add_logo": False}))["binary_data_base64"][0])
    assert again.convert("RGB").tobytes() == plain.tobytes()
    assert fake_sim.counters.accepted == 1


async def test_portrait_document_contradiction_is_accepted_with_a_note(api: Api, fake_sim: Simulator,
                                                             clock: FakeClock) -> None:
    """The 人像保持 document's own request example turns hyper_switch on with face_switch + facestyle_switch."""
    body = {**PORTRAIT_REQUEST,
            "binary_data_base64": [b64(grace(), "JPEG", quality=90), b64(picture((400, 400)))]}
    tid = await api.submit(body)
    fake_sim.wait_idle()
    clock.advance(31)
    data = await api.result(PORTRAIT, tid)
    notes = json.loads(data["response_data"])["notes"]
    assert any("hyper_switch" in n and "face_switch" in n for n in notes), notes
    assert png_image(data["binary_data_base64"][0]).size == (1000, 1000)


# ------------------------------------------------------------------------------- off the event loop


@pytest.mark.slow
async def test_cpu_work_runs_off_the_event_loop(sim: Simulator) -> None:
    """While a 4096×3000 image segments, GetResult round trips on the same in-process app stay fast."""
    big = grace().resize((4096, 3000))
    body = {"req_key": "saliency_seg", "binary_data_base64": [b64(big, "JPEG", quality=85)], "refine_mask": 1}
    api = Api(sim)
    tid = await api.submit(body)
    row = sim.store.get_task(tid)
    assert row is not None
    during: list[float] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        started = time.perf_counter()
        status = await api.status("saliency_seg", tid)
        took = time.perf_counter() - started
        computing = sim.store.get_task(tid).computed_at is None  # type: ignore[union-attr]
        if not computing:
            break
        assert status == "generating"
        during.append(took)
        await asyncio.sleep(0.02)
    assert len(during) >= 5, "the segmentation finished too fast to measure anything"
    assert max(during) < 0.2, f"GetResult took up to {max(during):.3f} s while segmenting"
    data = await api.result("saliency_seg", tid)
    assert data["ori_width"] == [4096] and data["ori_height"] == [3000]
    await api.http.aclose()


async def test_worker_processes_compute_the_same_outputs() -> None:
    """``Simulator(processes=1)`` (``volcnb sim --processes``) computes in another process: same bytes as
    in a thread."""
    body = {"req_key": "saliency_seg", "binary_data_base64": [b64(picture((160, 128)))], "refine_mask": 1}
    outputs = []
    for processes in (0, 1):
        sim = Simulator(queue_time=0.0, service_times={"saliency_seg": ServiceTime(0.01, 0.0)}, processes=processes)
        api = Api(sim)
        try:
            tid = await api.submit(body)
            deadline = time.monotonic() + 60
            while await api.status("saliency_seg", tid) != "done":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            data = await api.result("saliency_seg", tid)
            outputs.append((data["binary_data_base64"], data["contours_point"], data["bbox"]))
        finally:
            await api.http.aclose()
            sim.close()
    assert outputs[0] == outputs[1] and outputs[0][0]


# ---------------------------------------------------------------------------------------- counters


async def test_counters(api: Api, fake_sim: Simulator) -> None:
    body = {"req_key": "saliency_seg", "binary_data_base64": [b64(picture())]}
    first = await api.submit(body)
    second = await api.submit(body)  # the same body again: a new task, counted as a duplicate
    await api.submit({**body, "only_mask": 1})
    await api.call("submit", {**body, "only_mask": 9})
    assert first != second
    for _ in range(4):
        await api.status("saliency_seg", first)
    await api.call("cancel", {"req_key": "saliency_seg", "task_id": second})
    c = fake_sim.counters
    assert (c.submits, c.accepted, c.duplicates, c.polls, c.cancels) == (4, 3, 1, 4, 1)
    assert dict(c.rejected) == {"50200": 1}
    stats = (await api.http.get("/sim/stats")).json()
    assert stats["counters"]["duplicates"] == 1 and stats["tasks_stored"] == 3


# --------------------------------------------------------------------------- --db survives SIGKILL


def _unfinished_in_db(db: Path, task_ids: list[str]) -> set[str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT task_id FROM tasks WHERE computed_at IS NULL").fetchall()
    finally:
        con.close()
    return {r[0] for r in rows} & set(task_ids)


@pytest.mark.slow
def test_db_tasks_survive_sigkill_and_unfinished_ones_are_recomputed(tmp_path: Path) -> None:
    db, log = tmp_path / "tasks.sqlite", tmp_path / "sim.log"
    extra = ("--queue-time", "0.05", "--service-time", "saliency_seg=5:0", "--service-time", "entity_seg=0.2:0")
    first = SimProcess("--db", str(db), *extra, log=log).start()
    procs = [first]
    try:
        c1 = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=first.url, max_retries=0)
        done_id, _ = c1.submit_task_sync("entity_seg", {"binary_data_base64": [b64(picture())], "max_entity": 3})
        deadline = time.monotonic() + 30
        while (reply := c1.get_result_sync("entity_seg", done_id)).data["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        before = reply.data

        # Four heavy tasks (5 s service time) on a two-worker simulator: killed while they are generating, and
        # at least the last ones cannot have been computed yet.
        heavy = {"binary_data_base64": [b64(grace().resize((2048, 1500)), "JPEG", quality=85)]}
        pending = [c1.submit_task_sync("saliency_seg", heavy)[0] for _ in range(4)]
        assert c1.get_result_sync("saliency_seg", pending[0]).data["status"] in ("in_queue", "generating")
        first.kill()
        unfinished = _unfinished_in_db(db, pending)
        assert unfinished, "every heavy task was computed before the kill; nothing was tested"

        second = SimProcess("--db", str(db), *extra, log=log).start()
        procs.append(second)
        c2 = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=second.url, max_retries=0)
        after = c2.get_result_sync("entity_seg", done_id).data
        assert after["status"] == "done"
        assert after["bbox"] == before["bbox"] and after["binary_data_base64"] == before["binary_data_base64"]
        for tid in pending:  # never lost: recomputed on start-up, then done
            deadline = time.monotonic() + 60
            while (data := c2.get_result_sync("saliency_seg", tid).data)["status"] != "done":
                assert data["status"] in ("in_queue", "generating"), data
                assert time.monotonic() < deadline, f"task {tid} never finished after the restart"
                time.sleep(0.2)
            assert data["ori_width"] == [2048] and data["bbox"]
        assert not _unfinished_in_db(db, pending)
    finally:
        for p in procs:
            p.kill()
