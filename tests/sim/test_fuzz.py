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
