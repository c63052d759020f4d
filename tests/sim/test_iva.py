"""The simulator's IVA tasks over real HTTP: uploads from a file, from a URL and a video streamed from disk,
the parts in either order, the 50 MB image limit while reading, per-item analysis, callbacks per TaskID
(retried with backoff while the receiver is down), the accepted-TaskID set, ``/sim/iva/tasks``, ``volcnb sim
--iva-callback/--iva-task-id`` and the ``iva_*`` fields of ``/sim/config``."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import volcnb
from volcnb.protocol import wire
from volcnb.protocol.signing import Credentials, format_xdate, sign
from volcnb.sim import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
    SimProcess,
    SimServer,
    Simulator,
    write_sample_video,
)
from volcnb.sim._server import free_port

CREDS = Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)


def photo(size: tuple[int, int] = (320, 240)) -> bytes:
    """A bright square on a dark ground: a salient subject in the centre."""
    img = Image.new("RGB", size, (20, 30, 40))
    w, h = size
    img.paste((240, 200, 40), (w // 3, h // 3, 2 * w // 3, 2 * h // 3))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def served() -> Iterator[tuple[Simulator, str]]:
    sim = Simulator(seed=3)
    sim.iva.service_time = 0.0
    with SimServer(sim) as server:
        yield sim, server.url
    sim.close()


@pytest.fixture
def files(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server over ``tmp_path`` (the "from URL" uploads); its base URL."""
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


async def test_image_from_file_and_url_and_a_video_from_disk_get_their_callbacks(
        served: tuple[Simulator, str], files: str, tmp_path: Path) -> None:
    sim, url = served
    (tmp_path / "remote.png").write_bytes(photo((200, 100)))
    video = write_sample_video(tmp_path / "clip.mp4", 3 << 20, seconds=7.5, tracks=1)
    client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=url)
    async with volcnb.callbacks.serve() as cb:
        sim.iva.callbacks["task-a"] = cb.url
        local = tmp_path / "local.png"
        local.write_bytes(photo())
        ups = [await client.iva.add_image("task-a", local, display=False),
               await client.iva.add_image("task-a", f"{files}/remote.png", display=False),
               await client.iva.add_video("task-a", video, display=False)]
        results = await asyncio.gather(*(up.wait(timeout=30) for up in ups))
    await client.aclose()
    image, remote, clip = results
    assert (image["Width"], image["Height"], image["Format"]) == (320, 240, "PNG")
    sal = image["Saliency"]
    assert 0.05 < sal["ForegroundShare"] < 0.3 and abs(sal["Centroid"][0] - 0.5) < 0.1, sal
    assert (remote["Width"], remote["Height"]) == (200, 100)
    assert clip == {"Bytes": 3 << 20, "Container": "video/mp4", "Boxes": ["ftyp", "moov", "mdat"],
                    "MajorBrand": "isom", "Tracks": 1, "Timescale": 1000, "DurationSeconds": 7.5}
    assert [u.status for u in ups] == ["done"] * 3 and ups[1].receipt.source == "url"
    assert cb.counts["matched"] == 3 and sim.counters.uploads == 3


def _signed(url: str, action: tuple[str, str], body: bytes, ctype: str) -> httpx.Request:
    req = httpx.Request("POST", url + "/", params={"Action": action[0], "Version": action[1]}, content=body,
                        headers={"Content-Type": ctype})
    req.headers.update(sign(method="POST", path="/", query=req.url.params.multi_items(),
                            headers=req.headers.multi_items(), body=body, credentials=CREDS, region="cn-north-1",
                            service="iva", xdate=format_xdate(time.time())))
    return req


def test_the_file_part_first_as_in_the_documents_go_example(served: tuple[Simulator, str]) -> None:
    sim, url = served
    data = photo()
    request = json.dumps({"TaskID": "t-go", "Image": {"Name": "go.png", "Source": "file"}})
    body, ctype = wire.multipart([("ImageFile", ("go.png", data, "image/png")), ("Request", request)], "goBoundary")
    assert body.index(b"ImageFile") < body.index(b'name="Request"')
    with httpx.Client() as http:
        reply = http.send(_signed(url, wire.IVA_IMAGE, body, ctype))
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["Result"]["ImageID"]) == 36 and sim.counters.uploads == 1


def test_the_50_mb_image_limit_is_enforced_while_reading(served: tuple[Simulator, str]) -> None:
    _sim, url = served
    request = json.dumps({"TaskID": "t", "Image": {"Name": "big.png", "Source": "file"}})
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (50 * 1024 * 1024 - 7)  # 50 MiB + 1: inside the body cap's slack
    body, ctype = wire.multipart([("Request", request), ("ImageFile", ("big.png", big, "image/png"))], "b")
    with httpx.Client(timeout=60) as http:
        reply = http.send(_signed(url, wire.IVA_IMAGE, body, ctype))
        assert reply.status_code == 400 and "limit is 50 MB" in reply.json()["ResponseMetadata"]["Error"]["Message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: refused once the stream passes the cap
            for i in range(0, len(body) + 2 * 1024 * 1024, 1 << 20):
                yield (body + b"\0" * 2 * 1024 * 1024)[i:i + (1 << 20)]

        signed = _signed(url, wire.IVA_IMAGE, body, ctype)
        streamed = httpx.Request("POST", signed.url, content=chunks(),
                                 headers={k: v for k, v in signed.headers.items() if k.lower() != "content-length"})
        reply = http.send(streamed)
    assert reply.status_code == 413, reply.text[:200]
    assert reply.json()["ResponseMetadata"]["Error"]["Code"] == "RequestEntityTooLarge"


async def test_only_configured_task_ids_are_accepted_and_tasks_can_be_created(tmp_path: Path) -> None:
    sim = Simulator(iva_task_ids=["known"])
    sim.iva.service_time = 0.0
    with SimServer(sim) as server:
        client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=server.url)
        await client.iva.add_image("known", photo(), display=False)
        with pytest.raises(volcnb.InvalidArgumentError) as info:
            await client.iva.add_image("stranger", photo(), display=False)
        assert info.value.code == "InvalidParameter.TaskID" and info.value.status_code == 400
        assert "'stranger' does not exist" in info.value.message
        async with httpx.AsyncClient() as http:
            made = (await http.post(server.url + "/sim/iva/tasks", json={"CallbackURL": "http://127.0.0.1:9/x"})).json()
            bad = await http.post(server.url + "/sim/iva/tasks", json={"CallbackURL": "ftp://x"})
        assert made["TaskID"].startswith("iva-") and made["CallbackURL"] == "http://127.0.0.1:9/x"
        await client.iva.add_image(made["TaskID"], photo(), display=False)
        assert bad.status_code == 400 and "CallbackURL" in bad.json()["error"]
        await client.aclose()
    assert sim.counters.uploads == 2
    sim.close()


async def test_callbacks_are_retried_with_backoff_until_the_receiver_is_up(served: tuple[Simulator, str]) -> None:
    sim, url = served
    port = free_port()
    client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=url)
    # The receiver is down: configured through /sim/config as a notebook would, via backend().configure.
    assert volcnb.backend(client).configure(iva_callbacks={"t-later": f"http://127.0.0.1:{port}/callback"})
    up = await client.iva.add_image("t-later", photo(), display=False)
    await asyncio.sleep(1.2)  # attempts at 0, 0.5 s, 1.5 s: two have failed by now
    assert sim.iva.sender.retried >= 2 and sim.iva.sender.sent == 0 and up.status == "uploaded"
    with volcnb.callbacks.Receiver(port=port) as cb:
        result = await up.wait(timeout=10)
        assert result["Width"] == 320 and cb.counts["matched"] == 1
    assert up.callback is not None and up.callback["Attempt"] >= 3
    with pytest.raises(ValueError, match="iva_callbacks.x must be an http"):
        volcnb.backend(client).configure(iva_callbacks={"x": "not a url"})
    await client.aclose()


async def test_volcnb_sim_iva_callback_and_task_id_flags(tmp_path: Path) -> None:
    with volcnb.callbacks.serve(secret=True) as cb:
        with SimProcess("--iva-callback", cb.url, "--iva-task-id", "cli-task", log=tmp_path / "sim.log") as server:
            client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=server.url)
            up = await client.iva.add_video("cli-task", write_sample_video(tmp_path / "v.mp4", 1 << 20),
                                            display=False)
            assert (await up.wait(timeout=30))["Container"] == "video/mp4"
            jpeg = io.BytesIO()
            Image.open(io.BytesIO(photo())).save(jpeg, "JPEG")  # a fresh process knows every Pillow format
            assert (await (await client.iva.add_image("cli-task", jpeg.getvalue(), display=False)))["Format"] == "JPEG"
            with pytest.raises(volcnb.InvalidArgumentError, match="does not exist"):
                await client.iva.add_video("other-task", tmp_path / "v.mp4", display=False)
            await client.aclose()
        assert cb.counts == {"matched": 2}
        log = (tmp_path / "sim.log").read_text()
        assert cb.url.split("token=")[1] not in log and "Traceback" not in log


_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                      | st.text(max_size=12)
                      | st.sampled_from(["http://127.0.0.1:9/cb", "https://x", "ftp://x", ""]),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=3), max_leaves=8)
_iva_doc = st.dictionaries(st.sampled_from(["iva_callback", "iva_callbacks", "iva_task_ids", "iva_service_time",
                                            "TaskID", "CallbackURL", "other"]), _value, max_size=4)


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[tuple[Simulator, httpx.Client]]:
    sim = Simulator()
    with SimServer(sim) as server, httpx.Client(base_url=server.url) as http:
        yield sim, http
    sim.close()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_iva_doc, route=st.sampled_from(["/sim/config", "/sim/iva/tasks"]))
def test_a_fuzz_of_iva_configuration_documents_is_answered_never_with_a_5xx(
        fuzz_server: tuple[Simulator, httpx.Client], doc: dict[str, Any], route: str) -> None:
    sim, http = fuzz_server
    before = sim.iva.service_time
    reply = http.post(route, json=doc)
    assert reply.status_code in (200, 400), (reply.status_code, reply.text[:200])
    if route == "/sim/config":  # applied as a whole, and only when valid
        expected = doc["iva_service_time"] if reply.status_code == 200 and "iva_service_time" in doc else before
        assert sim.iva.service_time == expected
    assert http.get("/sim/health").json()["ok"] is True
