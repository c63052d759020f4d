"""``volcnb.callbacks.serve()`` and :class:`volcnb.Upload`: callbacks resolve handles (awaited or blocking),
unknown ids are logged and ignored, malformed bodies get 400, a secret is checked, a fuzz of bodies leaves
the receiver up, and uploads render in the task views."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import volcnb
from volcnb.http.iva import Receipt
from volcnb.tasks.upload import Upload, register


def body(item: str, status: str = "success", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"TaskID": "t", "DataType": "image", "DataID": item, "Name": "a.jpg", "Status": status,
                           "CallbackID": "c", "Attempt": 1, "Time": "2026-01-01T00:00:00Z"}
    out.update({"Result": {"Width": 4}} if status == "success" else {"Error": {"Code": "Bad", "Message": "no"}})
    return {**out, **extra}


def upload(item: str, kind: str = "image") -> Upload:
    up = Upload(Receipt(kind, item, "t", f"{item}.bin", "file", 10, "rid"))  # type: ignore[arg-type]
    register(up)
    return up


@pytest.fixture
def cb() -> Iterator[volcnb.callbacks.Receiver]:
    with volcnb.callbacks.serve() as receiver:
        yield receiver


async def test_callbacks_resolve_awaited_and_blocking_handles(cb: volcnb.callbacks.Receiver) -> None:
    first, second, bad = upload("id-await"), upload("id-block"), upload("id-fail")
    assert cb.url.startswith("http://127.0.0.1:") and cb.running
    async with httpx.AsyncClient() as http:
        waiting = asyncio.ensure_future(first.wait(timeout=5))
        await asyncio.sleep(0.05)
        assert not waiting.done() and first.status == "uploaded"
        for item in ("id-await", "id-block"):
            assert (await http.post(cb.url, json=body(item))).json() == {"ok": True, "outcome": "matched"}
        assert await waiting == {"Width": 4} and first.status == "done"
        again = await http.post(cb.url, json=body("id-await"))  # a retried delivery: settled once
        assert again.json()["outcome"] == "repeated"
        await http.post(cb.url, json=body("id-fail", "failed"))
    assert await asyncio.to_thread(second.result, 5) == {"Width": 4}  # blocking, from a thread without a loop
    with pytest.raises(volcnb.APIError) as info:
        await bad
    assert info.value.code == "Bad" and info.value.task_id == "id-fail" and bad.status == "failed"
    assert cb.counts == {"matched": 3, "repeated": 1}


async def test_an_early_callback_resolves_its_upload_once_registered(cb: volcnb.callbacks.Receiver) -> None:
    async with httpx.AsyncClient() as http:
        assert (await http.post(cb.url, json=body("id-early"))).json()["outcome"] == "unknown"
    assert await upload("id-early").wait(timeout=1) == {"Width": 4}


async def test_without_a_receiver_awaiting_says_what_to_start() -> None:
    up = upload("id-lonely")
    with pytest.raises(volcnb.ValidationError, match="no callback receiver") as info:
        await up
    assert info.value.field == "callbacks"
    with volcnb.callbacks.serve():
        with pytest.raises(volcnb.TaskTimeoutError):
            await up.wait(timeout=0.1)


async def test_unknown_ids_are_logged_and_ignored_malformed_bodies_get_400(
        cb: volcnb.callbacks.Receiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="volcnb")
    async with httpx.AsyncClient() as http:
        unknown = await http.post(cb.url, json=body("nobody-uploaded-this"))
        assert (unknown.status_code, unknown.json()["outcome"]) == (200, "unknown")
        cases = {b"{not json": "not JSON", b"[]": "JSON object", json.dumps(body("x", DataID="")).encode(): "DataID",
                 json.dumps(body("x", Status="maybe")).encode(): "Status",
                 json.dumps(body("x", DataType="audio")).encode(): "DataType",
                 json.dumps({**body("x"), "Result": None}).encode(): "Result",
                 b"[" * 100_000: "not JSON"}
        for raw, field in cases.items():
            reply = await http.post(cb.url, content=raw)
            assert reply.status_code == 400 and field in reply.json()["error"], (raw[:40], reply.text)
        assert (await http.post(cb.url, content=b"x" * (volcnb.callbacks.MAX_BODY + 1))).status_code == 413
        assert (await http.get(cb.url)).status_code == 405
        assert (await http.get(cb.url.replace("/callback", "/health"))).json()["ok"] is True
    assert "a callback for unknown image nobody-uploaded-this (IVA TaskID t) was ignored" in caplog.text
    assert cb.counts["unknown"] == 1 and cb.counts["malformed"] == len(cases)


def test_a_secret_is_checked_on_every_callback_and_never_shown() -> None:
    with volcnb.callbacks.serve(secret=True) as cb:
        kept = upload("s")  # the registry holds handles weakly: a dropped handle is forgotten
        token = cb.url.split("token=")[1]
        bare = cb.url.split("?")[0]
        assert httpx.post(bare, json=body("s")).status_code == 401
        assert httpx.post(bare + "?token=wrong", json=body("s")).status_code == 401
        assert httpx.post(bare, json=body("s"), headers={"X-Volcnb-Token": token}).status_code == 200
        assert httpx.post(cb.url, json=body("s")).json()["outcome"] == "repeated"
        assert token not in repr(cb) and "***" in repr(cb) and cb.counts["refused"] == 2 and kept.done
    assert not cb.running
    for bad in ({"port": -1}, {"port": "80"}, {"secret": ""}, {"path": "callback"}):
        with pytest.raises(volcnb.ValidationError):
            volcnb.callbacks.Receiver(**bad)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                 max_size=4), max_leaves=12)
_fields = st.fixed_dictionaries({}, optional={k: _json for k in ("TaskID", "DataType", "DataID", "Status", "Result",
                                                                  "Error", "Name")})


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[tuple[volcnb.callbacks.Receiver, httpx.Client]]:
    with volcnb.callbacks.serve() as receiver, httpx.Client() as http:
        yield receiver, http


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(max_size=300), _json.map(lambda v: json.dumps(v).encode()),
                     _fields.map(lambda v: json.dumps(v).encode())),
       ctype=st.sampled_from(["application/json", "text/plain", "multipart/form-data; boundary=x", ""]))
def test_a_fuzz_of_callback_bodies_leaves_the_receiver_up(
        fuzzed: tuple[volcnb.callbacks.Receiver, httpx.Client], raw: bytes, ctype: str) -> None:
    cb, http = fuzzed
    reply = http.post(cb.url, content=raw, headers={"Content-Type": ctype} if ctype else {})
    assert reply.status_code in (200, 400), (reply.status_code, raw[:60])
    assert http.get(cb.url.replace("/callback", "/health")).status_code == 200


async def test_uploads_render_in_the_task_views(cb: volcnb.callbacks.Receiver) -> None:
    from volcnb.display.cards import task_html, task_line

    up = upload("id-view")
    view = volcnb.TaskView(up)
    assert "uploaded" in view.chip.value and view.bar.bar_style == "info"
    assert "image_id <code>id-view</code>" in view.ids.value and "waiting for the callback" in view.stats.value
    batch = volcnb.BatchView([up, upload("id-view-2", "video")])
    async with httpx.AsyncClient() as http:
        await http.post(cb.url, json=body("id-view"))
    await up.wait(timeout=2)
    await asyncio.sleep(0.05)  # the views are told on the loop the upload was made on
    assert "done" in view.chip.value and view.bar.bar_style == "success"
    assert "callback received" in task_line(up) and "iva image id-view.bin" in task_line(up)
    assert "1/2 done · 1 uploaded · 1 callback ·" in batch.text(), batch.text()
    assert "iva TaskID <code>t</code>" in task_html(up)


def test_blocking_result_in_a_thread_gets_a_callback_posted_meanwhile(cb: volcnb.callbacks.Receiver) -> None:
    up = upload("id-thread")
    threading.Timer(0.1, lambda: httpx.post(cb.url, json=body("id-thread"))).start()
    assert up.result(timeout=5) == {"Width": 4} and up.done
