"""Property-based fuzzing of the simulator's CV actions: whatever a signed client sends, the answer is a
well-formed envelope and never an HTTP 500.

Bodies are arbitrary JSON values, raw bytes, and valid requests with fields replaced, removed or added.
Every request is signed (raw httpx + :class:`volcnb.VolcAuth`, so the simulator's validation is what gets
exercised, not the signature check); one property also goes through :meth:`volcnb.Client.send`.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

import volcnb
from volcnb.protocol import wire as _wire
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Quotas, Simulator

T = TypeVar("T")
ACTIONS = {"submit": _wire.SUBMIT, "get": _wire.GET_RESULT, "cancel": _wire.CANCEL}
REQ_KEYS = [*volcnb.CAPABILITIES, "saliency_segg", "", "CVProcess"]
FIELDS = ["req_key", "binary_data_base64", "image_urls", "only_mask", "refine_mask", "rgb", "positive_prompt",
          "hyper_switch", "seed", "step", "cfg", "face_image", "style_image", "face_switch", "facestyle_switch",
          "style_switch", "width", "height", "prompt", "use_pre_llm", "size", "scale", "force_single", "min_ratio",
          "max_ratio", "max_entity", "return_format", "return_url", "logo_info", "aigc_meta", "task_id", "req_json"]
FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _png(size: tuple[int, int], fmt: str = "PNG") -> str:
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    arr[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = (200, 80, 20)
    arr[..., 2] = 60
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode("ascii")


GOOD_IMAGE = _png((160, 128))
IMAGES = [GOOD_IMAGE, _png((100, 100)), _png((4100, 130)), _png((140, 140), "GIF"), "", "####",
          base64.b64encode(b"GIF89a not really").decode(), GOOD_IMAGE[:-7]]

# ------------------------------------------------------------------------------------------ strategies

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
           | st.sampled_from(["uri://binary_data?index=0", "uri://binary_data?index=1", "uri://binary_data?index=9",
                              "1girl", "sim:post-risk", "sim:text-risk", "米老鼠", "", " ", "0", "true",
                              "http://127.0.0.1:9/x.png", "https://example.com/a.jpg", *REQ_KEYS]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8) | st.sampled_from(FIELDS), inner, max_size=5),
                           max_leaves=12)
image_lists = st.lists(st.sampled_from(IMAGES), max_size=3) | json_values
logo_infos = st.fixed_dictionaries({}, optional={
    "add_logo": st.booleans() | json_values, "position": st.integers(-2, 8) | json_values,
    "language": st.integers(-1, 3) | json_values, "opacity": st.floats(-1, 2) | json_values,
    "logo_text_content": st.text(max_size=60) | json_values}) | json_values
req_jsons = (st.fixed_dictionaries({}, optional={"return_url": st.booleans() | json_values, "logo_info": logo_infos,
                                                 "aigc_meta": st.fixed_dictionaries({}, optional={
                                                     "producer_id": json_values,
                                                     "content_producer": json_values}) | json_values})
             .map(lambda d: json.dumps(d, ensure_ascii=False))
             | st.text(max_size=40) | json_values)

BASES: list[dict[str, Any]] = [
    {"req_key": "saliency_seg", "binary_data_base64": [GOOD_IMAGE], "only_mask": 1},
    {"req_key": "entity_seg", "binary_data_base64": [GOOD_IMAGE], "max_entity": 3},
    {"req_key": "img2img_anime_accelerated_maintain_id", "binary_data_base64": [GOOD_IMAGE, GOOD_IMAGE],
     "face_image": "uri://binary_data?index=0", "style_image": "uri://binary_data?index=1", "face_switch": True,
     "width": 600, "height": 600},
    {"req_key": "jimeng_t2i_v30", "prompt": "a cat", "width": 512, "height": 512},
]


@st.composite
def mutated(draw: st.DrawFn, bases: list[dict[str, Any]], values: dict[str, st.SearchStrategy[Any]],
            fields: list[str] = FIELDS) -> dict[str, Any]:
    """A valid body with 1–4 fields replaced, removed or added (mostly ``fields``, sometimes any name)."""
    body = dict(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(fields) | st.sampled_from(FIELDS) | st.text(max_size=12))
        if name in body and draw(st.booleans()):
            del body[name]
        else:
            body[name] = draw(values.get(name, json_values))
    return body


SUBMIT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "req_key": st.sampled_from(REQ_KEYS) | json_values,
    "binary_data_base64": image_lists,
    "width": st.integers(500, 1600) | json_values,
    "height": st.integers(500, 1600) | json_values,
    "only_mask": st.integers(-1, 5) | json_values,
    "face_image": st.sampled_from(["uri://binary_data?index=0", "uri://binary_data?index=2"]) | json_values,
}
one_image = st.fixed_dictionaries({"req_key": st.just("saliency_seg"),
                                   "binary_data_base64": st.lists(st.sampled_from(IMAGES), min_size=1, max_size=1)})
submit_bodies = st.one_of(
    mutated(BASES, SUBMIT_VALUES), mutated(BASES, SUBMIT_VALUES, list(SUBMIT_VALUES)), one_image, json_values,
    st.binary(max_size=200),
).map(lambda b: b if isinstance(b, bytes) else _dumps(b))


def get_bodies(task_ids: list[str]) -> st.SearchStrategy[bytes]:
    bases = [{"req_key": "saliency_seg", "task_id": t} for t in task_ids] + [
        {"req_key": "saliency_seg", "task_id": task_ids[0], "req_json": '{"return_url":true}'}]
    values = {"req_key": st.sampled_from(REQ_KEYS) | json_values,
              "task_id": st.sampled_from(task_ids) | st.text(max_size=20) | json_values,
              "req_json": req_jsons}
    return st.one_of(
        mutated(bases, values, list(values)), mutated(bases, values, ["req_json"]), json_values,
        st.binary(max_size=100),
    ).map(lambda b: b if isinstance(b, bytes) else _dumps(b))


def _dumps(obj: Any) -> bytes:
    # json.dumps writes NaN/Infinity, which Python's json.loads on the server reads back: fuzz those too.
    return json.dumps(obj, ensure_ascii=bool(hash(str(obj)) & 1)).encode("utf-8", "surrogatepass")


# ----------------------------------------------------------------------------------- the harness


class Harness:
    """One simulator, one event loop, one signed httpx client for a whole property run."""

    def __init__(self) -> None:
        self.sim = Simulator(service_times={k: 0.0 for k in volcnb.CAPABILITIES}, queue_time=0.0, seed=5, workers=1,
                             quotas=Quotas(submit_qps=1e9, max_unfinished=10**9, get_result_qps=1e9))
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.sim.app()), base_url="http://sim.local",
                                      auth=volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)))
        self.client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY,
                                    transport=httpx.ASGITransport(app=self.sim.app()), max_retries=0)
        self.seen: dict[str, int] = {}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def send(self, action: str, content: bytes) -> httpx.Response:
        name, version = ACTIONS[action]
        return self.run(self.http.post("/", params={"Action": name, "Version": version}, content=content,
                                       headers={"Content-Type": "application/json"}))

    def check(self, action: str, content: bytes) -> dict[str, Any]:
        r = self.send(action, content)
        reply = assert_well_formed(r, action)
        key = f"{r.status_code}:{reply.get('code') or reply['ResponseMetadata']['Error']['Code']}"
        self.seen[key] = self.seen.get(key, 0) + 1
        return reply

    def close(self) -> None:
        # Simulator.close() drops queued computations, so this does not wait for every accepted fuzz task.
        self.run(self.http.aclose())
        self.run(self.client.aclose())
        self.loop.close()
        self.sim.close()


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


def assert_well_formed(r: httpx.Response, action: str) -> dict[str, Any]:
    """Never a 5xx; always JSON; either a gateway error or the complete service envelope."""
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    reply = r.json()
    assert isinstance(reply, dict)
    if "ResponseMetadata" in reply:
        err = reply["ResponseMetadata"]["Error"]
        assert isinstance(err["Code"], str) and err["Code"]
        assert isinstance(err["Message"], str) and err["Message"]
        assert 400 <= r.status_code < 500
        return reply
    code = reply["code"]
    assert isinstance(code, int) and not isinstance(code, bool)
    assert reply["status"] == code
    assert isinstance(reply["message"], str) and reply["message"]
    assert isinstance(reply["request_id"], str) and reply["request_id"]
    assert isinstance(reply["time_elapsed"], str)
    if code == 10000:
        assert r.status_code == 200
        data = reply["data"]
        assert isinstance(data, dict)
        if action == "submit":
            assert isinstance(data["task_id"], str) and data["task_id"].isdigit()
        else:
            assert data["status"] in _wire.SERVER_STATUSES
            if data["status"] == "done":
                assert isinstance(data.get("binary_data_base64"), list) or isinstance(data.get("image_urls"), list)
    else:
        assert 400 <= r.status_code < 500, (r.status_code, reply)
        assert code != 50500 and code != 50501, reply
        assert reply["data"] is None or reply["data"] == {"status": "done"}
    return reply


# ------------------------------------------------------------------------------------------ properties


def test_fuzz_submit(harness: Harness) -> None:
    @FUZZ
    @given(body=submit_bodies)
    def prop(body: bytes) -> None:
        harness.check("submit", body)

    for image in IMAGES:  # every kind of image always runs, on top of the random draws
        prop = example(body=_dumps({"req_key": "saliency_seg", "binary_data_base64": [image]}))(prop)

    prop()
    codes = {k.split(":")[1] for k in harness.seen}
    assert {"10000", "50200", "50204", "50205", "50207"} <= codes, harness.seen  # the fuzz reached past validation, too
    assert "50500" not in harness.sim.counters.rejected


def test_fuzz_get_result(harness: Harness) -> None:
    task_ids = []
    for body in BASES[:2]:
        reply = harness.check("submit", _dumps(body))
        task_ids.append(reply["data"]["task_id"])
    harness.sim.wait_idle()

    @FUZZ
    @given(body=get_bodies(task_ids))
    def prop(body: bytes) -> None:
        harness.check("get", body)

    prop()
    assert harness.seen.get("200:10000", 0) > 0 and "50500" not in harness.sim.counters.rejected


def test_fuzz_cancel(harness: Harness) -> None:
    @settings(FUZZ, max_examples=100)
    @given(body=mutated([{"req_key": "saliency_seg", "task_id": "7000000000000000001"}],
                        {"task_id": st.text(max_size=20) | json_values}).map(_dumps) | st.binary(max_size=50))
    def prop(body: bytes) -> None:
        harness.check("cancel", body)

    prop()


def test_fuzz_through_client_send(harness: Harness) -> None:
    """The same bodies through ``volcnb.Client.send_cv``: a reply or a typed APIError, never a ProtocolError."""
    @settings(FUZZ, max_examples=200)
    @given(action=st.sampled_from(["submit", "get"]), body=submit_bodies | get_bodies(["7000000000000000001"]))
    def prop(action: str, body: bytes) -> None:
        name, version = ACTIONS[action]
        req = _wire.ApiRequest(name, version, _wire.CV_SERVICE, body, idempotent=action != "submit")
        try:
            reply = harness.run(harness.client.send_cv(req))
        except volcnb.APIError as err:
            assert isinstance(err.code, (int, str)) and err.message
            assert not isinstance(err, volcnb.ServerError), err
            assert err.status_code is not None and 400 <= err.status_code < 500
        else:
            assert isinstance(reply, _wire.Reply) and isinstance(reply.data, dict)

    prop()


def test_nan_and_infinity_are_rejected_not_crashing(harness: Harness) -> None:
    for value in (math.nan, math.inf, -math.inf):
        reply = harness.check("submit", _dumps({**BASES[0], "only_mask": value}))
        assert reply["code"] == 50200
        reply = harness.check("submit", _dumps({**BASES[2], "cfg": value}))
        assert reply["code"] == 50200


# ----------------------------------------------------------------- headers, IVA multipart, /sim/config

HEADER_NAMES = ["Authorization", "X-Date", "X-Content-Sha256", "Content-Type", "Host", "Content-Length",
                "Transfer-Encoding", "Expect", "Connection", "X-Security-Token"]
ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
header_values = ascii_text | st.sampled_from([
    "HMAC-SHA256 Credential=AKSIMvolcnbLOCAL/20240101/cn-north-1/cv/request, SignedHeaders=host;x-date, Signature=00",
    "HMAC-SHA256 Credential=AKSIMvolcnbLOCAL//cn-north-1/cv/request, SignedHeaders=, Signature=",
    "HMAC-SHA256 Credential=AKSIMvolcnbLOCAL/20240101/cn-beijing/cv/request, SignedHeaders=host, Signature=ab",
    "HMAC-SHA256 ,,,,", "Bearer x", "20991231T000000Z", "19700101T000000Z", "0", "99999999999", "-1",
    "multipart/form-data; boundary=", "application/json; charset=gbk", "chunked", "100-continue"])


@st.composite
def header_mutations(draw: st.DrawFn) -> tuple[str, str, str, list[tuple[str, str | None]]]:
    """``(method, Action, Version, [(header, new value or None to delete)])`` applied after signing."""
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS"]))
    action = draw(st.sampled_from([*(a[0] for a in ACTIONS.values()), _wire.IVA_IMAGE[0], ""]) | ascii_text)
    version = draw(st.sampled_from(["2022-08-31", "2024-06-06", _wire.IVA_VERSION, ""]) | ascii_text)
    edits = draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES) | ascii_text.filter(lambda s: s.isalnum() and s),
                                    st.none() | header_values), max_size=4))
    return method, action, version, edits


IVA_BASE = {"TaskID": "task-1", "Image": {"Name": "a.png", "Source": "file"}, "AlgoParamConf": {"k": "v"}}
iva_requests = (mutated([IVA_BASE, {**IVA_BASE, "Image": {"Name": "a", "Source": "url", "Url": "http://127.0.0.1:9/a"}}],
                        {"Image": st.fixed_dictionaries({}, optional={
                            "Name": json_values, "Source": st.sampled_from(["url", "file", "x"]) | json_values,
                            "Url": json_values}) | json_values}, ["TaskID", "Image", "AlgoParamConf", "Video"])
                .map(lambda d: json.dumps(d)) | st.text(max_size=40) | json_values.map(json.dumps))
FILE_BYTES = [base64.b64decode(GOOD_IMAGE), base64.b64decode(IMAGES[3]), b"", b"\x89PNG\r\n\x1a\n", b"GIF89a",
              b"\x00" * 300]
multipart_parts = st.lists(st.tuples(
    st.sampled_from(["Request", "ImageFile", "VideoFile"]) | ascii_text.filter(bool),
    st.booleans(),  # a file part?
    iva_requests | ascii_text,
    st.sampled_from(FILE_BYTES) | st.binary(max_size=300)), max_size=5)

CONFIG_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "faults": st.fixed_dictionaries({}, optional={k: st.floats(-1, 2) | json_values for k in
                                                  ("http_500", "drop", "slow", "slow_seconds", "lost")}) | json_values,
    "quotas": st.fixed_dictionaries({}, optional={k: st.integers(-5, 10**12) | json_values for k in
                                                  ("submit_qps", "max_unfinished", "get_result_qps")}) | json_values,
    "service_times": st.dictionaries(st.sampled_from(REQ_KEYS), json_values, max_size=2) | json_values,
    "plan": st.dictionaries(st.sampled_from([_wire.SUBMIT[0], "x"]), st.lists(st.sampled_from(["ok", "lost", "boom"]))
                            | json_values, max_size=2) | json_values,
}
config_docs = (mutated([{"queue_time": 0.0}], CONFIG_VALUES, [*CONFIG_VALUES, "queue_time", "max_video_bytes"])
               .map(_dumps) | json_values.map(_dumps) | st.binary(max_size=80))
SAFE_CONFIG = {"faults": {}, "queue_time": 0.0, "service_times": {k: 0.0 for k in volcnb.CAPABILITIES},
               "quotas": {"submit_qps": 1e9, "max_unfinished": 10**9, "get_result_qps": 1e9}}


def _multipart(parts: list[tuple[str, bool, str, bytes]]) -> tuple[dict[str, str], list[tuple[str, Any]]]:
    data: dict[str, str] = {}
    files: list[tuple[str, Any]] = []
    for name, is_file, text, blob in parts:
        if is_file:
            files.append((name, ("f.png", blob, "application/octet-stream")))
        else:
            data[name] = text
    if not files:  # httpx sends urlencoded without files: keep one file part so this stays multipart
        files.append(("Padding", ("p.bin", b"", "application/octet-stream")))
    return data, files


def assert_gateway_or_envelope(r: httpx.Response) -> None:
    """Never a 5xx; JSON; a gateway error in ResponseMetadata or a complete service envelope."""
    assert r.status_code < 500, (r.status_code, r.text[:300])
    reply = r.json()
    if "ResponseMetadata" in reply and "Error" in reply["ResponseMetadata"]:
        err = reply["ResponseMetadata"]["Error"]
        assert isinstance(err["Code"], str) and err["Code"] and isinstance(err["Message"], str)
        assert len(reply["ResponseMetadata"]["RequestId"]) == 34
    elif "ResponseMetadata" in reply:
        assert r.status_code == 200 and isinstance(reply["Result"], dict)
    else:
        assert isinstance(reply["code"], int) and reply["status"] == reply["code"] and len(reply["request_id"]) == 34


def test_fuzz_headers_method_and_query(harness: Harness) -> None:
    body = _dumps(BASES[0])

    @settings(FUZZ, max_examples=200)
    @given(m=header_mutations())
    def prop(m: tuple[str, str, str, list[tuple[str, str | None]]]) -> None:
        method, action, version, edits = m
        req = harness.http.build_request(method, "/", params={"Action": action, "Version": version}, content=body,
                                         headers={"Content-Type": "application/json"})
        req = next(volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)).auth_flow(req))
        for name, value in edits:
            if value is None:
                req.headers.pop(name, None)
            else:
                req.headers[name] = value
        assert_gateway_or_envelope(harness.run(harness.http.send(req, auth=None)))

    prop()
    assert "50500" not in harness.sim.counters.rejected


def test_fuzz_iva_multipart_parts(harness: Harness) -> None:
    auth = volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY), service="iva")

    @settings(FUZZ, max_examples=200)
    @given(kind=st.sampled_from([_wire.IVA_IMAGE, _wire.IVA_VIDEO]), parts=multipart_parts,
           raw=st.none() | st.tuples(st.sampled_from(["multipart/form-data; boundary=b", "multipart/form-data",
                                                      "multipart/form-data; boundary=", "text/plain"]),
                                     st.binary(max_size=300)))
    def prop(kind: tuple[str, str], parts: list[tuple[str, bool, str, bytes]], raw: tuple[str, bytes] | None) -> None:
        params = {"Action": kind[0], "Version": kind[1]}
        if raw is None:
            data, files = _multipart(parts)
            r = harness.run(harness.http.post("/", params=params, data=data, files=files, auth=auth))
        else:
            r = harness.run(harness.http.post("/", params=params, content=raw[1], headers={"Content-Type": raw[0]},
                                              auth=auth))
        assert_gateway_or_envelope(r)
        assert "code" not in r.json()  # IVA answers in ResponseMetadata, always

    prop = example(kind=_wire.IVA_IMAGE, parts=[("Request", False, json.dumps(IVA_BASE), b""),
                                                ("ImageFile", True, "", FILE_BYTES[0])], raw=None)(prop)
    prop()
    assert harness.sim.counters.uploads > 0  # the fuzz reached past validation, too
    assert "InternalError" not in harness.sim.counters.rejected


def test_fuzz_sim_config(harness: Harness) -> None:
    @settings(FUZZ, max_examples=200)
    @given(doc=config_docs)
    def prop(doc: bytes) -> None:
        r = harness.run(harness.http.post("/sim/config", content=doc))
        assert r.status_code in (200, 400), (r.status_code, r.text[:300])
        assert r.json() == {"ok": True} or isinstance(r.json()["error"], str)
        assert harness.run(harness.http.post("/sim/config", json=SAFE_CONFIG)).status_code == 200
        harness.check("get", _dumps({"req_key": "saliency_seg", "task_id": "7000000000000000001"}))

    prop()


def test_fuzz_over_http_the_server_stays_up_and_logs_no_traceback(tmp_path: Any) -> None:
    """The same strategies against ``volcnb sim`` in a child process: no 5xx, still healthy, a clean log."""
    from volcnb.sim import SimProcess

    log = tmp_path / "sim.log"
    creds = volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY)
    with SimProcess("--queue-time", "0", log=log) as server, httpx.Client(base_url=server.url, timeout=20) as http:
        assert http.post("/sim/config", json=SAFE_CONFIG).status_code == 200

        @settings(FUZZ, max_examples=150)
        @given(which=st.sampled_from(["submit", "get", "headers", "iva", "config"]), body=submit_bodies,
               m=header_mutations(), parts=multipart_parts, doc=config_docs)
        def prop(which: str, body: bytes, m: tuple[str, str, str, list[tuple[str, str | None]]],
                 parts: list[tuple[str, bool, str, bytes]], doc: bytes) -> None:
            if which in ("submit", "get"):
                name, version = ACTIONS[which]
                r = http.post("/", params={"Action": name, "Version": version}, content=body,
                              headers={"Content-Type": "application/json"}, auth=volcnb.VolcAuth(creds))
            elif which == "headers":
                method, action, version, edits = m
                req = http.build_request(method, "/", params={"Action": action, "Version": version}, content=body)
                req = next(volcnb.VolcAuth(creds).auth_flow(req))
                for key, value in edits:
                    if key.lower() in ("content-length", "transfer-encoding", "host", "expect", "connection"):
                        continue  # framing headers stay true over a real socket (httpx refuses to send otherwise)
                    if value is None:
                        req.headers.pop(key, None)
                    else:
                        req.headers[key] = value
                try:
                    r = http.send(req)
                except httpx.LocalProtocolError:
                    return  # h11 refuses to send such a header (e.g. a blank value): it never reaches a server
            elif which == "iva":
                data, files = _multipart(parts)
                r = http.post("/", params={"Action": _wire.IVA_IMAGE[0], "Version": _wire.IVA_VERSION}, data=data,
                              files=files, auth=volcnb.VolcAuth(creds, service="iva"))
            else:
                r = http.post("/sim/config", content=doc)
                assert r.status_code in (200, 400), r.text[:300]
                assert http.post("/sim/config", json=SAFE_CONFIG).status_code == 200
                return
            assert_gateway_or_envelope(r)

        prop()
        assert http.get("/sim/health").json()["ok"]
        assert server.proc is not None and server.proc.poll() is None
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "Exception in ASGI application" not in text, text[-3000:]
