"""The pure protocol layer (volcnb._wire): every documented envelope parses to the right result or error.

Bodies are copied verbatim from the seed documents (``shared/seeds/000`` saliency sync-to-async page,
``001`` IVA upload page, ``002`` portrait page) and from reference §4.4 / §8.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from volcnb import (
    AigcMeta,
    APIError,
    AuthError,
    ConcurrencyLimitError,
    ContentRiskError,
    InvalidArgumentError,
    LogoInfo,
    ProtocolError,
    RateLimitError,
    ServerError,
    SignatureError,
    TaskExpiredError,
    TaskNotFoundError,
    ValidationError,
    VolcError,
)
from volcnb._exceptions import error_class_for_code, make_api_error
from volcnb.protocol import wire as _wire

# --- verbatim examples ----------------------------------------------------------------------------

SYNC2ASYNC_SUBMIT_REPLY = """{
    "code": 10000,
    "data": {
        "task_id": "7418048504813240370"
    },
    "message": "Success",
    "request_id": "2024092411365866C579D2A96A35DA62A9",
    "status": 10000,
    "time_elapsed": "23.099216ms"
}"""

SYNC2ASYNC_GET_RESULT_REPLY = """{
    "code": 10000,
    "data": {
        "algorithm_base_resp": {
            "status_code": 0,
            "status_message": "Success"
        },
        "bbox": [
            [1096, 438, 1857, 1766]
        ],
        "binary_data_base64": [
            ""
        ],
        "contours_point": [
            [
                [
                    [2076, 440],
                    [2058, 441]
                ]
            ]
        ],
        "ori_height": [2204],
        "ori_width": [3306],
        "seg_score": [0.005572378635406494],
        "shadow": [null],
        "shadow_pos": [null]
    },
    "message": "Success",
    "request_id": "202408151152110AC5DB88EDFEDACF402A",
    "status": 10000,
    "time_elapsed": "1.440610819s"
}"""

SYNC2ASYNC_GET_RESULT_REQUEST = {
    "req_key": "saliency_seg",
    "task_id": "7418049665255653414",
    "req_json": "{\"logo_info\":{\"add_logo\":true,\"position\":0,\"language\":0,\"opacity\":0.3,"
                "\"logo_text_content\":\"这里是明水印内容\"},\"return_url\":true}",
}

PORTRAIT_SUBMIT_REPLY = """{
    "code": 10000,
    "data": {
        "task_id": "7392616336519610409"
    },
    "message": "Success",
    "request_id": "20240720103939AF0029465CF6A74E51EC",
    "status": 10000,
    "time_elapsed": "104.852309ms"
}"""

PORTRAIT_GET_RESULT_REQUEST = {
    "req_key": "img2img_anime_accelerated_maintain_id",
    "task_id": "<任务提交接口返回task_id>",
    "req_json": "{\"logo_info\":{\"add_logo\":true,\"position\":2,\"language\":0,\"opacity\":1}}",
}

PORTRAIT_GET_RESULT_REPLY = """{
    "code": 10000,
    "data": {
        "algorithm_base_resp": {
            "status_code": 0,
            "status_message": "Success"
        },
        "binary_data_base64": ["xxx"],
        "image_urls": [""],
        "request_id": ""
    },
    "message": "Success",
    "request_id": "2024061214082851989A35E4283DB7C8AD",
    "status": 10000,
    "time_elapsed": "16.52978614s"
}"""

# The IVA document: the documented envelope, its "// 优先检测此字段…" comment removed (JSON has no comments).
IVA_DOC_IMAGE_REPLY = """{
    "ResponseMetadata": {
        "RequestId": "20220214145936010211209131054BC6F2",
        "Action": "{Action}",
        "Version": "{Version}",
        "Service": "{Service}",
        "Region": "{Region}",
        "Error": {
            "Code": "{ErrorCode}",
            "Message": "{ErrorMessage}"
        }
    },
    "Result":{
        "ImageID":"xxxx-xxxx"
    }
}"""
IVA_DOC_VIDEO_REPLY = IVA_DOC_IMAGE_REPLY.replace('"ImageID"', '"VideoID"')

# Reference §4.4 (the bodies used to show how the SDK surfaces errors).
REF_CASES: list[tuple[int, bytes]] = [
    (200, b'{"code":10000,"data":{"task_id":"1"},"message":"Success","request_id":"r","status":10000,'
          b'"time_elapsed":"1ms"}'),
    (200, b'{"code":10000,"data":{"status":"in_queue"},"message":"Success"}'),
    (429, b'{"code":50429,"data":null,"message":"Request Has Reached API Limit, Please Try Later","request_id":"r",'
          b'"status":50429}'),
    (400, b'{"code":50413,"data":null,"message":"Post Text Risk Not Pass","status":50413}'),
    (401, b'{"ResponseMetadata":{"RequestId":"r","Action":"CVSync2AsyncSubmitTask","Version":"2022-08-31",'
          b'"Service":"cv","Region":"cn-north-1","Error":{"CodeN":100010,"Code":"SignatureDoesNotMatch",'
          b'"Message":"x"}}}'),
]

# Reference §5.3 / volc-sdk-python issues #42 #47 #55: the 50400 body, UTF-8 "µs" included.
ACCESS_DENIED = ('{"code":50400,"data":null,"message":"Access Denied: Internal Error",'
                 '"request_id":"20240101000000ABCDEF","status":50400,"time_elapsed":"96.333µs"}').encode()

SUBMIT = _wire.build_submit("saliency_seg", {"image_urls": ["https://x"]})
GET = _wire.build_get_result("saliency_seg", "7418049665255653414")


def _err_attrs_ok(err: VolcError) -> None:
    for name in ("code", "message", "request_id", "task_id", "retryable", "status_code"):
        assert hasattr(err, name), name
    for text in (str(err), err.message):
        assert not re.search(r"\bb['\"]", text), text  # never a bytes repr
    assert isinstance(err.retryable, bool)


# --- success envelopes ----------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "task_id", "request_id", "elapsed"), [
    (SYNC2ASYNC_SUBMIT_REPLY, "7418048504813240370", "2024092411365866C579D2A96A35DA62A9", "23.099216ms"),
    (PORTRAIT_SUBMIT_REPLY, "7392616336519610409", "20240720103939AF0029465CF6A74E51EC", "104.852309ms"),
], ids=["sync2async-document", "portrait-document"])
def test_seed_submit_replies(body: str, task_id: str, request_id: str, elapsed: str) -> None:
    reply = _wire.parse_service_reply(200, body.encode(), SUBMIT)
    assert _wire.submitted_task_id(reply) == task_id
    assert reply.request_id == request_id
    assert reply.time_elapsed == elapsed
    assert reply.message == "Success" and reply.status_code == 200
    assert reply.raw["status"] == 10000


def test_sync2async_document_get_result_without_status_and_with_empty_base64_entry() -> None:
    """The seed's own example has no data.status and ``binary_data_base64: [""]``: it is a done result."""
    reply = _wire.parse_service_reply(200, SYNC2ASYNC_GET_RESULT_REPLY.encode(), GET)
    assert "status" not in reply.data
    assert _wire.task_status(reply, task_id=GET.task_id, req_key=GET.req_key) == "done"
    assert _wire.result_images(reply.data) == ([], [])  # the "" entry is skipped, not decoded
    assert reply.data["bbox"] == [[1096, 438, 1857, 1766]]
    assert reply.data["shadow"] == [None]
    assert reply.time_elapsed == "1.440610819s"


def test_portrait_document_get_result_with_empty_url_entry() -> None:
    reply = _wire.parse_service_reply(200, PORTRAIT_GET_RESULT_REPLY.encode(), GET)
    assert _wire.task_status(reply, task_id=GET.task_id, req_key=GET.req_key) == "done"
    assert _wire.result_images(reply.data) == (["xxx"], [])
    assert reply.request_id == "2024061214082851989A35E4283DB7C8AD"  # the outer one, not data.request_id ""


@pytest.mark.parametrize("status", ["in_queue", "generating", "done"])
def test_get_result_progress_statuses(status: str) -> None:
    body = json.dumps({"code": 10000, "data": {"status": status}, "message": "Success", "request_id": "r"})
    reply = _wire.parse_service_reply(200, body.encode(), GET)
    assert _wire.task_status(reply, task_id=GET.task_id, req_key=GET.req_key) == status


def test_get_result_not_found_and_expired_keep_the_task_id() -> None:
    for status, cls in (("not_found", TaskNotFoundError), ("expired", TaskExpiredError)):
        body = json.dumps({"code": 10000, "data": {"status": status}, "message": "Success", "request_id": "rid"})
        reply = _wire.parse_service_reply(200, body.encode(), GET)
        with pytest.raises(cls) as info:
            _wire.task_status(reply, task_id=GET.task_id, req_key=GET.req_key)
        err = info.value
        assert type(err) is cls
        assert err.task_id == "7418049665255653414" and err.request_id == "rid" and err.code == status
        assert err.retryable is False
        assert "7418049665255653414" in str(err)
        _err_attrs_ok(err)


def test_unknown_status_or_empty_data_is_a_protocol_error() -> None:
    for data in ({"status": "running"}, {}, {"binary_data_base64": None, "image_urls": []}):
        reply = _wire.parse_service_reply(200, json.dumps({"code": 10000, "data": data}).encode(), GET)
        with pytest.raises(ProtocolError):
            _wire.task_status(reply, task_id=GET.task_id, req_key=GET.req_key)
    # data: null on a 10000 reply is an empty payload, not a crash
    reply = _wire.parse_service_reply(200, b'{"code":10000,"data":null}', GET)
    assert reply.data == {}


def test_submit_reply_without_task_id_is_a_protocol_error() -> None:
    reply = _wire.parse_service_reply(200, b'{"code":10000,"data":{},"request_id":"r"}', SUBMIT)
    with pytest.raises(ProtocolError) as info:
        _wire.submitted_task_id(reply)
    assert info.value.request_id == "r"
    numeric = _wire.parse_service_reply(200, b'{"code":10000,"data":{"task_id":7418048504813240370}}', SUBMIT)
    assert _wire.submitted_task_id(numeric) == "7418048504813240370"


# --- the reference §4.4 bodies --------------------------------------------------------------------

def test_reference_error_behaviour_bodies() -> None:
    ok = _wire.parse_service_reply(*REF_CASES[0], SUBMIT)
    assert _wire.submitted_task_id(ok) == "1" and ok.time_elapsed == "1ms"

    queued = _wire.parse_service_reply(*REF_CASES[1], GET)
    assert _wire.task_status(queued, task_id=GET.task_id, req_key=GET.req_key) == "in_queue" and queued.request_id is None

    with pytest.raises(RateLimitError) as rate:
        _wire.parse_service_reply(*REF_CASES[2], SUBMIT)
    assert type(rate.value) is RateLimitError
    assert (rate.value.code, rate.value.status_code, rate.value.request_id) == (50429, 429, "r")
    assert rate.value.retryable is True
    assert "Request Has Reached API Limit" in rate.value.message

    with pytest.raises(ContentRiskError) as risk:
        _wire.parse_service_reply(*REF_CASES[3], SUBMIT)
    assert (risk.value.code, risk.value.status_code, risk.value.retryable) == (50413, 400, False)
    assert risk.value.message == "Post Text Risk Not Pass"

    with pytest.raises(SignatureError) as sig:
        _wire.parse_service_reply(*REF_CASES[4], SUBMIT)
    assert (sig.value.code, sig.value.status_code, sig.value.request_id) == ("SignatureDoesNotMatch", 401, "r")
    assert sig.value.message == "x" and sig.value.retryable is False
    assert isinstance(sig.value, AuthError)
    for err in (rate.value, risk.value, sig.value):
        _err_attrs_ok(err)


def test_access_denied_message_is_readable_utf8() -> None:
    with pytest.raises(AuthError) as info:
        _wire.parse_service_reply(401, ACCESS_DENIED, SUBMIT)
    err = info.value
    assert err.code == 50400 and err.request_id == "20240101000000ABCDEF" and err.status_code == 401
    assert str(err).startswith("Access Denied: Internal Error")
    _err_attrs_ok(err)


def test_gateway_error_wins_over_the_service_fields() -> None:
    """``ResponseMetadata.Error`` is checked first, even when a service ``code`` is present too."""
    body = json.dumps({"ResponseMetadata": {"RequestId": "g", "Error": {"Code": "InvalidAccessKey", "Message": "bad"}},
                       "code": 10000, "data": {"task_id": "1"}}).encode()
    with pytest.raises(AuthError) as info:
        _wire.parse_service_reply(401, body, GET)
    assert type(info.value) is AuthError and info.value.task_id == GET.task_id
    # A ResponseMetadata without an Error is not an error.
    fine = json.dumps({"ResponseMetadata": {"RequestId": "g", "Error": {"Code": ""}}, "code": 10000,
                       "data": {"task_id": "1"}}).encode()
    assert _wire.submitted_task_id(_wire.parse_service_reply(200, fine, SUBMIT)) == "1"
    # Only a numeric CodeN: still an error, carried as its string.
    coden = json.dumps({"ResponseMetadata": {"Error": {"CodeN": 100010}}}).encode()
    with pytest.raises(APIError) as only_n:
        _wire.parse_service_reply(401, coden, SUBMIT)
    assert only_n.value.code == "100010"


def test_done_with_failure_code_marks_the_task_failed() -> None:
    """A GetResult error whose data says done reports the TASK's failure (post-generation moderation)."""
    body = b'{"code":50511,"data":{"status":"done"},"message":"Post Img Risk Not Pass","request_id":"r"}'
    with pytest.raises(ContentRiskError) as info:
        _wire.parse_service_reply(400, body, GET)
    err = info.value
    assert err.resubmittable is True and err.retryable is False  # a new submit can pass; this one stays failed
    assert err.task_failed is True
    assert err.task_id == GET.task_id and err.req_key == "saliency_seg"
    with pytest.raises(ServerError) as not_done:
        _wire.parse_service_reply(500, b'{"code":50500,"data":null,"message":"Internal Error"}', GET)
    assert not_done.value.task_failed is False


# --- the IVA document: the OpenAPI envelope ----------------------------------------------------------------

def test_iva_document_envelope_with_error_is_raised() -> None:
    iva = _wire.build_iva_upload("image", "task-1", name="a.jpg", url="https://x/a.jpg")
    with pytest.raises(APIError) as info:
        _wire.parse_openapi_reply(400, IVA_DOC_IMAGE_REPLY.encode(), iva)
    err = info.value
    assert err.code == "{ErrorCode}" and err.message == "{ErrorMessage}"
    assert err.request_id == "20220214145936010211209131054BC6F2" and err.task_id == "task-1"
    real = IVA_DOC_IMAGE_REPLY.replace("{ErrorCode}", "InvalidParameter").replace("{ErrorMessage}",
                                                                                 "task id can not be null")
    with pytest.raises(InvalidArgumentError) as inv:
        _wire.parse_openapi_reply(400, real.encode(), iva)
    assert inv.value.message == "task id can not be null"


@pytest.mark.parametrize(("body", "key"), [(IVA_DOC_IMAGE_REPLY, "ImageID"), (IVA_DOC_VIDEO_REPLY, "VideoID")])
def test_iva_document_envelope_success(body: str, key: str) -> None:
    obj = json.loads(body)
    del obj["ResponseMetadata"]["Error"]
    reply = _wire.parse_openapi_reply(200, json.dumps(obj).encode())
    assert reply.result[key] == "xxxx-xxxx"
    assert reply.request_id == "20220214145936010211209131054BC6F2"
    with pytest.raises(ProtocolError):
        _wire.parse_openapi_reply(200, json.dumps({"ResponseMetadata": {"RequestId": "r"}}).encode())


# --- not the documented JSON -----------------------------------------------------------------------

@pytest.mark.parametrize(("status", "body", "retryable"), [
    (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", True),
    (500, b"<html><body><h1>500 Internal Server Error</h1></body></html>", True),
    (200, b'{"code": 10000, "data": {"status": "gener', False),
    (200, b"", False),
    (504, b"upstream request timeout", True),
    (403, "拒绝访问".encode(), False),
    (200, b"\xff\xfe\x00garbage", False),
])
def test_non_json_bodies_are_protocol_errors_with_status_and_snippet(status: int, body: bytes, retryable: bool) -> None:
    with pytest.raises(ProtocolError) as info:
        _wire.parse_service_reply(status, body, GET)
    err = info.value
    assert err.status_code == status
    assert err.snippet == _wire.snippet(body)
    assert f"HTTP {status}" in err.message
    assert err.retryable is retryable
    assert err.task_id == GET.task_id
    if body and body.isascii():
        assert body.decode()[:20] in str(err)
    _err_attrs_ok(err)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"ok"', b"null", b'{"message":"no code"}', b'{"code":"10000"}',
                                  b'{"code":true}', b'{"code":10000,"data":[1]}'])
def test_json_that_is_not_the_envelope_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        _wire.parse_service_reply(200, body, GET)
    assert info.value.status_code == 200
    _err_attrs_ok(info.value)


def test_snippet_is_short_and_printable() -> None:
    assert _wire.snippet(b"x" * 1000) == "x" * 200 + "…"
    assert _wire.snippet("中".encode() * 100, 10).startswith("中中中")  # a cut multibyte char is replaced, no crash
    assert _wire.snippet(b"") == ""


# --- the code table ---------------------------------------------------------------------------------

INT_CODES: list[tuple[int, int, type[APIError], bool]] = [
    # (code, HTTP, class, resubmittable) as the documents' code tables give them
    (50200, 400, InvalidArgumentError, False), (50201, 400, InvalidArgumentError, False),
    (50204, 400, InvalidArgumentError, False), (50205, 400, InvalidArgumentError, False),
    (50206, 400, InvalidArgumentError, False), (50207, 400, InvalidArgumentError, False),
    (50213, 400, InvalidArgumentError, False), (50215, 400, InvalidArgumentError, False),
    (60102, 400, InvalidArgumentError, False),
    (50400, 401, AuthError, False), (50402, 404, AuthError, False),
    (50411, 400, ContentRiskError, False), (50412, 400, ContentRiskError, False),
    (50413, 400, ContentRiskError, False), (50511, 400, ContentRiskError, True),
    (50512, 400, ContentRiskError, False), (50513, 400, ContentRiskError, False),
    (50514, 400, ContentRiskError, False), (50516, 400, ContentRiskError, True),
    (50517, 400, ContentRiskError, True), (50518, 400, ContentRiskError, False),
    (50519, 400, ContentRiskError, True), (50520, 400, ContentRiskError, False),
    (50521, 400, ContentRiskError, False), (50522, 400, ContentRiskError, False),
    (50429, 429, RateLimitError, True), (50430, 429, ConcurrencyLimitError, True),
    (50500, 500, ServerError, True), (50501, 500, ServerError, True),
    (12345, 400, APIError, False),
]


@pytest.mark.parametrize(("code", "http", "cls", "resubmittable"), INT_CODES, ids=[str(c[0]) for c in INT_CODES])
def test_business_codes(code: int, http: int, cls: type[APIError], resubmittable: bool) -> None:
    body = json.dumps({"code": code, "data": None, "message": "消息 message", "request_id": "rid", "status": code,
                       "time_elapsed": "1ms"}, ensure_ascii=False).encode()
    with pytest.raises(APIError) as info:
        _wire.parse_service_reply(http, body, SUBMIT)
    err = info.value
    assert type(err) is cls
    assert (err.code, err.status_code, err.request_id, err.resubmittable) == (code, http, "rid", resubmittable)
    assert err.retryable is (code in (50429, 50430, 50500, 50501))  # the same request may pass if sent again
    assert err.message.startswith("消息 message")
    assert err.req_key == "saliency_seg"
    _err_attrs_ok(err)


GATEWAY_CODES: list[tuple[str, type[APIError]]] = [
    ("SignatureDoesNotMatch", SignatureError), ("InvalidTimestamp", SignatureError),
    ("RequestExpired", SignatureError), ("MissingAuthenticationToken", SignatureError),
    ("InvalidAuthorization", SignatureError), ("InvalidAccessKey", AuthError), ("AccessDenied", AuthError),
    ("InvalidActionOrVersion", InvalidArgumentError), ("InvalidParameter", InvalidArgumentError),
    ("MissingParameter", InvalidArgumentError), ("FlowLimitExceeded", RateLimitError),
    ("InternalError", ServerError), ("ServiceUnavailable", ServerError), ("SomethingNew", APIError),
]


@pytest.mark.parametrize(("code", "cls"), GATEWAY_CODES, ids=[c[0] for c in GATEWAY_CODES])
def test_gateway_codes(code: str, cls: type[APIError]) -> None:
    body = json.dumps({"ResponseMetadata": {"RequestId": "g", "Action": "CVSync2AsyncGetResult",
                                            "Error": {"Code": code, "Message": "m"}}}).encode()
    with pytest.raises(APIError) as info:
        _wire.parse_service_reply(400, body, GET)
    assert type(info.value) is cls
    assert error_class_for_code(code) is cls
    assert info.value.code == code and info.value.request_id == "g" and info.value.task_id == GET.task_id


def test_code_names_are_added_to_messages_once() -> None:
    assert make_api_error(50429, "Request Has Reached API Limit").message == (
        "Request Has Reached API Limit [ECReqLimit]")
    assert make_api_error(50429, "").message == "ECReqLimit"
    assert make_api_error(50429, "x [ECReqLimit]").message == "x [ECReqLimit]"


# --- request builders ---------------------------------------------------------------------------------

def test_build_submit_body_and_flags() -> None:
    params: dict[str, Any] = {"prompt": "一只猫", "req_key": "ignored", "seed": 1}
    req = _wire.build_submit("jimeng_t2i_v30", params)
    assert req.body == '{"req_key":"jimeng_t2i_v30","prompt":"一只猫","seed":1}'.encode()
    assert params["req_key"] == "ignored"  # the caller's dict is not touched
    assert (req.action, req.version, req.service, req.content_type) == (
        "CVSync2AsyncSubmitTask", "2022-08-31", "cv", "application/json")
    assert req.idempotent is False and req.task_id is None
    assert req.query == {"Action": "CVSync2AsyncSubmitTask", "Version": "2022-08-31"}


def test_build_get_result_matches_the_sync2async_document_request() -> None:
    logo = LogoInfo(add_logo=True, position=0, language=0, opacity=0.3, logo_text_content="这里是明水印内容")
    req = _wire.build_get_result("saliency_seg", "7418049665255653414", return_url=True, logo_info=logo)
    body = json.loads(req.body)
    assert isinstance(body["req_json"], str)  # a JSON *string*, not an object
    assert json.loads(body["req_json"]) == json.loads(SYNC2ASYNC_GET_RESULT_REQUEST["req_json"])
    assert {k: v for k, v in body.items() if k != "req_json"} == {
        "req_key": "saliency_seg", "task_id": "7418049665255653414"}
    assert "这里是明水印内容".encode() in req.body
    assert req.idempotent is True and req.task_id == "7418049665255653414"


def test_build_get_result_matches_the_portrait_document_request() -> None:
    req = _wire.build_get_result("img2img_anime_accelerated_maintain_id", "<任务提交接口返回task_id>",
                                 logo_info=LogoInfo(position=2, language=0, opacity=1))
    body = json.loads(req.body)
    assert json.loads(body["req_json"]) == json.loads(PORTRAIT_GET_RESULT_REQUEST["req_json"])
    assert body["task_id"] == PORTRAIT_GET_RESULT_REQUEST["task_id"]


def test_get_result_options() -> None:
    assert "req_json" not in json.loads(_wire.build_get_result("k", "1").body)
    assert json.loads(json.loads(_wire.build_get_result("k", "1", return_url=False).body)["req_json"]) == {
        "return_url": False}
    meta = AigcMeta(producer_id="p1", content_producer="cp")
    conf = json.loads(_wire.req_json(aigc_meta=meta) or "")
    assert conf == {"aigc_meta": {"producer_id": "p1", "content_producer": "cp"}}
    assert _wire.req_json() is None


def test_build_cancel() -> None:
    req = _wire.build_cancel("saliency_seg", "42")
    assert (req.action, req.version) == ("CVCancelTask", "2024-06-06")
    assert json.loads(req.body) == {"req_key": "saliency_seg", "task_id": "42"}
    assert req.idempotent is True


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"position": 4}, "logo_info.position"), ({"language": 2}, "logo_info.language"),
    ({"opacity": 1.5}, "logo_info.opacity"), ({"opacity": -0.1}, "logo_info.opacity"),
    ({"opacity": "0.3"}, "logo_info.opacity"),
])
def test_logo_info_validation(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        LogoInfo(**kwargs)
    assert info.value.field == field and isinstance(info.value, ValueError)
    _err_attrs_ok(info.value)


def test_build_iva_upload_video_by_url_and_validation() -> None:
    req = _wire.build_iva_upload("video", "t1", name="clip.mp4", url="https://x/clip.mp4", desc="d",
                                 algo_params={"k": 1}, boundary="b0undary")
    assert (req.action, req.version, req.service) == ("AddAsyncTaskVideoData", "2022-05-13", "iva")
    assert req.content_type == "multipart/form-data; boundary=b0undary"
    assert req.idempotent is False
    assert b'name="VideoFile"' not in req.body
    start = req.body.index(b"\r\n\r\n") + 4
    request = json.loads(req.body[start:req.body.index(b"\r\n--b0undary--")])
    assert request == {"TaskID": "t1", "Video": {"Name": "clip.mp4", "Source": "url", "Url": "https://x/clip.mp4",
                                                 "Desc": "d"}, "AlgoParamConf": {"k": 1}}
    file_req = _wire.build_iva_upload("video", "t1", name="c.mp4", file=("c.mp4", b"\x00\x01", "video/mp4"))
    assert b'name="VideoFile"; filename="c.mp4"' in file_req.body
    for kwargs, field in (({"task_id": "", "name": "a", "url": "https://x"}, "TaskID"),
                          ({"task_id": "t", "name": "", "url": "https://x"}, "Name"),
                          ({"task_id": "t", "name": "a"}, "Source"),
                          ({"task_id": "t", "name": "a", "url": "https://x", "file": ("a", b"1", "image/png")},
                           "Source")):
        with pytest.raises(ValidationError) as info:
            _wire.build_iva_upload("image", **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field


def test_multipart_quotes_filenames_and_random_boundaries_differ() -> None:
    body, _ = _wire.multipart([("f", ('a"b\r\nc.jpg', b"x", "image/jpeg"))], "B")
    assert b'filename="a%22bc.jpg"' in body
    _, c1 = _wire.multipart([("a", "1")])
    _, c2 = _wire.multipart([("a", "1")])
    assert c1 != c2 and c1.startswith("multipart/form-data; boundary=volcnb")


def test_dumps_and_response_data() -> None:
    assert _wire.dumps({"a": "中", "b": [1, 2]}) == '{"a":"中","b":[1,2]}'.encode()
    assert _wire.response_data({"response_data": '{"notes":["x"]}'}) == {"notes": ["x"]}
    assert _wire.response_data({"response_data": "not json"}) == "not json"
    assert _wire.response_data({}) is None


def test_the_portrait_documents_example_warns_and_an_unused_style_image_is_not_refused() -> None:
    from volcnb.protocol.catalog import get_capability

    cap = get_capability("img2img_anime_accelerated_maintain_id")
    assert cap is not None
    example = {"positive_prompt": "1girl,beautiful,looking at viewer,portrait,", "image_urls": ["http://127.0.0.1/a"],
               "hyper_switch": True, "seed": -1, "step": 18, "cfg": 4.5, "face_image": "uri://binary_data?index=0",
               "style_image": "uri://binary_data?index=1", "face_switch": True, "facestyle_switch": True,
               "width": 1000, "height": 1000}  # the 人像保持 document's submit example: one image, style_image index 1
    issues = cap.check(example, 1)
    assert [i.field for i in issues if i.severity == "error"] == []
    assert {"hyper_switch", "style_image"} <= {i.field for i in issues if i.severity == "warning"}
    used = cap.check({**example, "hyper_switch": False, "style_switch": True, "facestyle_switch": False}, 1)
    assert [i.field for i in used if i.severity == "error"] == ["style_image"]  # read, so the index must exist
