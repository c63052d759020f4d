"""Property-based fuzzing of the simulator's other doors: request headers, the IVA uploads' multipart
parts, and ``/sim/config``. Whatever arrives, the answer is a 4xx (or a success) in the right envelope,
never a 5xx, and the server keeps answering. Bounded to a few seconds each."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import volcnb
from volcnb.protocol import wire
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Quotas, Simulator

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BODY = json.dumps({"req_key": "saliency_seg", "task_id": "7000000000000000001"}).encode()


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (160, 128), (20, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()
header_values = st.text(max_size=40) | st.sampled_from(
    ["", "application/json", "multipart/form-data", "text/plain; charset=utf-8", "20261203T000000Z",
     "HMAC-SHA256 Credential=AKSIMvolcnbLOCAL/20261203/cn-north-1/cv/request, SignedHeaders=host;x-date, "
     "Signature=00", "HMAC-SHA256", "0" * 64, "cn-north-1", "iva"])
header_names = st.sampled_from(["Content-Type", "X-Date", "Authorization", "X-Content-Sha256", "X-Security-Token",
                                "Region", "Service", "Content-Encoding", "X-Anything"])


class Harness:
    def __init__(self) -> None:
        self.sim = Simulator(queue_time=0.0, workers=1, service_times={k: 0.0 for k in volcnb.CAPABILITIES},
                             quotas=Quotas(submit_qps=1e9, max_unfinished=10**9, get_result_qps=1e9))
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=self.sim.app())
        self.raw = httpx.AsyncClient(transport=transport, base_url="http://sim.local")
        self.signed = httpx.AsyncClient(transport=transport, base_url="http://sim.local",
                                        auth=volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY,
                                                                                DEFAULT_SECRET_KEY)))
        self.iva = httpx.AsyncClient(transport=transport, base_url="http://sim.local",
                                     auth=volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY),
                                                          service=wire.IVA_SERVICE))

    def run(self, coro: Any) -> httpx.Response:
        r: httpx.Response = self.loop.run_until_complete(coro)
        assert r.status_code < 500, (r.status_code, r.text[:300])
        return r

    def close(self) -> None:
        for c in (self.raw, self.signed, self.iva):
            self.loop.run_until_complete(c.aclose())
        self.loop.close()
        self.sim.close()


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


def test_fuzz_headers(harness: Harness) -> None:
    """Unsigned requests with arbitrary headers, and signed ones with extra or replaced headers."""
    name, version = wire.GET_RESULT

    @FUZZ
    @given(headers=st.dictionaries(header_names, header_values, max_size=5), signed=st.booleans())
    def prop(headers: dict[str, str], signed: bool) -> None:
        client = harness.signed if signed else harness.raw
        try:
            request = client.build_request("POST", "/", params={"Action": name, "Version": version}, content=BODY,
                                           headers=headers)
        except (UnicodeEncodeError, ValueError):
            return  # httpx itself refuses such a header: it never reaches a server
        r = harness.run(client.send(request))
        reply = r.json()
        if r.status_code != 200:
            assert "ResponseMetadata" in reply or reply["code"] != 10000

    prop()
    assert harness.run(harness.raw.get("/sim/health")).json()["ok"] is True


def test_fuzz_iva_multipart_parts(harness: Harness) -> None:
    """Uploads with arbitrary ``Request`` text, file bytes, part order and extra parts: errors always in
    ``ResponseMetadata.Error``."""
    name, version = wire.IVA_IMAGE
    requests = st.one_of(
        st.text(max_size=60),
        st.builds(lambda tid, nm, src: json.dumps({"TaskID": tid, "Image": {"Name": nm, "Source": src}}),
                  st.text(max_size=10) | st.integers(), st.text(max_size=10), st.sampled_from(["file", "url", "x"])),
        st.just(json.dumps({"TaskID": "t-1", "Image": {"Name": "a.png", "Source": "file"}})),
        st.just("[" * 5000 + "]" * 5000),
    )

    @settings(FUZZ, max_examples=120)
    @given(request=requests, data=st.binary(max_size=64) | st.just(PNG), file_first=st.booleans(),
           extra=st.booleans())
    def prop(request: str, data: bytes, file_first: bool, extra: bool) -> None:
        parts: list[tuple[str, Any]] = [("Request", (None, request)), ("ImageFile", ("a.png", data, "image/png"))]
        if file_first:
            parts.reverse()
        if extra:
            parts.append(("Unexpected", (None, "x" * 10)))
        r = harness.run(harness.iva.post("/", params={"Action": name, "Version": version}, files=parts))
        reply = r.json()
        if r.status_code == 200:
            assert reply["Result"]["ImageID"]
        else:
            assert reply["ResponseMetadata"]["Error"]["Code"], reply

    prop()


def test_fuzz_sim_config(harness: Harness) -> None:
    json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                               lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12),
                                                                                           inner, max_size=3),
                               max_leaves=10)
    bodies = st.one_of(
        json_values.map(json.dumps),
        st.dictionaries(st.sampled_from(["quotas", "faults", "service_times", "queue_time", "ttl"]), json_values,
                        max_size=3).map(json.dumps),
        st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
    )

    @settings(FUZZ, max_examples=150)
    @given(body=bodies)
    def prop(body: str) -> None:
        r = harness.run(harness.raw.post("/sim/config", content=body.encode("utf-8", "surrogatepass")))
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            assert isinstance(r.json()["error"], str)
        harness.sim.quotas = Quotas(submit_qps=1e9, max_unfinished=10**9, get_result_qps=1e9)

    prop()
    assert harness.run(harness.raw.get("/sim/health")).json()["ok"] is True
