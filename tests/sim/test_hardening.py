"""The simulator answers bad input with a 4xx in the right envelope, always: deep JSON, pixel bombs, the wrong
method or region, oversized and half-sent bodies, malformed IVA multipart, a bad ``/sim/config``.

Requests are signed with :class:`volcnb.VolcAuth` and sent raw (no client-side checks), in-process through
``httpx.ASGITransport``; the cases about reading a body run over real HTTP (uvicorn) with a raw socket.
"""

from __future__ import annotations

import asyncio
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
from volcnb.sim._app import ACTIONS
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
        await asyncio.sleep(0.02)
    assert "4,700,000" in json.loads(data["response_data"])["notes"][0]
    over = base64.b64encode(padded + b"\0" * ((MAX_B64 - len(text)) * 3 // 4 + 3)).decode()
    assert len(over) > MAX_B64
    service_error(await api.cv("submit", {"req_key": "saliency_seg", "binary_data_base64": [over]}), 50205)


# ------------------------------------------------------------------------------ method, region, bodies


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_only_post_reaches_an_action(api: Api, sim: Simulator, method: str) -> None:
    body = json.dumps({"req_key": "saliency_seg", "binary_data_base64": [GOOD]}).encode()
    r = await api.http.request(method, "/", params={"Action": wire.SUBMIT[0], "Version": wire.SUBMIT[1]},
                               content=body, headers={"Content-Type": "application/json"})
    err = gateway_error(r, "InvalidHttpMethod", 405)
    assert method in err["Message"] and "POST" in err["Message"]
    assert sim.counters.submits == 0 and sim.counters.accepted == 0  # a signed GET no longer creates a task


async def test_the_region_in_the_signature_scope_is_checked(sim: Simulator) -> None:
    api = Api(sim, region="cn-beijing")  # Client(region="cn-beijing") would fail against the real service
    r = await api.cv("get", {"req_key": "saliency_seg", "task_id": "1"})
    err = gateway_error(r, "SignatureDoesNotMatch", 401)
    assert "cn-beijing" in err["Message"] and "cn-north-1" in err["Message"]
    await api.http.aclose()
    assert sim.counters.polls == 0


class CountingBody:
    """A request body that counts how much of it the server pulled."""

    def __init__(self, size: int, chunk: int = 1024 * 1024) -> None:
        self.size, self.chunk, self.sent = size, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.size:
            self.sent += self.chunk
            yield b"x" * self.chunk


async def test_oversized_unsigned_body_is_refused_before_it_is_read(sim: Simulator) -> None:
    body = CountingBody(60 * 1024 * 1024)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app()), base_url="http://sim.local") as http:
        r = await http.post("/", params={"Action": wire.SUBMIT[0], "Version": wire.SUBMIT[1]}, content=body)
    gateway_error(r, "MissingAuthenticationToken", 401)
    assert body.sent <= 1024 * 1024, body.sent  # the 401 came from the headers alone


@pytest.mark.parametrize(("action", "service", "size", "code", "status"), [
    (wire.SUBMIT, "cv", 40 * 1024 * 1024, 50213, 413),
    (wire.IVA_IMAGE, "iva", 80 * 1024 * 1024, "RequestEntityTooLarge", 413),
])
async def test_signed_body_over_the_action_cap_is_refused_while_read(sim: Simulator, action: tuple[str, str],
                                                                     service: str, size: int, code: Any,
                                                                     status: int) -> None:
    api = Api(sim, service=service)
    # a streamed body: signed over its hash, but no Content-Length, so only the cap while reading stops it
    content = b"x" * size
    req = api.http.build_request("POST", "/", params={"Action": action[0], "Version": action[1]}, content=content)
    req = next(volcnb.VolcAuth(CREDS, service=service).auth_flow(req))
    body = CountingBody(size)
    streamed = httpx.Request("POST", req.url, headers={k: v for k, v in req.headers.items() if k != "content-length"},
                             content=body)
    r = await api.http.send(streamed, auth=None)
    if isinstance(code, int):
        service_error(r, code)
    else:
        gateway_error(r, code, status)
    cap = ACTIONS[action[0]].cap(sim)
    assert cap < body.sent <= cap + body.chunk, (cap, body.sent)  # stopped at the cap, not at the end
    await api.http.aclose()


def _signed_headers(url: str, action: tuple[str, str], body: bytes, service: str = "cv") -> bytes:
    req = httpx.Request("POST", url, params={"Action": action[0], "Version": action[1]}, content=body,
                        headers={"Content-Type": "application/json"})
    req = next(volcnb.VolcAuth(CREDS, service=service).auth_flow(req))
    lines = [f"POST {req.url.raw_path.decode()} HTTP/1.1", *(f"{k}: {v}" for k, v in req.headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _exchange(port: int, head: bytes, body: bytes, timeout: float = 5.0) -> tuple[int, bytes, float]:
    """Send ``head`` and part of a body on a raw socket; ``(status, reply body, seconds until the reply)``."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        t0 = time.monotonic()
        s.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(
                next((ln.split(b":")[1] for ln in data.split(b"\r\n") if ln.lower().startswith(b"content-length")),
                     b"0")):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        took = time.monotonic() - t0
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1], took


@pytest.fixture
def served() -> Iterator[SimServer]:
    s = Simulator(service_times={k: 0.1 for k in volcnb.CAPABILITIES}, queue_time=0.0, body_timeout=0.5)
    with SimServer(s) as server:
        yield server
    s.close()


def test_over_http_a_60_mb_unsigned_body_is_answered_after_its_headers(served: SimServer) -> None:
    head = (f"POST /?Action={wire.SUBMIT[0]}&Version={wire.SUBMIT[1]} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {60 * 1024 * 1024}\r\n\r\n").encode()
    status, body, took = _exchange(served.port, head, b"{" * 1000)
    assert status == 401 and json.loads(body)["ResponseMetadata"]["Error"]["Code"] == "MissingAuthenticationToken"
    assert took < 2.0  # the other 59.99 MB were never sent


def test_over_http_a_half_sent_body_times_out_with_408(served: SimServer) -> None:
    full = json.dumps({"req_key": "saliency_seg", "binary_data_base64": [GOOD]}).encode()
    head = _signed_headers(served.url + "/", wire.SUBMIT, full)
    status, body, took = _exchange(served.port, head, full[: len(full) // 2])
    assert status == 408, body
    assert json.loads(body)["ResponseMetadata"]["Error"]["Code"] == "RequestTimeout"
    assert 0.4 < took < 3.0
    assert served.sim.counters.accepted == 0
    assert httpx.get(served.url + "/sim/health").json()["ok"]  # and the server is still up


# --------------------------------------------------------------------------------------------- IVA


def _iva_request(**image: Any) -> str:
    return json.dumps({"TaskID": "task-1", "Image": {"Name": "a.png", "Source": "file", **image}})


@pytest.mark.parametrize(("content_type", "body"), [
    ("multipart/form-data; boundary=right", b"--wrong\r\nContent-Disposition: form-data; name=\"Request\"\r\n\r\n{}"
                                            b"\r\n--wrong--\r\n"),
    ("multipart/form-data", b"--b\r\nContent-Disposition: form-data; name=\"Request\"\r\n\r\n{}\r\n--b--\r\n"),
    ("multipart/form-data; boundary=b", b"".join(b"--b\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nv\r\n" % i
                                                 for i in range(1200)) + b"--b--\r\n"),
    ("multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; name=\"Request\"\r\n\r\n"
                                        + b"x" * (2 * 1024 * 1024) + b"\r\n--b--\r\n"),
    ("multipart/form-data; boundary=b", b"\xff\xfe garbage"),
    ("application/json", b'{"Request": "{}"}'),
])
async def test_bad_multipart_is_a_gateway_error_never_a_500(sim: Simulator, content_type: str, body: bytes) -> None:
    api = Api(sim, service="iva")
    r = await api.post(wire.IVA_IMAGE, body, headers={"Content-Type": content_type})
    assert 400 <= r.status_code < 500, r.text
    err = r.json()["ResponseMetadata"]["Error"]
    assert err["Code"] in ("InvalidParameter", "MissingParameter"), err
    assert "code" not in r.json()
    assert sim.counters.uploads == 0 and "InternalError" not in sim.counters.rejected
    await api.http.aclose()


async def test_iva_faults_and_refusals_answer_in_response_metadata(sim: Simulator) -> None:
    api = Api(sim, service="iva")
    sim.faults.plan(wire.IVA_IMAGE[0], "code_50500")
    files = {"ImageFile": ("a.png", png(), "image/png")}
    r = await api.post(wire.IVA_IMAGE, data={"Request": _iva_request()}, files=files)
    gateway_error(r, "InternalError", 500)  # a fault that was asked for, in the OpenAPI envelope
    r = await api.post(wire.IVA_IMAGE, data={"Request": _iva_request()}, files=files)
    assert r.status_code == 200 and r.json()["Result"]["ImageID"]
    assert len(r.json()["ResponseMetadata"]["RequestId"]) == 34
    await api.http.aclose()


# --------------------------------------------------------------------------------------- /sim/config


@pytest.mark.parametrize(("conf", "field"), [
    ({"faults": {"http_500": "often"}}, "faults.http_500"),
    ({"faults": {"drop": 1.5}}, "faults.drop"),
    ({"faults": {"http_500": True}}, "faults.http_500"),
    ({"faults": {"actions": "CVSync2AsyncGetResult"}}, "faults.actions"),
    ({"faults": {"explode": 0.1}}, "faults.explode"),
    ({"faults": [0.1]}, "faults"),
    ([{"faults": {}}], "configuration"),
    ({"quotas": {"submit_qps": -1}}, "quotas.submit_qps"),
    ({"quotas": {"max_unfinished": 1.5}}, "quotas.max_unfinished"),
    ({"quotas": {"submit_qps": "20"}}, "quotas.submit_qps"),
    ({"quotas": {"burst": 3}}, "quotas.burst"),
    ({"service_times": {"saliency_seg": -2}}, "service_times.saliency_seg"),
    ({"service_times": {"saliency_seg": [1, 2, 3]}}, "service_times.saliency_seg"),
    ({"service_times": {"saliency_seg": [1, "x"]}}, "service_times.saliency_seg[1]"),
    ({"queue_time": -0.1}, "queue_time"),
    ({"queue_time": "soon"}, "queue_time"),
    ({"plan": {"CVSync2AsyncGetResult": "http_500"}}, "plan.CVSync2AsyncGetResult"),
    ({"plan": {"CVSync2AsyncGetResult": ["boom"]}}, "plan.CVSync2AsyncGetResult"),
    ({"max_video_bytes": 0}, "max_video_bytes"),
    ({"fautls": {}}, "fautls"),
])
async def test_sim_config_is_validated_like_the_api(api: Api, sim: Simulator, conf: Any, field: str) -> None:
    before = (sim.faults, sim.quotas.submit_qps, sim.queue_time, sim.service_times["saliency_seg"])
    r = await api.http.post("/sim/config", json=conf)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"], r.json()
    assert (sim.faults, sim.quotas.submit_qps, sim.queue_time, sim.service_times["saliency_seg"]) == before
    r = await api.cv("submit", {"req_key": "saliency_seg", "binary_data_base64": [GOOD]})
    assert r.status_code == 200, r.text  # nothing half-applied: the simulator still works


async def test_sim_config_good_documents_still_apply(api: Api, sim: Simulator) -> None:
    r = await api.http.post("/sim/config", json={
        "faults": {"http_500": 0.0, "slow_seconds": 0.5, "actions": ["CVSync2AsyncGetResult"]},
        "plan": {"CVSync2AsyncGetResult": ["ok", "http_500"]}, "service_times": {"saliency_seg": 3, "entity_seg": [2, 0]},
        "queue_time": 0, "quotas": {"submit_qps": 50, "max_unfinished": 10}, "max_video_bytes": 1000})
    assert r.json() == {"ok": True}
    assert sim.faults.actions == frozenset({"CVSync2AsyncGetResult"}) and sim.faults.slow_seconds == 0.5
    assert list(sim.faults.script["CVSync2AsyncGetResult"]) == ["ok", "http_500"]
    assert sim.service_times["saliency_seg"].median == 3 and sim.service_times["entity_seg"].sigma == 0
    assert (sim.quotas.submit_qps, sim.quotas.max_unfinished, sim.max_video_bytes) == (50, 10, 1000)


# ------------------------------------------------------------------------------------------ fidelity


async def test_request_id_and_time_elapsed_in_the_documented_form(api: Api) -> None:
    import re

    ok = (await api.cv("submit", {"req_key": "saliency_seg", "binary_data_base64": [GOOD]})).json()
    bad = (await api.cv("submit", {"req_key": "saliency_seg", "binary_data_base64": [GOOD], "only_mask": 9})).json()
    for reply in (ok, bad):
        # 34 characters, as in every example of the 同步转异步 and 人像保持 documents: 14 digits, 20 hex
        assert re.fullmatch(r"\d{14}[0-9A-F]{20}", reply["request_id"]), reply["request_id"]
        assert re.fullmatch(r"\d+\.\d{6}ms", reply["time_elapsed"]), reply["time_elapsed"]
    assert bad["time_elapsed"] != "0.1ms"
    gw = (await api.http.post("/", params={"Action": "CVProcess", "Version": "1"})).json()
    assert re.fullmatch(r"\d{14}[0-9A-F]{20}", gw["ResponseMetadata"]["RequestId"])
