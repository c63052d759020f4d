"""The simulator answers hostile input with a 4xx in the right envelope, never a 5xx: deep JSON in every
place JSON is read, pixel bombs refused from the header, the API actions POST only, ``/sim/config``."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest

import volcnb
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Simulator

SUBMIT = {"Action": "CVSync2AsyncSubmitTask", "Version": "2022-08-31"}
GET = {"Action": "CVSync2AsyncGetResult", "Version": "2022-08-31"}
DEEP = "[" * 100_000 + "]" * 100_000
JSON = {"Content-Type": "application/json"}


def png_header(w: int, h: int) -> bytes:
    """A PNG that claims ``w``×``h`` pixels over a few bytes of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    sim = Simulator(queue_time=0.0)
    auth = volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app()), base_url="http://sim",
                                 auth=auth) as client:
        yield client
    sim.close()


@pytest.mark.parametrize(("params", "body", "code"), [
    (SUBMIT, DEEP, 50204),
    (SUBMIT, json.dumps({"req_key": "saliency_seg", "x": json.loads("[" * 40 + "]" * 40)}), 50204),
    (GET, json.dumps({"req_key": "saliency_seg", "task_id": "1", "req_json": DEEP}), 50204),
    (GET, json.dumps({"req_key": "saliency_seg", "task_id": "1", "req_json": "[" * 40 + "]" * 40}), 50204),
], ids=["submit body", "submit 40 deep", "req_json", "req_json 40 deep"])
async def test_deep_json_is_a_parse_error(http: httpx.AsyncClient, params: dict[str, str], body: str,
                                          code: int) -> None:
    r = await http.post("/", params=params, content=body.encode(), headers=JSON)
    assert r.status_code == 400 and r.json()["code"] == code, r.text
    assert "nested deeper" in r.json()["message"] or "not valid JSON" in r.json()["message"]


@pytest.mark.parametrize(("size", "code"), [((30_000, 30_000), 50205), ((12_000, 7_000), 50205)],
                         ids=["past Pillow's bomb limit", "under it, still over 4096"])
async def test_pixel_bombs_are_refused_from_the_header(http: httpx.AsyncClient, size: tuple[int, int],
                                                       code: int) -> None:
    body = {"req_key": "saliency_seg", "binary_data_base64": [base64.b64encode(png_header(*size)).decode()]}
    r = await http.post("/", params=SUBMIT, content=json.dumps(body).encode(), headers=JSON)
    assert r.status_code == 400 and r.json()["code"] == code and "Image Size Limited" in r.json()["message"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_the_actions_are_post_only(http: httpx.AsyncClient, method: str) -> None:
    r = await http.request(method, "/", params=SUBMIT)
    assert r.status_code == 405
    assert r.json()["ResponseMetadata"]["Error"]["Code"] == "InvalidHttpMethod"


async def test_sim_config_is_validated(http: httpx.AsyncClient) -> None:
    for body in (b"[" * 100_000, json.dumps({"quotas": {"submit_qps": "fast"}}).encode(), b"not json"):
        r = await http.post("/sim/config", content=body)
        assert r.status_code == 400 and "error" in r.json(), r.text
    r = await http.post("/sim/config", json={"quotas": {"submit_qps": 5}})
    assert r.status_code == 200


async def test_wrong_region_is_refused_and_request_ids_have_the_documented_shape() -> None:
    sim = Simulator(queue_time=0.0)
    good = volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY))
    bad = volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY), region="cn-shanghai")
    body = json.dumps({"req_key": "saliency_seg", "task_id": "1"}).encode()
    for auth, status in ((bad, 401), (good, 200)):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app()), base_url="http://sim",
                                     auth=auth) as client:
            r = await client.post("/", params=GET, content=body, headers=JSON)
        assert r.status_code == status, r.text
        if status == 401:
            assert "region" in r.json()["ResponseMetadata"]["Error"]["Message"]
        else:
            rid = r.json()["request_id"]
            assert len(rid) == 34 and rid[:14].isdigit() and all(c in "0123456789ABCDEF" for c in rid[14:])
    sim.close()


async def test_an_oversized_unsigned_body_is_refused_before_it_is_read() -> None:
    """An unsigned request is refused from its headers, whatever its size, without the body being read; a
    signed one over the 20 MB cap is refused while it streams in."""
    sim = Simulator(queue_time=0.0)
    read = [0]

    async def huge() -> AsyncIterator[bytes]:
        for _ in range(30):
            read[0] += 1
            yield b" " * (1024 * 1024)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app()), base_url="http://sim") as raw:
        r = await raw.post("/", params=SUBMIT, content=huge(), headers=JSON)
    assert r.status_code == 401 and r.json()["ResponseMetadata"]["Error"]["Code"] == "MissingAuthenticationToken"
    auth = volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY))
    big = b'{"req_key": "saliency_seg", "x": "' + b"a" * (21 * 1024 * 1024) + b'"}'
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app()), base_url="http://sim",
                                 auth=auth) as signed:
        r = await signed.post("/", params=SUBMIT, content=big, headers=JSON)
    assert r.status_code == 400 and r.json()["code"] == 50213, r.text[:200]
    assert sim.counters.accepted == 0
    sim.close()


async def test_bad_multipart_uploads_get_gateway_errors(http: httpx.AsyncClient) -> None:
    name, version = "AddAsyncTaskImageData", "2022-05-13"
    iva = volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY), service="iva")
    cases = [
        ({"Content-Type": "multipart/form-data; boundary=x"}, b"--x\r\nnot a part\r\n--x--"),  # a torn part
        ({"Content-Type": "multipart/form-data"}, b"no boundary at all"),
        ({"Content-Type": "multipart/form-data; boundary=x"},
         b'--x\r\nContent-Disposition: form-data; name="Request"\r\n\r\n{"TaskID": ""}\r\n--x--\r\n'),
        ({"Content-Type": "application/json"}, b'{"TaskID": "t"}'),
    ]
    for headers, body in cases:
        r = await http.post("/", params={"Action": name, "Version": version}, content=body, headers=headers,
                            auth=iva)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text[:200])
        assert r.json()["ResponseMetadata"]["Error"]["Code"], r.text
