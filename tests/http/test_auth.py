"""V4 signing (volcnb._auth): byte-identical to the official SDK's ``SignerV4``.

The four reference vectors of ``shared/reference/volcengine-api.md`` §3 are checked through the pure
:func:`volcnb._auth.sign`, through :class:`volcnb.VolcAuth` on a real ``httpx.Request``, and on the wire of an
``httpx.AsyncClient``; then a Hypothesis property compares us with ``volcengine.auth.SignerV4.SignerV4.sign``
header for header over a few hundred generated requests.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import hmac
import json
import logging
import string
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from volcnb import Credentials, VolcAuth
from volcnb.http.credentials import find_credentials
from volcnb.protocol import wire as _wire
from volcnb.protocol.signing import (
    DEFAULT_CONTENT_TYPE,
    EMPTY_SHA256,
    canonical_query,
    canonical_request,
    canonical_uri,
    format_xdate,
    parse_authorization,
    sign,
    signable_headers,
    signature,
    signing_key,
)

AK, SK = "AKTESTEXAMPLE", "SKTESTEXAMPLE"
XDATE = "20250101T000000Z"
T2025 = float(calendar.timegm((2025, 1, 1, 0, 0, 0)))  # 2025-01-01T00:00:00Z
REGION = "cn-north-1"
CREDS = Credentials(AK, SK)


# --- the reference vectors (§3), verbatim ---------------------------------------------------------

@dataclass(frozen=True)
class Vector:
    name: str
    method: str
    host: str
    query: list[tuple[str, str]]
    content_type: str | None
    body: bytes
    service: str
    body_sha256: str
    authorization: str
    canonical: str
    string_to_sign: str
    token: str | None = None
    extra_headers: list[tuple[str, str]] = field(default_factory=list)


MULTIPART_BODY = (
    b'--volcboundary0123456789abcdef\r\nContent-Disposition: form-data; name="Request"\r\n\r\n'
    b'{"TaskID":"task-123","Image":{"Name":"a.jpg","Source":"file"}}\r\n'
    b'--volcboundary0123456789abcdef\r\nContent-Disposition: form-data; name="ImageFile"; filename="a.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0FAKEJPEG\r\n--volcboundary0123456789abcdef--\r\n"
)

VECTORS = [
    Vector(
        name="(i) submit",
        method="POST",
        host="visual.volcengineapi.com",
        query=[("Action", "CVSync2AsyncSubmitTask"), ("Version", "2022-08-31")],
        content_type="application/json",
        body=b'{"req_key": "saliency_seg", "image_urls": ["https://example.com/a.jpg"]}',
        service="cv",
        body_sha256="83c7a79def3ad37790c8756a70e4f15c233fe3d2c32ddd27d8363fcb3527b2cd",
        authorization="HMAC-SHA256 Credential=AKTESTEXAMPLE/20250101/cn-north-1/cv/request, "
        "SignedHeaders=content-type;host;x-content-sha256;x-date, "
        "Signature=cb7d7c46dc344c44b4eaebbb25c2182c6b5fe8a48baf710a65ae8b5a6af834e8",
        canonical="POST\n/\nAction=CVSync2AsyncSubmitTask&Version=2022-08-31\ncontent-type:application/json\n"
        "host:visual.volcengineapi.com\n"
        "x-content-sha256:83c7a79def3ad37790c8756a70e4f15c233fe3d2c32ddd27d8363fcb3527b2cd\n"
        "x-date:20250101T000000Z\n\ncontent-type;host;x-content-sha256;x-date\n"
        "83c7a79def3ad37790c8756a70e4f15c233fe3d2c32ddd27d8363fcb3527b2cd",
        string_to_sign="HMAC-SHA256\n20250101T000000Z\n20250101/cn-north-1/cv/request\n"
        "e35b469237b6d264ebc264474355eb34e78711f9084a423adb6184637dbaab83",
    ),
    Vector(
        name="(ii) get_result",
        method="POST",
        host="visual.volcengineapi.com",
        query=[("Action", "CVSync2AsyncGetResult"), ("Version", "2022-08-31")],
        content_type="application/json",
        body=b'{"req_key": "saliency_seg", "task_id": "7392616336519610409"}',
        service="cv",
        body_sha256="5cca90f7c7708c91a6bb744ba67d8bae356658062da3bd51120b7ce1f5ac4406",
        authorization="HMAC-SHA256 Credential=AKTESTEXAMPLE/20250101/cn-north-1/cv/request, "
        "SignedHeaders=content-type;host;x-content-sha256;x-date, "
        "Signature=29284bfb38380e11aa034c51c9e38f2c0516a6e1874a79f0874b4e7798a94ee1",
        canonical="POST\n/\nAction=CVSync2AsyncGetResult&Version=2022-08-31\ncontent-type:application/json\n"
        "host:visual.volcengineapi.com\n"
        "x-content-sha256:5cca90f7c7708c91a6bb744ba67d8bae356658062da3bd51120b7ce1f5ac4406\n"
        "x-date:20250101T000000Z\n\ncontent-type;host;x-content-sha256;x-date\n"
        "5cca90f7c7708c91a6bb744ba67d8bae356658062da3bd51120b7ce1f5ac4406",
        string_to_sign="HMAC-SHA256\n20250101T000000Z\n20250101/cn-north-1/cv/request\n"
        "ae08d223b1958a748135b47ca0a7b002be38d4e4866ef5a7a431ac96f5e79e0f",
    ),
    Vector(
        name="(iii) iva multipart",
        method="POST",
        host="open.volcengineapi.com",
        query=[("Action", "AddAsyncTaskImageData"), ("Version", "2022-05-13")],
        content_type="multipart/form-data; boundary=volcboundary0123456789abcdef",
        body=MULTIPART_BODY,
        service="iva",
        body_sha256="5cf4488ed173796cbd7d38583aacea820becd4c91967ba8e614e8f127bb273eb",
        authorization="HMAC-SHA256 Credential=AKTESTEXAMPLE/20250101/cn-north-1/iva/request, "
        "SignedHeaders=content-type;host;x-content-sha256;x-date, "
        "Signature=3d9dcf22fa2a8ea3f98f9b72fc1336f151c19bb0268b64788cf7cd68f0149326",
        canonical="POST\n/\nAction=AddAsyncTaskImageData&Version=2022-05-13\n"
        "content-type:multipart/form-data; boundary=volcboundary0123456789abcdef\nhost:open.volcengineapi.com\n"
        "x-content-sha256:5cf4488ed173796cbd7d38583aacea820becd4c91967ba8e614e8f127bb273eb\n"
        "x-date:20250101T000000Z\n\ncontent-type;host;x-content-sha256;x-date\n"
        "5cf4488ed173796cbd7d38583aacea820becd4c91967ba8e614e8f127bb273eb",
        string_to_sign="HMAC-SHA256\n20250101T000000Z\n20250101/cn-north-1/iva/request\n"
        "c3d96928b37d16172df7c269e6bf80306087ef14a4bade836f4ceec1b352044d",
    ),
    Vector(
        name="(iv) GET, query encoding, STS token",
        method="GET",
        host="visual.volcengineapi.com",
        query=[("Version", "2022-08-31"), ("Action", "CVGetResult"), ("b", "a b/c*~+é"), ("A", "1")],
        content_type=None,
        body=b"",
        service="cv",
        body_sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        authorization="HMAC-SHA256 Credential=AKTESTEXAMPLE/20250101/cn-north-1/cv/request, "
        "SignedHeaders=host;x-content-sha256;x-date;x-security-token, "
        "Signature=ca4f9e490b1f5ccfe233e1500806eecce1e17a6e80f65a30fa2c39b88be851d1",
        canonical="GET\n/\nA=1&Action=CVGetResult&Version=2022-08-31&b=a%20b%2Fc%2A~%2B%C3%A9\n"
        "host:visual.volcengineapi.com\n"
        "x-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "x-date:20250101T000000Z\nx-security-token:STSTOKENEXAMPLE\n\n"
        "host;x-content-sha256;x-date;x-security-token\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        string_to_sign="HMAC-SHA256\n20250101T000000Z\n20250101/cn-north-1/cv/request\n"
        "cac7fa4f474ed9bc42c2830e715809085a912da04d32ee7e8b1b89766c70a4de",
        token="STSTOKENEXAMPLE",
        extra_headers=[("User-Agent", "volc-sdk-python/v1.0.229")],
    ),
]
VECTOR_IDS = [v.name.split(" ")[0] for v in VECTORS]


def _headers(v: Vector) -> list[tuple[str, str]]:
    out = [("Host", v.host)]
    if v.content_type is not None:
        out.append(("Content-Type", v.content_type))
    return out + v.extra_headers


def _recompute_canonical(request: httpx.Request) -> str:
    """The canonical request that VolcAuth signed, rebuilt from the request as it will be sent."""
    parsed = parse_authorization(request.headers["Authorization"])
    assert parsed is not None
    _, _, names, _ = parsed
    available = signable_headers(request.headers.multi_items())
    text, _ = canonical_request(request.method, request.url.path, request.url.params.multi_items(),
                                {n: available[n] for n in names}, request.headers["X-Content-Sha256"])
    return text


def _string_to_sign(xdate: str, scope: str, canonical: str) -> str:
    return "\n".join(["HMAC-SHA256", xdate, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def test_derived_signing_keys_match_reference() -> None:
    k_date = hmac.new(SK.encode(), b"20250101", hashlib.sha256).digest()
    assert k_date.hex() == "393d6ae8357009a876b078b60166868fe29dea7ca1b426187b28c21538a3a3e5"
    k_region = hmac.new(k_date, b"cn-north-1", hashlib.sha256).digest()
    assert k_region.hex() == "2264688d6c4418257f6f66244e6d80701fa64b1822e7a9880c2c43227c39a2a5"
    assert signing_key(SK, "20250101", REGION, "cv").hex() == (
        "bb9583aa6659f55f7722bd46a2976609245b80f132b86b7208da9184cc4ff968")
    assert signing_key(SK, "20250101", REGION, "iva").hex() == (
        "400012e42a46deba25b7d3b6b542602de6f6fef68f62b33671eb769a4b4d5482")


def test_pinned_clock_formats_the_reference_xdate() -> None:
    assert format_xdate(T2025) == XDATE
    assert format_xdate(T2025 + 86399) == "20250101T235959Z"


@pytest.mark.parametrize("v", VECTORS, ids=VECTOR_IDS)
def test_vector_through_pure_sign(v: Vector) -> None:
    creds = Credentials(AK, SK, v.token)
    added = sign(method=v.method, path="/", query=v.query, headers=_headers(v), body=v.body, credentials=creds,
                 region=REGION, service=v.service, xdate=XDATE)
    assert added["Authorization"] == v.authorization
    assert added["X-Content-Sha256"] == v.body_sha256 == hashlib.sha256(v.body).hexdigest()
    assert added["X-Date"] == XDATE
    assert added.get("X-Security-Token") == v.token
    assert "Content-Type" not in added  # given for POSTs, and a GET never gets one
    # The intermediate steps, exactly as the reference prints them.
    signed = signable_headers([*_headers(v), *added.items()])
    canonical, names = canonical_request(v.method, "/", v.query, signed, v.body_sha256)
    assert canonical == v.canonical
    assert v.authorization.endswith(f"SignedHeaders={names}, Signature={signature(SK, XDATE, REGION, v.service, canonical)}")
    assert _string_to_sign(XDATE, f"20250101/{REGION}/{v.service}/request", canonical) == v.string_to_sign


@pytest.mark.parametrize("v", VECTORS, ids=VECTOR_IDS)
def test_vector_through_volcauth_on_httpx_request(v: Vector) -> None:
    auth = VolcAuth(Credentials(AK, SK, v.token), service=v.service, clock=lambda: T2025)
    headers = dict(v.extra_headers)
    if v.content_type is not None:
        headers["Content-Type"] = v.content_type
    request = httpx.Request(v.method, f"https://{v.host}/", params=v.query, content=v.body or None,
                            headers=headers)
    flow = auth.sync_auth_flow(request)
    signed = next(flow)
    assert signed is request
    assert signed.headers["Authorization"] == v.authorization
    assert signed.headers["X-Content-Sha256"] == v.body_sha256
    assert signed.headers["X-Date"] == XDATE
    assert signed.headers.get("X-Security-Token") == v.token
    assert signed.content == v.body
    assert _recompute_canonical(signed) == v.canonical
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200))


@pytest.mark.parametrize("v", VECTORS, ids=VECTOR_IDS)
async def test_vector_on_the_wire_of_an_async_client(v: Vector) -> None:
    """What actually leaves ``httpx.AsyncClient`` (default headers added, body streamed) carries the same signature."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 10000})

    auth = VolcAuth(Credentials(AK, SK, v.token), service=v.service, clock=lambda: T2025)
    headers = dict(v.extra_headers)
    if v.content_type is not None:
        headers["Content-Type"] = v.content_type
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), auth=auth) as http:
        await http.request(v.method, f"https://{v.host}/", params=v.query, content=v.body or None, headers=headers)
    (wire,) = seen
    assert wire.content == v.body
    assert wire.headers["Authorization"] == v.authorization
    assert wire.headers["X-Content-Sha256"] == v.body_sha256
    assert _recompute_canonical(wire) == v.canonical


def test_multipart_vector_body_is_byte_exact() -> None:
    fields: list[tuple[str, str | tuple[str, bytes, str]]] = [
        ("Request", '{"TaskID":"task-123","Image":{"Name":"a.jpg","Source":"file"}}'),
        ("ImageFile", ("a.jpg", b"\xff\xd8\xff\xe0FAKEJPEG", "image/jpeg")),
    ]
    body, ctype = _wire.multipart(fields, "volcboundary0123456789abcdef")
    assert body == MULTIPART_BODY and len(body) == 322
    assert ctype == "multipart/form-data; boundary=volcboundary0123456789abcdef"
    # The IVA request builder produces exactly the SDK's body for the same upload.
    req = _wire.build_iva_upload("image", "task-123", name="a.jpg", file=("a.jpg", b"\xff\xd8\xff\xe0FAKEJPEG",
                                 "image/jpeg"), boundary="volcboundary0123456789abcdef")
    assert req.body == MULTIPART_BODY
    assert req.content_type == ctype
    assert (req.action, req.version, req.service) == ("AddAsyncTaskImageData", "2022-05-13", "iva")
    added = sign(method="POST", path="/", query=list(req.query.items()),
                 headers=[("Host", "open.volcengineapi.com"), ("Content-Type", req.content_type)], body=req.body,
                 credentials=CREDS, region=REGION, service=req.service, xdate=XDATE)
    assert added["Authorization"] == VECTORS[2].authorization


def test_json_vectors_match_what_the_sdk_serialises() -> None:
    """The SDK's ``json.dumps(form)`` bytes are the vector bodies; our compact bytes differ but are hashed as sent."""
    form = {"req_key": "saliency_seg", "image_urls": ["https://example.com/a.jpg"]}
    assert json.dumps(form).encode() == VECTORS[0].body
    ours = _wire.build_submit("saliency_seg", {"image_urls": ["https://example.com/a.jpg"]})
    assert ours.body == b'{"req_key":"saliency_seg","image_urls":["https://example.com/a.jpg"]}'
    added = sign(method="POST", path="/", query=list(ours.query.items()),
                 headers=[("Host", "visual.volcengineapi.com"), ("Content-Type", "application/json")],
                 body=ours.body, credentials=CREDS, region=REGION, service="cv", xdate=XDATE)
    assert added["X-Content-Sha256"] == hashlib.sha256(ours.body).hexdigest()


# --- smaller units --------------------------------------------------------------------------------

def test_canonical_query_sorts_by_key_and_keeps_repeated_keys_in_order() -> None:
    items = [("b", "2"), ("A", "x y"), ("a", "1"), ("b", "1"), ("Action", "é/*")]
    assert canonical_query(items) == "A=x%20y&Action=%C3%A9%2F%2A&a=1&b=2&b=1"
    assert canonical_query([]) == ""


def test_canonical_uri() -> None:
    assert canonical_uri("") == "/"
    assert canonical_uri("/") == "/"
    assert canonical_uri("/a b/é+") == "/a%20b/%C3%A9%2B"


def test_signable_headers_picks_sdk_set_and_strips_default_ports() -> None:
    got = signable_headers([("Host", "visual.volcengineapi.com:443"), ("Content-Type", "application/json"),
                            ("Content-Length", "3"), ("User-Agent", "x"), ("X-Custom", "1"),
                            ("Content-Md5", "abc"), ("Accept", "*/*")])
    assert got == {"host": "visual.volcengineapi.com", "content-type": "application/json", "x-custom": "1",
                   "content-md5": "abc"}
    assert signable_headers([("host", "127.0.0.1:80")])["host"] == "127.0.0.1"
    assert signable_headers([("host", "127.0.0.1:8000")])["host"] == "127.0.0.1:8000"


def test_non_get_without_content_type_gets_the_sdk_default() -> None:
    added = sign(method="DELETE", path="/", query=[], headers=[("Host", "h")], body=b"", credentials=CREDS,
                 region=REGION, service="cv", xdate=XDATE)
    assert added["Content-Type"] == DEFAULT_CONTENT_TYPE
    assert "content-type;host;" in added["Authorization"]
    get = sign(method="GET", path="/", query=[], headers=[("Host", "h")], body=b"", credentials=CREDS,
               region=REGION, service="cv", xdate=XDATE)
    assert "Content-Type" not in get and get["X-Content-Sha256"] == EMPTY_SHA256


def test_volcauth_resigns_a_reused_request_and_drops_a_stale_token() -> None:
    """A retried request object is signed afresh: old Authorization/X-Date/X-Security-Token never linger."""
    request = httpx.Request("POST", "https://visual.volcengineapi.com/", params={"Action": "A", "Version": "V"},
                            content=b"{}", headers={"Content-Type": "application/json"})
    next(VolcAuth(Credentials(AK, SK, "TOKEN1"), clock=lambda: T2025).sync_auth_flow(request))
    first = request.headers["Authorization"]
    assert request.headers["X-Security-Token"] == "TOKEN1"
    next(VolcAuth(Credentials(AK, SK), clock=lambda: T2025 + 60).sync_auth_flow(request))
    assert "X-Security-Token" not in request.headers
    assert request.headers["X-Date"] == "20250101T000100Z"
    assert request.headers["Authorization"] != first
    assert len(request.headers.get_list("Authorization")) == 1
    assert "x-security-token" not in request.headers["Authorization"]


def test_parse_authorization_round_trip_and_rejects() -> None:
    parsed = parse_authorization(VECTORS[3].authorization)
    assert parsed == ("AKTESTEXAMPLE", "20250101/cn-north-1/cv/request",
                      ["host", "x-content-sha256", "x-date", "x-security-token"],
                      "ca4f9e490b1f5ccfe233e1500806eecce1e17a6e80f65a30fa2c39b88be851d1")
    for bad in ("", "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=x",
                "HMAC-SHA256 Credential=AK/scope", "HMAC-SHA256 garbage", "HMAC-SHA256 Credential=/s, SignedHeaders=h, "
                "Signature=x", "HMAC-SHA256 Credential=AK/s, SignedHeaders=, Signature=x"):
        assert parse_authorization(bad) is None, bad


# --- secrets never printed ------------------------------------------------------------------------

SECRET = "sk-VERY-SECRET-密钥-0123456789"
TOKEN = "sts-SECRET-TOKEN-abcdef"


def test_credentials_and_auth_repr_hide_secrets() -> None:
    creds = Credentials("AKpublic", SECRET, TOKEN)
    auth = VolcAuth(creds)
    for text in (repr(creds), str(creds), repr(auth), str(auth), f"{creds}", f"{auth!r}"):
        assert SECRET not in text and TOKEN not in text
        assert "AKpublic" in text
    assert "session_token=***" in repr(creds)
    assert "session_token" not in repr(Credentials("AKpublic", SECRET))


def test_signing_logs_nothing_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    request = httpx.Request("POST", "https://visual.volcengineapi.com/", params={"Action": "A", "Version": "V"},
                            content=b"{}", headers={"Content-Type": "application/json"})
    next(VolcAuth(Credentials("AKpublic", SECRET, TOKEN)).sync_auth_flow(request))
    assert SECRET not in request.headers["Authorization"]
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_credentials_from_env(tmp_path: Path) -> None:
    def find(env: dict[str, str]) -> Credentials | None:
        found = find_credentials(environ=env, home=tmp_path)
        return found.credentials if found else None

    assert find({}) is None
    assert find({"VOLC_ACCESSKEY": "a"}) is None
    assert find({"VOLC_ACCESSKEY": "a", "VOLC_SECRETKEY": ""}) is None
    assert find({"VOLC_ACCESSKEY": "a", "VOLC_SECRETKEY": "s", "VOLC_SESSION_TOKEN": ""}) == Credentials("a", "s", None)
    creds = find({"VOLC_ACCESSKEY": "a", "VOLC_SECRETKEY": "s", "VOLC_SESSION_TOKEN": "t"})
    assert creds is not None and creds.session_token == "t"


# --- property: header for header against the official SDK ------------------------------------------

@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The official SDK's signer with its clock pinned through ``SignerV4.get_current_format_date``.

    Returns a holder whose ``xdate`` the test sets per example (module scope: Hypothesis re-runs the body).
    """
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))  # the SDK must never read a developer's ~/.volc
        mp.delenv("VOLC_ACCESSKEY", raising=False)
        mp.delenv("VOLC_SECRETKEY", raising=False)
        from volcengine.auth.SignerV4 import SignerV4

        holder = _Clock()
        mp.setattr(SignerV4, "get_current_format_date", staticmethod(lambda: holder.xdate))
        yield holder


class _Clock:
    xdate = XDATE


_RESERVED = ":/?#[]@!$&'()*+,;= %\"<>\\^`{|}"
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_query_text = st.one_of(_text, st.text(alphabet=_RESERVED + "aZ09-_.~éü中文", max_size=8))
_query_key = st.one_of(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10),
                       st.sampled_from(["Action", "Version", "A", "a", "b", "X-Date", "é", "a b", "k=v&x"]))
_query = st.dictionaries(_query_key, st.one_of(_query_text, st.lists(_query_text, max_size=3)), max_size=5)
_path_segment = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="%?#/\\"),
                        min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))
_path = st.one_of(st.sampled_from(["/", "/api/v1/", "/sim/files/x"]),
                  st.lists(_path_segment, min_size=1, max_size=3).map(lambda segs: "/" + "/".join(segs)))
_header_value = st.text(alphabet=string.ascii_letters + string.digits + "-_.=/+:;, ", min_size=1, max_size=20
                        ).map(str.strip).filter(bool)
_header_name = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=10).map(
    lambda s: "X-" + s.capitalize())
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3), max_leaves=8)


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[str, bytes, str | bytes, str | None]:
    """``(kind, bytes we send, body handed to the SDK, content type or None)``."""
    kind = draw(st.sampled_from(["empty", "json", "multipart"]))
    if kind == "empty":
        ctype = draw(st.sampled_from([None, "application/json", "text/plain; charset=utf-8"]))
        return kind, b"", draw(st.sampled_from(["", b""])), ctype
    if kind == "json":
        obj = draw(st.dictionaries(_text, _json_value, max_size=4))
        if draw(st.booleans()):
            raw = _wire.dumps(obj)  # ours: compact UTF-8
        else:
            raw = json.dumps(obj).encode()  # the SDK's own serialisation
        sdk_body: str | bytes = raw.decode() if draw(st.booleans()) else raw  # the SDK accepts str (UTF-8) or bytes
        return kind, raw, sdk_body, draw(st.sampled_from(["application/json", "application/json; charset=utf-8"]))
    fields: list[tuple[str, str | tuple[str, bytes, str]]] = []
    for i in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            fields.append((f"f{i}", draw(_text)))
        else:
            fields.append((f"file{i}", (draw(_path_segment), draw(st.binary(max_size=40)), "image/jpeg")))
    boundary = draw(st.text(alphabet=string.ascii_letters + string.digits, min_size=8, max_size=30))
    body, ctype = _wire.multipart(fields, boundary)
    return kind, body, body, ctype


@st.composite
def _requests(draw: st.DrawFn) -> dict[str, Any]:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
    scheme, host = draw(st.sampled_from([
        ("https", "visual.volcengineapi.com"), ("https", "open.volcengineapi.com"), ("http", "127.0.0.1:8000"),
        ("https", "visual.volcengineapi.com:443"), ("http", "localhost:80")]))
    extra = draw(st.dictionaries(_header_name, _header_value, max_size=3))
    extra = {k: v for k, v in extra.items()
             if k.lower() not in ("x-date", "x-content-sha256", "x-security-token")}
    if draw(st.booleans()):
        extra["Content-Md5"] = draw(_header_value)
    when = draw(st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2099, 12, 31)))
    return {
        "method": method,
        "scheme": scheme,
        "host": host,
        "path": draw(_path),
        "query": draw(_query),
        "body": draw(_bodies()),
        "extra": extra,
        "ak": draw(st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=20)),
        "sk": draw(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)),
        "token": draw(st.one_of(st.none(), _header_value)),
        "service": draw(st.sampled_from(["cv", "iva"])),
        "region": draw(st.sampled_from(["cn-north-1", "cn-beijing", "ap-southeast-1"])),
        "timestamp": float(calendar.timegm(when.timetuple())),
    }


SIGNATURE_HEADERS = ("X-Date", "X-Content-Sha256", "X-Security-Token", "Authorization", "Content-Type")


@settings(max_examples=250, deadline=None)
@given(case=_requests())
def test_property_matches_official_sdk_signer(sdk: _Clock, case: dict[str, Any]) -> None:
    from volcengine.auth.SignerV4 import SignerV4
    from volcengine.base.Request import Request
    from volcengine.Credentials import Credentials as SdkCredentials

    xdate = format_xdate(case["timestamp"])
    sdk.xdate = xdate
    _kind, raw, sdk_body, ctype = case["body"]
    query: dict[str, str | list[str]] = case["query"]
    items = [(k, x) for k, v in query.items() for x in (v if isinstance(v, list) else [v])]

    # Our request as httpx will send it: the Host header comes from the URL (default ports dropped).
    headers = {"User-Agent": "volcnb-test", **case["extra"]}
    if ctype is not None:
        headers["Content-Type"] = ctype
    url = httpx.URL(f"{case['scheme']}://{case['host']}").copy_with(path=case["path"])
    request = httpx.Request(case["method"], url, params=items, content=raw or None, headers=headers)
    assert request.url.path == case["path"] and request.url.params.multi_items() == items
    host = request.headers["Host"]

    # The same request for the SDK: canonical header names, the query as the SDK's dict (lists allowed).
    r = Request()
    r.method, r.path, r.host = case["method"], case["path"], host
    r.headers = OrderedDict([("Host", host), *headers.items()])
    r.query = OrderedDict(query)
    r.body = sdk_body
    SignerV4.sign(r, SdkCredentials(case["ak"], case["sk"], case["service"], case["region"], case["token"] or ""))
    expected = {k: r.headers.get(k) for k in SIGNATURE_HEADERS}

    creds = Credentials(case["ak"], case["sk"], case["token"])
    added = sign(method=case["method"], path=case["path"], query=items, headers=[("Host", host), *headers.items()],
                 body=raw, credentials=creds, region=case["region"], service=case["service"], xdate=xdate)
    pure = {k: added.get(k, headers.get(k) if k == "Content-Type" else None) for k in SIGNATURE_HEADERS}
    assert pure == expected

    auth = VolcAuth(creds, region=case["region"], service=case["service"], clock=lambda: case["timestamp"])
    signed = next(auth.sync_auth_flow(request))
    via_httpx = {k: signed.headers.get(k) for k in SIGNATURE_HEADERS}
    assert via_httpx == expected
