"""The simulator answers bad input with a 4xx in the right envelope, always: deep JSON, pixel bombs, the wrong
method or region, oversized and half-sent bodies, malformed IVA multipart, a bad ``/sim/config``.

Requests are signed with :class:`volcnb.VolcAuth` and sent raw (no client-side checks), in-process through
``httpx.ASGITransport``; the cases about reading a body run over real HTTP (uvicorn) with a raw socket.
"""

from __future__ import annotations

import base64
import io
import json
import resource
import socket
import struct
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

import volcnb
from volcnb.protocol import wire
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimServer, Simulator
from volcnb.sim._inputs import MAX_B64, MAX_JSON_DEPTH, STRICT_B64

CREDS = volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
CV = {"submit": wire.SUBMIT, "get": wire.GET_RESULT, "cancel": wire.CANCEL}


def png(size: tuple[int, int] = (160, 128)) -> bytes:
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    arr[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = (200, 80, 20)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def pixel_bomb(width: int, height: int) -> bytes:
    """A valid PNG header claiming ``width``×``height`` grey pixels, with a few bytes of (zero) image data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
            + chunk(b"IEND", b""))


def deep(levels: int, leaf: Any = 1) -> str:
    """JSON text nested ``levels`` arrays deep."""
    return "[" * levels + json.dumps(leaf) + "]" * levels


GOOD = base64.b64encode(png()).decode()


class Api:
    def __init__(self, sim: Simulator, **auth: Any) -> None:
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app()), base_url="http://sim.local",
                                      auth=volcnb.VolcAuth(CREDS, **auth))

    async def post(self, action: tuple[str, str], content: bytes | None = None, **kw: Any) -> httpx.Response:
        return await self.http.post("/", params={"Action": action[0], "Version": action[1]}, content=content, **kw)

    async def cv(self, action: str, body: bytes | str | dict[str, Any]) -> httpx.Response:
        content = body.encode() if isinstance(body, str) else body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.post(CV[action], content, headers={"Content-Type": "application/json"})


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[Api]:
    a = Api(sim)
    yield a
    await a.http.aclose()


def service_error(r: httpx.Response, code: int) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    reply = r.json()
    assert reply["code"] == code and reply["status"] == code, reply
    assert reply["data"] is None and "ResponseMetadata" not in reply
    return dict(reply)


def gateway_error(r: httpx.Response, code: str, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:300])
    err = r.json()["ResponseMetadata"]["Error"]
    assert err["Code"] == code, err
    assert isinstance(err["Message"], str) and err["Message"]
    return dict(err)


# ------------------------------------------------------------------------------------------- deep JSON


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
async def test_deep_json_in_submit_and_get_result_bodies_is_50204(api: Api, sim: Simulator, levels: int) -> None:
    for action, body in (("submit", '{"req_key": "saliency_seg", "rgb": ' + deep(levels) + "}"),
                         ("get", '{"req_key": "saliency_seg", "task_id": "1", "x": ' + deep(levels) + "}"),
                         ("cancel", deep(levels, {"req_key": "saliency_seg"})),
                         ("submit", "{" * levels)):
        reply = service_error(await api.cv(action, body), 50204)
        assert "levels deep" in reply["message"] or "not valid JSON" in reply["message"]
    assert "50500" not in sim.counters.rejected


async def test_deep_req_json_is_50204_and_the_limit_is_not_lower_than_it_says(api: Api, sim: Simulator) -> None:
    r = await api.cv("get", {"req_key": "saliency_seg", "task_id": "1",
                             "req_json": json.dumps({"logo_info": json.loads(deep(MAX_JSON_DEPTH))})})
    reply = service_error(r, 50204)
    assert "req_json" in reply["message"] and str(MAX_JSON_DEPTH) in reply["message"]
    # at exactly the limit the JSON is parsed, and what is wrong with it is reported instead
    r = await api.cv("submit", {"req_key": "saliency_seg", "binary_data_base64": [GOOD],
                                "rgb": json.loads(deep(MAX_JSON_DEPTH - 1))})
    service_error(r, 50200)
    r = await api.cv("get", {"req_key": "saliency_seg", "task_id": "1", "req_json": deep(50_000)})
    service_error(r, 50204)
    assert "50500" not in sim.counters.rejected


async def test_deep_json_in_the_iva_request_field_is_a_gateway_error(sim: Simulator) -> None:
    api = Api(sim, service="iva")
    request = '{"TaskID": "t", "Image": {"Name": "a", "Source": "url", "Url": "http://127.0.0.1/a.png"}, "X": ' + \
        deep(100_000) + "}"
    r = await api.post(wire.IVA_IMAGE, data={"Request": request})
    err = gateway_error(r, "InvalidParameter", 400)
    assert "Request" in err["Message"] and "deep" in err["Message"]
    await api.http.aclose()


async def test_deep_json_in_sim_config_is_a_400(api: Api) -> None:
    r = await api.http.post("/sim/config", content=('{"faults": ' + deep(100_000) + "}").encode())
    assert r.status_code == 400 and "deep" in r.json()["error"]


# ----------------------------------------------------------------------------------------- pixel bombs


@pytest.mark.parametrize("size", [(30_000, 30_000), (13_300, 13_300), (4097, 200), (200, 127)])
async def test_pixel_bomb_is_refused_from_its_header(api: Api, sim: Simulator, size: tuple[int, int]) -> None:
    bomb = base64.b64encode(pixel_bomb(*size)).decode()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    r = await api.cv("submit", {"req_key": "saliency_seg", "binary_data_base64": [bomb]})
    took = time.perf_counter() - t0
    reply = service_error(r, 50205)
    assert f"{size[0]}×{size[1]}" in reply["message"] and "128–4096" in reply["message"]
    assert took < 1.0, took  # nothing decoded (the 13300² one took 1.8 s and 500 MB when it was)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 50_000  # KiB
    assert sim.counters.accepted == 0


async def test_pixel_bomb_as_an_iva_image_is_checked_from_its_header(sim: Simulator) -> None:
    api = Api(sim, service="iva")
    request = json.dumps({"TaskID": "t", "Image": {"Name": "bomb.png", "Source": "file"}})
    t0 = time.perf_counter()
    r = await api.post(wire.IVA_IMAGE, data={"Request": request},
                       files={"ImageFile": ("bomb.png", pixel_bomb(60_000, 60_000), "image/png")})
    assert time.perf_counter() - t0 < 1.0
    assert r.status_code in (200, 400), r.text  # the IVA document gives no side limit: never a 5xx, never decoded
    assert "ResponseMetadata" in r.json()
    r = await api.post(wire.IVA_IMAGE, data={"Request": request},
                       files={"ImageFile": ("x.png", b"\x89PNG\r\n\x1a\n garbage", "image/png")})
    gateway_error(r, "InvalidParameter", 400)
    await api.http.aclose()


async def test_base64_in_the_mb_mib_band_is_accepted_with_a_note(api: Api, sim: Simulator) -> None:
    """4.7 MB read as 4,700,000 refuses less than 4.7 MiB (4,928,307): in between, accepted with a note."""
    raw = png((160, 128))
    padded = raw + b"\0" * ((STRICT_B64 + 1000) * 3 // 4 - len(raw))  # trailing bytes after IEND: still a PNG
    text = base64.b64encode(padded).decode()
    assert STRICT_B64 < len(text) <= MAX_B64
    r = await api.cv("submit", {"req_key": "saliency_seg", "binary_data_base64": [text]})
    assert r.status_code == 200, r.text
    sim.wait_idle()
    for _ in range(100):
        data = (await api.cv("get", {"req_key": "saliency_seg", "task_id": r.json()["data"]["task_id"]})).json()["data"]
        if data["status"] == "done":
            break
        time.sleep(0.02)
    assert "4,700,000" in json.loads(data["response_data"])["notes"][0]
    over = base64.b64encode(padded + b"\0" * ((MAX_B64 - len(text)) * 3 // 4 + 3)).decode()
    assert len(over) > MAX_B64
    service_error(await api.cv("submit", {"req_key": "saliency_seg", "binary_data_base64": [over]}), 50205)
