"""Task handles: run from a script and from async code, input limits checked before sending, and the
Task API (wait/detach/raise, cancel, fetch without resubmitting, repr, polls and lag)."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

import volcnb
from volcnb import LogoInfo, TaskCancelledError, TaskTimeoutError, ValidationError, VolcnbWarning
from volcnb.sim import Simulator

PORTRAIT = "img2img_anime_accelerated_maintain_id"
GRACE = str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
GRACE_SIZE = (512, 600)


def _noise_png(w: int, h: int, seed: int) -> bytes:
    """Incompressible PNG bytes: w×h×3 bytes of noise, so base64 is about 4/3 of that."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(
        buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("P", (200, 200), 3).save(buf, format="GIF")
    return buf.getvalue()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLC_")}
    env["VOLCNB_QUIET"] = "1"
    return env


# ------------------------------------------------------------------------------- script and async


@pytest.mark.slow
def test_run_from_a_plain_python_script(tmp_path: Path) -> None:
    script = tmp_path / "seg.py"
    script.write_text(textwrap.dedent(f"""
        import volcnb
        sim = volcnb.use_simulator(service_times={{"saliency_seg": 0.3}})
        res = volcnb.run("saliency_seg", {GRACE!r}).result()
        print(res.bbox, len(res.contours), res.mask.shape)
        print(sim.counters.accepted, res.mask.dtype, res.task_id)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=_env(),
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    m = re.fullmatch(r"\((\d+), (\d+), (\d+), (\d+)\) (\d+) \((\d+), (\d+)\)", first)
    assert m, first
    x1, y1, x2, y2, n_contours, mask_h, mask_w = (int(v) for v in m.groups())
    assert 0 <= x1 < x2 <= GRACE_SIZE[0] and 0 <= y1 < y2 <= GRACE_SIZE[1]
    assert n_contours >= 1
    assert (mask_w, mask_h) == GRACE_SIZE
    accepted, dtype, task_id = second.split()
    assert (accepted, dtype) == ("1", "bool") and task_id.isdigit()
    assert "Traceback" not in out.stderr


async def test_run_from_async_code(client: volcnb.Client, sim: Simulator) -> None:
    res = await volcnb.run("saliency_seg", GRACE)
    assert res.mask.shape == (GRACE_SIZE[1], GRACE_SIZE[0]) and res.mask.dtype == bool
    assert res.mask.any() and not res.mask.all()
    x1, y1, x2, y2 = res.bbox
    assert 0 <= x1 < x2 <= GRACE_SIZE[0] and 0 <= y1 < y2 <= GRACE_SIZE[1]
    assert res.contours and all(len(poly) >= 3 for poly in res.contours)
    ys, xs = np.nonzero(res.mask)  # the mask and the bbox describe the same subject
    assert abs(int(xs.min()) - x1) <= 2 and abs(int(ys.min()) - y1) <= 2
    assert res.task_id and sim.counters.accepted == 1


def test_result_blocks_in_sync_code(client: volcnb.Client, sim: Simulator) -> None:
    task = volcnb.submit("saliency_seg", GRACE, only_mask=1)
    assert task.task_id is not None  # no loop running: submitted before submit() returns
    res = task.result(timeout=30)
    assert res.bbox is not None and task.status == "done"
    assert task.result() is res  # cached, no new request
    assert sim.counters.polls == task.polls


# ---------------------------------------------------------------------------------- input limits


@pytest.fixture(scope="module")
def big_pngs() -> dict[str, Any]:
    return {
        "one_too_big": _noise_png(1200, 1100, 1),                          # ~5.0 MB of base64 (> 4.7 MB)
        "two_big": [_noise_png(1000, 1100, 2), _noise_png(1000, 1100, 3)],  # 4.2 MB each, 8.4 MB together
    }


LIMIT_CASES = [
    # id, req_key, image (or key into big_pngs), params, field, limit, text in the message
    ("side < 128", "saliency_seg", Image.new("RGB", (100, 300)), {}, "image[0]", "128–4096", "100×300"),
    ("side > 4096", "saliency_seg", Image.new("RGB", (4097, 200)), {}, "image[0]", "128–4096", "4097×200"),
    ("GIF", "saliency_seg", _gif(), {}, "image[0]", "JPEG/PNG/BMP", "GIF"),
    ("base64 > 4.7 MB", "saliency_seg", "one_too_big", {}, "image[0]", "4.7 MB", "4.7 MB"),
    ("two images > 8 MB", PORTRAIT, "two_big", {"face_image": "uri://binary_data?index=0"}, "image", "8 MB",
     "8 MB"),
    ("portrait width 2000", PORTRAIT, GRACE, {"face_image": "uri://binary_data?index=0", "width": 2000}, "width",
     "600–1500", "width=2000"),
    ("portrait height 599", PORTRAIT, GRACE, {"face_image": "uri://binary_data?index=0", "height": 599}, "height",
     "600–1500", "height=599"),
    ("face_image index out of range", PORTRAIT, GRACE, {"face_image": "uri://binary_data?index=1",
                                                        "face_switch": True}, "face_image", "index < 1", "index 1"),
    ("switch without face_image", PORTRAIT, GRACE, {"face_switch": True}, "face_image", "face_image", "face_switch"),
    ("typo in a parameter", "saliency_seg", GRACE, {"only_msk": 1}, "only_msk", "documented",
     "did you mean 'only_mask'"),
]


@pytest.mark.parametrize(("req_key", "image", "params", "field", "limit", "text"),
                         [pytest.param(*c[1:], id=c[0]) for c in LIMIT_CASES])
def test_documented_limits_fail_before_sending(client: volcnb.Client, sim: Simulator, big_pngs: dict[str, Any],
                                               req_key: str, image: Any, params: dict[str, Any], field: str,
                                               limit: str, text: str) -> None:
    if isinstance(image, str) and image in big_pngs:
        image = big_pngs[image]
    with pytest.raises(ValidationError) as info:
        volcnb.submit(req_key, image, **params)
    err = info.value
    assert err.field == field
    assert err.limit is not None and limit in err.limit
    assert field in str(err) and text in str(err)
    assert isinstance(err, ValueError)
    assert sim.counters.submits == 0  # nothing was sent


async def test_limits_fail_before_sending_inside_a_loop_too(client: volcnb.Client, sim: Simulator) -> None:
    with pytest.raises(ValidationError, match="600–1500"):
        volcnb.submit(PORTRAIT, GRACE, face_image="uri://binary_data?index=0", width=5000)
    await asyncio.sleep(0.05)
    assert sim.counters.submits == 0


def test_unknown_req_key_warns_but_still_sends(client: volcnb.Client, sim: Simulator) -> None:
    with pytest.warns(VolcnbWarning, match="did you mean 'saliency_seg'"), \
            pytest.raises(volcnb.InvalidArgumentError) as info:
        volcnb.submit("saliency_segg", GRACE)
    assert sim.counters.submits == 1  # sent: the service, not volcnb, has the last word on req_keys
    assert info.value.code == 50200 and "saliency_segg" in str(info.value)


def test_portrait_document_contradiction_warns_and_is_sent(client: volcnb.Client, sim: Simulator) -> None:
    style = Image.new("RGB", (300, 300), (20, 120, 200))
    with pytest.warns(VolcnbWarning, match="hyper_switch"):
        task = volcnb.submit(PORTRAIT, [GRACE, style], positive_prompt="1girl,beautiful,looking at viewer,portrait,",
                             hyper_switch=True, seed=-1, step=18, cfg=4.5, face_image="uri://binary_data?index=0",
                             style_image="uri://binary_data?index=1", face_switch=True, facestyle_switch=True,
                             width=1000, height=1000)
    assert sim.counters.accepted == 1
    res = task.result(timeout=60)
    assert res.images[0].size == (1000, 1000)
    assert "hyper_switch" in str(res.response_data)


# -------------------------------------------------------------------------------------- task API


async def test_wait_detach_returns_none_and_the_task_can_be_awaited_later(client: volcnb.Client,
                                                                          sim: Simulator) -> None:
    sim.set_service_time("saliency_seg", 0.8, 0.0)
    task = volcnb.submit("saliency_seg", GRACE)
    assert await task.wait(0.1, on_timeout="detach") is None
    assert not task.done and task.status in ("submitting", "in_queue", "generating")
    res = await task
    assert task.status == "done" and res.bbox is not None
    assert await task.wait(0.01) is res
    assert sim.counters.accepted == 1


async def test_wait_raise_gives_task_timeout_error_with_task_id(client: volcnb.Client, sim: Simulator) -> None:
    sim.set_service_time("saliency_seg", 0.8, 0.0)
    task = volcnb.submit("saliency_seg", GRACE)
    with pytest.raises(TaskTimeoutError) as info:
        await task.wait(0.2, on_timeout="raise")
    err = info.value
    assert err.task_id is not None and err.task_id == task.task_id
    assert isinstance(err, TimeoutError) and "Task.attach" in str(err)
    res = await task.wait(30)  # the task kept running on the server
    assert res is not None and res.task_id == err.task_id
    assert sim.counters.accepted == 1


async def test_cancel_sends_cancel_task_and_the_waiter_raises(client: volcnb.Client, sim: Simulator) -> None:
    sim.set_service_time("saliency_seg", 30.0, 0.0)
    task = volcnb.submit("saliency_seg", GRACE)
    task_id = await task.submitted()
    waiter = asyncio.ensure_future(task.wait())
    await asyncio.sleep(0.15)
    assert not waiter.done()
    await task.cancel()
    with pytest.raises(TaskCancelledError) as info:
        await waiter
    assert info.value.task_id == task_id
    assert sim.counters.cancels == 1 and task.status == "cancelled"
    reply = await client.get_result("saliency_seg", task_id)
    assert reply.data["status"] == "not_found"  # the server forgot it too
    with pytest.raises(TaskCancelledError):
        await task
    await task.cancel()  # idempotent: nothing more is sent
    assert sim.counters.cancels == 1
    assert "status=cancelled" in repr(task)


async def test_fetch_requeries_the_same_task_without_resubmitting(client: volcnb.Client, sim: Simulator) -> None:
    task = volcnb.submit("saliency_seg", GRACE, only_mask=2, rgb=[255, 255, 255])
    res = await task
    accepted, submits, polls = sim.counters.accepted, sim.counters.submits, sim.counters.polls
    marked = await task.fetch(logo_info=LogoInfo(position=2, language=1, opacity=1.0), return_url=True)
    assert (sim.counters.accepted, sim.counters.submits) == (accepted, submits)
    assert sim.counters.polls == polls + 1
    assert marked.task_id == res.task_id
    assert marked.data["binary_data_base64"] == [""] and "/sim/files/" in marked.data["image_urls"][0]
    before = np.asarray(res.images[0].convert("RGB"), np.int16)
    after = np.asarray(marked.images[0].convert("RGB"), np.int16)
    assert before.shape == after.shape
    diff = np.abs(after - before).max(axis=2) > 0
    h, w = diff.shape
    assert diff[: h // 3, : w // 2].sum() > 100     # top-left (position 2) is marked
    assert diff[h // 2:, :].sum() == 0              # the rest untouched
    again = await task.fetch()
    assert np.array_equal(np.asarray(again.images[0].convert("RGB"), np.int16), before)


async def test_repr_polls_and_lag(client: volcnb.Client, sim: Simulator) -> None:
    sim.set_service_time("saliency_seg", 0.3, 0.0)
    task = volcnb.submit("saliency_seg", GRACE)
    text = repr(task)
    assert text.startswith("<volcnb.Task saliency_seg") and "status=" in text and "<div" not in text
    await task
    text = repr(task)
    assert f"task_id={task.task_id}" in text and "status=done" in text and f"polls={task.polls}" in text
    assert "\n" not in text
    assert task.polls >= 1 and task.polls == sim.counters.polls
    lag = sim.lag(task.task_id, task.finished_at)
    assert lag is not None and lag >= 0
    assert lag < 1.0  # the fixture's poller caps its pause at 0.2 s
    assert [s for _, s in task.history][-1] == "done" and task.finished_at is not None


async def test_two_waiters_share_one_poller(client: volcnb.Client, sim: Simulator) -> None:
    sim.set_service_time("saliency_seg", 0.4, 0.0)
    task = volcnb.submit("saliency_seg", GRACE)
    a, b = await asyncio.gather(task.wait(), task.wait())
    assert a is b
    assert sim.counters.polls == task.polls


def test_warnings_are_not_raised_for_a_clean_request(client: volcnb.Client, sim: Simulator) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        task = volcnb.submit("saliency_seg", GRACE, only_mask=1, refine_mask=1)
    assert task.task_id is not None
