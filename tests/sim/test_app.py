"""The simulator's HTTP face, in-process: the documents' response shapes, documented error codes, gateway errors.

Every request here is signed with :class:`volcnb.VolcAuth` and sent raw (no client-side checks, no retries),
so what is tested is what the simulator itself answers to whatever a client may send.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

import volcnb
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Simulator
from volcnb.sim._inputs import MAX_B64
from volcnb.sim._model import MAX_BODY

ACTIONS = {
    "submit": ("CVSync2AsyncSubmitTask", "2022-08-31"),
    "get": ("CVSync2AsyncGetResult", "2022-08-31"),
    "cancel": ("CVCancelTask", "2024-06-06"),
}
SERVICE_CODES = {50200, 50201, 50204, 50205, 50206, 50207, 50213}

# ------------------------------------------------------------------------------- the documents' examples
# Copied verbatim from the 同步转异步接口使用说明 document (saliency_seg) and the 人像保持 document.

SYNC2ASYNC_SUBMIT: dict[str, Any] = {
    "code": 10000,
    "data": {"task_id": "7418048504813240370"},
    "message": "Success",
    "request_id": "2024092411365866C579D2A96A35DA62A9",
    "status": 10000,
    "time_elapsed": "23.099216ms",
}
SYNC2ASYNC_RESULT: dict[str, Any] = {
    "code": 10000,
    "data": {
        "algorithm_base_resp": {"status_code": 0, "status_message": "Success"},
        "bbox": [[1096, 438, 1857, 1766]],
        "binary_data_base64": [""],
        "contours_point": [[[[2076, 440], [2058, 441]]]],
        "ori_height": [2204],
        "ori_width": [3306],
        "seg_score": [0.005572378635406494],
        "shadow": [None],
        "shadow_pos": [None],
    },
    "message": "Success",
    "request_id": "202408151152110AC5DB88EDFEDACF402A",
    "status": 10000,
    "time_elapsed": "1.440610819s",
}
PORTRAIT_SUBMIT: dict[str, Any] = {
    "code": 10000,
    "data": {"task_id": "7392616336519610409"},
    "message": "Success",
    "request_id": "20240720103939AF0029465CF6A74E51EC",
    "status": 10000,
    "time_elapsed": "104.852309ms",
}
PORTRAIT_RESULT: dict[str, Any] = {
    "code": 10000,
    "data": {
        "algorithm_base_resp": {"status_code": 0, "status_message": "Success"},
        "binary_data_base64": ["xxx"],
        "image_urls": [""],
        "request_id": "",
    },
    "message": "Success",
    "request_id": "2024061214082851989A35E4283DB7C8AD",
    "status": 10000,
    "time_elapsed": "16.52978614s",
}
#: The GetResult request examples of the two documents (req_json exactly as printed there).
SYNC2ASYNC_REQ_JSON = {"logo_info": {"add_logo": True, "position": 0, "language": 0, "opacity": 0.3,
                                   "logo_text_content": "这里是明水印内容"}}
PORTRAIT_REQ_JSON = "{\"logo_info\":{\"add_logo\":true,\"position\":2,\"language\":0,\"opacity\":1}}"


def assert_same_shape(expected: Any, actual: Any, path: str = "$") -> None:
    """``actual`` has at least ``expected``'s keys, with the same value types, recursively.

    Lists compare the types of their first elements; ``None`` must stay ``None``.
    """
    if expected is None:
        assert actual is None, f"{path}: expected null, got {actual!r}"
        return
    assert type(actual) is type(expected), (
        f"{path}: expected {type(expected).__name__}, got {type(actual).__name__} ({actual!r:.80})")
    if isinstance(expected, dict):
        missing = sorted(set(expected) - set(actual))
        assert not missing, f"{path}: keys missing from the simulator's answer: {missing}"
        for key, value in expected.items():
            assert_same_shape(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list) and expected:
        assert actual, f"{path}: expected a non-empty list"
        assert_same_shape(expected[0], actual[0], f"{path}[0]")


def test_shape_checker_catches_differences() -> None:
    assert_same_shape(SYNC2ASYNC_RESULT, SYNC2ASYNC_RESULT)
    assert_same_shape({"a": [1]}, {"a": [2], "extra": "ok"})
    for bad in ({"a": [1.5]}, {"a": []}, {"b": [1]}, {"a": 1}, {"a": ["1"]}):
        with pytest.raises(AssertionError):
            assert_same_shape({"a": [1]}, bad)
    with pytest.raises(AssertionError):
        assert_same_shape({"a": [None]}, {"a": [0]})


# ------------------------------------------------------------------------------------------- helpers


def b64_image(size: tuple[int, int] = (256, 256), fmt: str = "PNG", mode: str = "RGB") -> str:
    """A small synthetic picture (a disc on a gradient) as base64."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = (xx * 255 // max(w - 1, 1)).astype(np.uint8)
    arr[..., 2] = 90
    disc = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (min(w, h) / 3) ** 2
    arr[disc] = (240, 200, 40)
    img = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def grace_b64() -> str:
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode("ascii")


class Api:
    """Signed raw calls to an in-process simulator."""

    def __init__(self, sim: Simulator, *, ak: str = DEFAULT_ACCESS_KEY, sk: str = DEFAULT_SECRET_KEY,
                 service: str = "cv") -> None:
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app()), base_url="http://sim.local",
                                      auth=volcnb.VolcAuth(volcnb.Credentials(ak, sk), service=service))

    async def raw(self, action: str, content: bytes, *, version: str | None = None) -> httpx.Response:
        name, default_version = ACTIONS.get(action, (action, "2022-08-31"))
        return await self.http.post("/", params={"Action": name, "Version": version or default_version},
                                    content=content, headers={"Content-Type": "application/json"})

    async def call(self, action: str, body: Any) -> tuple[int, dict[str, Any]]:
        content = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        r = await self.raw(action, content)
        return r.status_code, r.json()

    async def done(self, req_key: str, task_id: str, req_json: str | None = None, *, sim: Simulator
                   ) -> tuple[int, dict[str, Any]]:
        """GetResult once the task's output is computed and its service time has passed."""
        sim.wait_idle()
        body: dict[str, Any] = {"req_key": req_key, "task_id": task_id}
        if req_json is not None:
            body["req_json"] = req_json
        for _ in range(200):
            status, reply = await self.call("get", body)
            if (reply.get("data") or {}).get("status") not in ("in_queue", "generating"):
                return status, reply
            await asyncio.sleep(0.02)
        raise AssertionError("task never finished")


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[Api]:
    a = Api(sim)
    yield a
    await a.http.aclose()


def assert_service_error(status: int, reply: dict[str, Any], code: int) -> None:
    """A business error in the CV service envelope, HTTP 4xx."""
    assert 400 <= status < 500, (status, reply)
    assert "ResponseMetadata" not in reply
    assert reply["code"] == code, reply
    assert reply["status"] == code
    assert isinstance(reply["message"], str) and reply["message"]
    assert isinstance(reply["request_id"], str) and reply["request_id"]
    assert reply["data"] is None


# -------------------------------------------------------------------------- the documents' response shapes


async def test_sync2async_document_submit_and_get_result_shapes(api: Api, sim: Simulator) -> None:
    body = {"req_key": "saliency_seg", "binary_data_base64": [b64_image()], "only_mask": 3, "refine_mask": 0,
            "rgb": [-1, -1, -1]}  # the document's request example (with an inline image instead of a URL)
    status, submitted = await api.call("submit", body)
    assert status == 200
    assert_same_shape(SYNC2ASYNC_SUBMIT, submitted)
    assert submitted["data"]["task_id"].isdigit()
    assert len(submitted["request_id"]) == len(SYNC2ASYNC_SUBMIT["request_id"]) == 34

    status, result = await api.done("saliency_seg", submitted["data"]["task_id"],
                                    json.dumps(SYNC2ASYNC_REQ_JSON, ensure_ascii=False), sim=sim)
    assert status == 200, result
    assert_same_shape(SYNC2ASYNC_RESULT, result)
    assert result["data"]["status"] == "done"  # the one key the simulator may add
    assert set(result["data"]) - set(SYNC2ASYNC_RESULT["data"]) <= {"status"}


async def test_portrait_document_submit_and_get_result_shapes(api: Api, sim: Simulator) -> None:
    body = {"req_key": "img2img_anime_accelerated_maintain_id", "positive_prompt": "1girl,beautiful,looking at viewer,"
            "portrait,", "binary_data_base64": [grace_b64()], "seed": -1, "step": 18, "cfg": 4.5,
            "face_image": "uri://binary_data?index=0", "face_switch": True, "width": 1000, "height": 1000}
    status, submitted = await api.call("submit", body)
    assert status == 200, submitted
    assert_same_shape(PORTRAIT_SUBMIT, submitted)

    status, result = await api.done(body["req_key"], submitted["data"]["task_id"], PORTRAIT_REQ_JSON, sim=sim)
    assert status == 200, result
    assert_same_shape(PORTRAIT_RESULT, result)
    assert result["data"]["status"] == "done"
    png = base64.b64decode(result["data"]["binary_data_base64"][0])
    assert Image.open(io.BytesIO(png)).size == (1000, 1000)


async def test_unfinished_and_unknown_tasks_answer_a_status(api: Api, sim: Simulator) -> None:
    sim.set_service_time("saliency_seg", 30.0, 0.0)
    status, submitted = await api.call("submit", {"req_key": "saliency_seg", "binary_data_base64": [b64_image()]})
    assert status == 200
    tid = submitted["data"]["task_id"]
    status, reply = await api.call("get", {"req_key": "saliency_seg", "task_id": tid})
    assert status == 200 and reply["code"] == 10000
    assert reply["data"]["status"] in ("in_queue", "generating")
    assert reply["data"].get("binary_data_base64") is None
    for body in ({"req_key": "saliency_seg", "task_id": "7000000000000000001"},  # no such task
                 {"req_key": "entity_seg", "task_id": tid}):                     # another req_key's task
        status, reply = await api.call("get", body)
        assert (status, reply["code"], reply["data"]) == (200, 10000, {"status": "not_found"})


# ----------------------------------------------------------------------------------- bad requests

IMG = b64_image()


def _submit_cases() -> list[Any]:
    portrait = {"req_key": "img2img_anime_accelerated_maintain_id", "binary_data_base64": [IMG],
                "face_image": "uri://binary_data?index=0", "face_switch": True}
    sal = {"req_key": "saliency_seg", "binary_data_base64": [IMG]}
    cases: list[tuple[str, Any, int]] = [
        ("missing req_key", {"binary_data_base64": [IMG]}, 50201),
        ("empty req_key", {"req_key": "", "binary_data_base64": [IMG]}, 50201),
        ("unknown req_key", {"req_key": "saliency_segmentation_pro", "binary_data_base64": [IMG]}, 50200),
        ("req_key not a string", {"req_key": 5, "binary_data_base64": [IMG]}, 50200),
        ("no image", {"req_key": "saliency_seg"}, 50206),
        ("empty base64 entry", {**sal, "binary_data_base64": [""]}, 50206),
        ("base64 over 4.7 MB", {**sal, "binary_data_base64": ["A" * (MAX_B64 + 4)]}, 50205),
        ("side over 4096", {**sal, "binary_data_base64": [b64_image((4100, 200))]}, 50205),
        ("side under 128", {**sal, "binary_data_base64": [b64_image((100, 100))]}, 50205),
        ("corrupt image", {**sal, "binary_data_base64": [base64.b64encode(b"\x89PNG\r\n\x1a\nnot really").decode()]},
         50207),
        ("not base64", {**sal, "binary_data_base64": ["%%% this is not base64 %%%"]}, 50207),
        ("GIF", {**sal, "binary_data_base64": [b64_image(fmt="GIF", mode="P")]}, 50207),
        ("offline URL", {"req_key": "saliency_seg", "image_urls": ["https://example.com/cat.jpg"]}, 50207),
        ("only_mask=9", {**sal, "only_mask": 9}, 50200),
        ("refine_mask=-1", {**sal, "refine_mask": -1}, 50200),
        ("rgb out of range", {**sal, "rgb": [300, 0, 0]}, 50200),
        ("portrait width=2000", {**portrait, "width": 2000}, 50200),
        ("portrait height=599", {**portrait, "height": 599}, 50200),
        ("only_mask as a string", {**sal, "only_mask": "1"}, 50200),
        ("only_mask as a float", {**sal, "only_mask": 1.5}, 50200),
        ("rgb as a string", {**sal, "rgb": "white"}, 50200),
        ("face_switch as a string", {**portrait, "face_switch": "yes"}, 50200),
        ("width as a bool", {**portrait, "width": True}, 50200),
        ("binary_data_base64 as a string", {**sal, "binary_data_base64": IMG}, 50200),
        ("binary_data_base64 as an object", {**sal, "binary_data_base64": {"0": IMG}}, 50200),
        ("binary_data_base64 as a number", {**sal, "binary_data_base64": 5}, 50200),
        ("image_urls as a string", {"req_key": "saliency_seg", "image_urls": "http://127.0.0.1/x.png"}, 50200),
        ("image_urls as a bool", {**sal, "image_urls": True}, 50200),
        ("image_urls entry not a string", {"req_key": "saliency_seg", "image_urls": [7]}, 50200),
        ("images and urls together", {**sal, "image_urls": ["http://127.0.0.1/x.png"]}, 50200),
        ("two images for saliency_seg", {**sal, "binary_data_base64": [IMG, IMG]}, 50200),
        ("face_image index missing", {**portrait, "face_image": "uri://binary_data?index=3"}, 50200),
        ("face_image not a uri", {**portrait, "face_image": "face.jpg"}, 50200),
        ("switch without face_image", {**{k: v for k, v in portrait.items() if k != "face_image"}}, 50200),
        ("style_switch without style_image", {**portrait, "style_switch": True}, 50200),
        ("misspelt parameter", {**sal, "only_msk": 1}, 50200),
        ("huge prompt", {**portrait, "positive_prompt": "猫" * 100_000}, 50200),
        ("huge req_key", {"req_key": "x" * 1_000_000, "binary_data_base64": [IMG]}, 50200),
        ("text-to-image without prompt", {"req_key": "jimeng_t2i_v30"}, 50201),
        ("non-JSON body", b"req_key=saliency_seg&only_mask=1", 50204),
        ("truncated JSON", b'{"req_key": "saliency_seg", "binary_data_base64": ["', 50204),
        ("invalid UTF-8", b'{"req_key": "\xff\xfe"}', 50204),
        ("empty body", b"", 50204),
        ("JSON array", b'[{"req_key": "saliency_seg"}]', 50204),
        ("JSON string", b'"saliency_seg"', 50204),
        ("JSON null", b"null", 50204),
        ("body over 20 MB", b'{"req_key": "saliency_seg", "pad": "' + b"x" * (MAX_BODY + 1) + b'"}', 50213),
    ]
    return [pytest.param(body, code, id=name) for name, body, code in cases]


@pytest.mark.parametrize(("body", "code"), _submit_cases())
async def test_bad_submit_gets_documented_code(api: Api, sim: Simulator, body: Any, code: int) -> None:
    status, reply = await api.call("submit", body)
    assert_service_error(status, reply, code)
    assert sim.counters.accepted == 0
    assert sim.counters.rejected[str(code)] == 1
    assert "50500" not in sim.counters.rejected


def _get_cases() -> list[Any]:
    base = {"req_key": "saliency_seg", "task_id": "7000000000000000001"}

    def rj(conf: Any) -> dict[str, Any]:
        return {**base, "req_json": json.dumps(conf)}

    cases: list[tuple[str, Any, int]] = [
        ("missing task_id", {"req_key": "saliency_seg"}, 50201),
        ("empty task_id", {**base, "task_id": ""}, 50201),
        ("missing req_key", {"task_id": "7000000000000000001"}, 50201),
        ("task_id as a number", {**base, "task_id": 7000000000000000001}, 50200),
        ("task_id as a list", {**base, "task_id": ["1"]}, 50200),
        ("req_json as an object", {**base, "req_json": {"return_url": True}}, 50200),
        ("req_json not JSON", {**base, "req_json": "{return_url: true"}, 50204),
        ("req_json an array", rj([1, 2]), 50204),
        ("logo position 7", rj({"logo_info": {"add_logo": True, "position": 7}}), 50200),
        ("logo language 2", rj({"logo_info": {"add_logo": True, "language": 2}}), 50200),
        ("logo opacity 1.5", rj({"logo_info": {"add_logo": True, "opacity": 1.5}}), 50200),
        ("logo add_logo as a string", rj({"logo_info": {"add_logo": "true"}}), 50200),
        ("logo_info as a list", rj({"logo_info": [True, 0]}), 50200),
        ("logo text not a string", rj({"logo_info": {"add_logo": True, "logo_text_content": 51}}), 50200),
        ("return_url as a string", rj({"return_url": "yes"}), 50200),
        ("aigc_meta without producer_id", rj({"aigc_meta": {"content_producer": "me"}}), 50201),
        ("non-JSON body", b"task_id=1", 50204),
        ("JSON array", b"[]", 50204),
    ]
    return [pytest.param(body, code, id=name) for name, body, code in cases]


@pytest.mark.parametrize(("body", "code"), _get_cases())
async def test_bad_get_result_gets_documented_code(api: Api, body: Any, code: int) -> None:
    status, reply = await api.call("get", body)
    assert_service_error(status, reply, code)


@pytest.mark.parametrize(("body", "code"), [
    pytest.param({"req_key": "saliency_seg"}, 50201, id="missing task_id"),
    pytest.param({"task_id": "1"}, 50201, id="missing req_key"),
    pytest.param(b"{", 50204, id="non-JSON"),
])
async def test_bad_cancel_gets_documented_code(api: Api, body: Any, code: int) -> None:
    status, reply = await api.call("cancel", body)
    assert_service_error(status, reply, code)


async def test_a_valid_request_next_to_the_bad_ones_is_accepted(api: Api, sim: Simulator) -> None:
    """The fixtures above are bad for the stated reason only: the same bodies, fixed, are accepted."""
    good = [
        {"req_key": "saliency_seg", "binary_data_base64": [IMG], "only_mask": 1, "refine_mask": 2, "rgb": [255, 0, 0]},
        {"req_key": "img2img_anime_accelerated_maintain_id", "binary_data_base64": [IMG],
         "face_image": "uri://binary_data?index=0", "face_switch": True, "width": 1500, "height": 600},
        {"req_key": "saliency_seg", "binary_data_base64": [b64_image((128, 4096), fmt="JPEG")]},
    ]
    for body in good:
        status, reply = await api.call("submit", body)
        assert (status, reply["code"]) == (200, 10000), reply
    assert sim.counters.accepted == len(good)


# ---------------------------------------------------------------------------------- gateway errors


def assert_gateway_error(status: int, reply: dict[str, Any], code: str, http: int = 401) -> None:
    assert status == http, (status, reply)
    meta = reply["ResponseMetadata"]
    assert meta["Error"]["Code"] == code
    assert isinstance(meta["Error"]["Message"], str) and meta["Error"]["Message"]
    assert isinstance(meta["RequestId"], str) and meta["RequestId"]
    assert "code" not in reply


async def test_wrong_secret_key_is_signature_does_not_match(sim: Simulator) -> None:
    api = Api(sim, sk="not-the-secret")
    status, reply = await api.call("submit", {"req_key": "saliency_seg", "binary_data_base64": [IMG]})
    assert_gateway_error(status, reply, "SignatureDoesNotMatch")
    assert reply["ResponseMetadata"]["Action"] == "CVSync2AsyncSubmitTask"
    assert sim.counters.submits == 0
    await api.http.aclose()


async def test_unknown_access_key_and_wrong_service(sim: Simulator) -> None:
    api = Api(sim, ak="AKNOBODY")
    status, reply = await api.call("get", {"req_key": "saliency_seg", "task_id": "1"})
    assert_gateway_error(status, reply, "InvalidAccessKey")
    await api.http.aclose()
    api = Api(sim, service="imagex")  # the classic hand-rolled-signer mistake: wrong service in the scope
    status, reply = await api.call("get", {"req_key": "saliency_seg", "task_id": "1"})
    assert_gateway_error(status, reply, "SignatureDoesNotMatch")
    await api.http.aclose()


async def test_unsigned_and_tampered_requests(sim: Simulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app()), base_url="http://sim.local") as http:
        r = await http.post("/", params={"Action": "CVSync2AsyncGetResult", "Version": "2022-08-31"},
                            content=b'{"req_key":"saliency_seg","task_id":"1"}')
        assert_gateway_error(r.status_code, r.json(), "MissingAuthenticationToken")
        r = await http.post("/", params={"Action": "CVSync2AsyncGetResult", "Version": "2022-08-31"},
                            content=b"{}", headers={"Authorization": "Bearer nonsense"})
        assert_gateway_error(r.status_code, r.json(), "InvalidAuthorization")

    # a body changed after signing no longer matches X-Content-Sha256
    api = Api(sim)
    signed = api.http.build_request("POST", "/", params={"Action": "CVSync2AsyncGetResult", "Version": "2022-08-31"},
                                    content=b'{"req_key":"saliency_seg","task_id":"1"}',
                                    headers={"Content-Type": "application/json"})
    auth = volcnb.VolcAuth(volcnb.Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY))
    flow = auth.auth_flow(signed)
    signed = next(flow)
    forged = httpx.Request("POST", signed.url, headers={k: v for k, v in signed.headers.items()
                                                       if k.lower() != "content-length"},
                           content=b'{"req_key":"saliency_seg","task_id":"2"}')
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app())) as http:
        r = await http.send(forged)
    assert_gateway_error(r.status_code, r.json(), "SignatureDoesNotMatch")
    await api.http.aclose()


async def test_unknown_action_or_version_is_a_404_gateway_error(api: Api) -> None:
    r = await api.raw("CVProcess", b"{}")
    assert_gateway_error(r.status_code, r.json(), "InvalidActionOrVersion", http=404)
    r = await api.raw("submit", b"{}", version="2020-08-26")
    assert_gateway_error(r.status_code, r.json(), "InvalidActionOrVersion", http=404)


async def test_side_routes(api: Api, sim: Simulator) -> None:
    r = await api.http.get("/sim/health")
    assert r.json()["ok"] is True
    r = await api.http.get("/sim/files/no-such-token")
    assert r.status_code == 404
    await api.call("submit", {"req_key": "saliency_seg", "binary_data_base64": [IMG]})
    stats = (await api.http.get("/sim/stats?tasks=1")).json()
    assert stats["counters"]["accepted"] == 1 and len(stats["tasks"]) == 1
    r = await api.http.post("/sim/config", content=b'{"queue_time": 1.5, "service_times": {"saliency_seg": [4, 0]}}')
    assert r.json() == {"ok": True}
    assert sim.queue_time == 1.5 and sim.service_times["saliency_seg"].median == 4
    r = await api.http.post("/sim/config", content=b"not json")
    assert r.status_code == 400
