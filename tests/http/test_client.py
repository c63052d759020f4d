"""The public client against the simulator: every error class, credentials, endpoints, the sync face.

Each class of ``volcnb._exceptions`` is reached THROUGH ``volcnb.Client`` (in-process over ASGI, or over
real HTTP where the fault needs a socket), never by constructing it in the test.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

import volcnb
from volcnb import (
    APIError,
    AuthError,
    Client,
    ConcurrencyLimitError,
    ContentRiskError,
    InvalidArgumentError,
    ProtocolError,
    RateLimitError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    SignatureError,
    SubmitUncertainError,
    Task,
    TaskCancelledError,
    TaskExpiredError,
    TaskNotFoundError,
    TaskTimeoutError,
    TransportError,
    ValidationError,
    VolcError,
    _sync,
)
from volcnb.sim import DEFAULT_ACCESS_KEY as AK
from volcnb.sim import DEFAULT_SECRET_KEY as SK
from volcnb.sim import RISK_IMAGE_COLOR, SimServer, Simulator
from volcnb.sim._server import free_port

SUBMIT = "CVSync2AsyncSubmitTask"
GET_RESULT = "CVSync2AsyncGetResult"
FAST = {k: 0.2 for k in volcnb.CAPABILITIES}
SECRET = "sk-TOP-SECRET-机密-9f8e7d6c"
TOKEN = "sts-TOP-SECRET-TOKEN-1a2b3c"


# --- helpers ------------------------------------------------------------------------------------------

async def _no_sleep(_delay: float) -> None:
    return None


class Recorder:
    """An injected ``RetryPolicy.sleep`` that records the delays and never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Counting(httpx.AsyncBaseTransport):
    """Wraps a transport; remembers every request and the loop it ran on."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []
        self.loops: list[asyncio.AbstractEventLoop] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.loops.append(asyncio.get_running_loop())
        return await self.inner.handle_async_request(request)


def png_b64(size: tuple[int, int] = (160, 128), color: tuple[int, int, int] = (20, 160, 60),
            corner: tuple[int, int, int] | None = None) -> str:
    img = Image.new("RGB", size, color)
    if corner is not None:
        img.paste(corner, (0, 0, 16, 16))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def image(size: tuple[int, int] = (160, 128)) -> Image.Image:
    img = Image.new("RGB", size, (20, 160, 60))
    img.paste((240, 240, 240), (40, 30, 120, 100))
    return img


def sim_client(sim: Simulator, *, max_retries: int = 0, sleep: Any = _no_sleep, ak: str = AK, sk: str = SK,
               **kwargs: Any) -> Client:
    return Client(ak, sk, transport=httpx.ASGITransport(app=sim.app()),
                  retry=RetryPolicy(max_retries=max_retries, sleep=sleep), **kwargs)


def check_error(err: VolcError, *secrets: str) -> None:
    """Every error: the five attributes, a readable message, nothing secret anywhere."""
    for name in ("code", "message", "request_id", "task_id", "retryable"):
        assert hasattr(err, name), name
    assert isinstance(err.retryable, bool)
    assert isinstance(err.message, str) and err.message
    assert err.__cause__ is not err
    texts = [str(err), repr(err), err.message]
    cause: BaseException | None = err.__cause__
    while cause is not None and cause is not err:
        texts += [str(cause), repr(cause)]
        cause = cause.__cause__
    for text in texts:
        assert "b'{" not in text and 'b"{' not in text, text  # never the SDK's bytes repr
        for secret in (SK, SECRET, TOKEN, *secrets):
            if secret != AK:
                assert secret not in text


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    s = Simulator(service_times=FAST, queue_time=0.0, seed=3)
    yield s
    s.close()


# --- authentication errors -------------------------------------------------------------------------------

async def test_wrong_secret_key_is_a_signature_error(fresh_sim: Simulator) -> None:
    rec = Recorder()
    client = sim_client(fresh_sim, sk="not-the-secret", max_retries=5, sleep=rec)
    with pytest.raises(SignatureError) as info:
        await client.get_result("saliency_seg", "7000000000000000001")
    err = info.value
    assert err.code == "SignatureDoesNotMatch" and err.status_code == 401 and err.retryable is False
    assert err.request_id and err.task_id == "7000000000000000001"
    assert rec.delays == []  # a refused signature is not retried
    check_error(err, "not-the-secret")


async def test_stale_xdate_is_a_signature_error() -> None:
    """The server's clock is an hour ahead of ours: our X-Date is outside the allowed skew."""
    sim = Simulator(service_times=FAST, queue_time=0.0, clock=lambda: time.time() + 3600)
    try:
        with pytest.raises(SignatureError) as info:
            await sim_client(sim).submit_task("saliency_seg", {"binary_data_base64": [png_b64()]})
        assert "expired" in info.value.message and sim.counters.submits == 0
        check_error(info.value)
    finally:
        sim.close()


async def test_fresh_signature_accepted_whatever_the_hosts_timezone(fresh_sim: Simulator) -> None:
    """X-Date is UTC: the server must not read it in local time (one of these two zones is always in DST)."""
    old = os.environ.get("TZ")
    try:
        for zone in ("Europe/Berlin", "Australia/Sydney"):
            os.environ["TZ"] = zone
            time.tzset()
            if time.localtime().tm_isdst:
                break
        assert time.localtime().tm_isdst
        reply = await sim_client(fresh_sim).get_result("saliency_seg", "7000000000000000001")
        assert reply.data == {"status": "not_found"}
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


async def test_unknown_access_key_is_an_auth_error(fresh_sim: Simulator) -> None:
    with pytest.raises(AuthError) as info:
        await sim_client(fresh_sim, ak="AKnobodyknows").submit_task("saliency_seg", {})
    err = info.value
    assert type(err) is AuthError and err.code == "InvalidAccessKey" and err.status_code == 401
    assert "AKnobodyknows" in err.message
    check_error(err)


# --- the service said no ---------------------------------------------------------------------------------

async def test_out_of_range_param_with_raw_submit_is_invalid_argument(fresh_sim: Simulator) -> None:
    client = sim_client(fresh_sim, max_retries=3, sleep=(rec := Recorder()))
    with pytest.raises(InvalidArgumentError) as info:
        await client.submit_task("saliency_seg", {"binary_data_base64": [png_b64()], "only_mask": 9})
    err = info.value
    assert err.code == 50200 and err.status_code == 400 and err.retryable is False
    assert "only_mask" in err.message and err.req_key == "saliency_seg"
    assert fresh_sim.counters.submits == 1 and fresh_sim.counters.accepted == 0 and rec.delays == []
    check_error(err)


@pytest.mark.parametrize(("req_key", "params", "code"), [
    ("jimeng_t2i_v30", {"prompt": "一只猫 sim:text-risk", "width": 512, "height": 512}, 50412),
    ("jimeng_t2i_v30", {"prompt": "米老鼠 in a park", "width": 512, "height": 512}, 50413),
    ("saliency_seg", {"binary_data_base64": [png_b64(corner=RISK_IMAGE_COLOR)]}, 50411),
], ids=["text-risk", "ip-block", "image-risk"])
async def test_pre_moderation_is_content_risk_not_retryable(fresh_sim: Simulator, req_key: str,
                                                            params: dict[str, Any], code: int) -> None:
    rec = Recorder()
    with pytest.raises(ContentRiskError) as info:
        await sim_client(fresh_sim, max_retries=3, sleep=rec).submit_task(req_key, params)
    err = info.value
    assert err.code == code and err.retryable is False and err.status_code == 400
    assert rec.delays == [] and fresh_sim.counters.accepted == 0
    check_error(err)


async def test_post_moderation_is_content_risk_resubmittable(sim: Simulator, client: Client) -> None:
    task = client.submit("jimeng_t2i_v30", prompt="a cat sim:post-risk", width=512, height=512, display=False)
    with pytest.raises(ContentRiskError) as info:
        await task
    err = info.value
    assert err.code == 50511 and err.resubmittable is True and err.retryable is False
    assert err.task_id == task.task_id and task.status == "failed" and task.error is err
    assert sim.counters.accepted == 1  # the task ran; its OUTPUT was refused
    assert sim.counters.polls == task.polls  # the failed task's GetResult was not repeated
    check_error(err)


async def test_submit_qps_exceeded_is_a_rate_limit_error(sim: Simulator) -> None:
    sim.quotas.submit_qps = 0.001
    rec = Recorder()
    client = sim_client(sim, max_retries=2, sleep=rec)
    body = {"binary_data_base64": [png_b64()]}
    await client.submit_task("saliency_seg", body)
    with pytest.raises(RateLimitError) as info:
        await client.submit_task("saliency_seg", body)
    err = info.value
    assert type(err) is RateLimitError
    assert err.code == 50429 and err.status_code == 429 and err.retryable is True
    assert len(rec.delays) == 2  # 50429 is pre-admission: even a submit is retried
    assert sim.counters.submits == 4 and sim.counters.accepted == 1
    check_error(err)


async def test_unfinished_task_limit_is_a_concurrency_limit_error(sim: Simulator) -> None:
    sim.quotas.max_unfinished = 1
    sim.set_service_time("saliency_seg", 60.0, sigma=0)
    client = sim_client(sim)
    body = {"binary_data_base64": [png_b64()]}
    await client.submit_task("saliency_seg", body)
    with pytest.raises(ConcurrencyLimitError) as info:
        await client.submit_task("saliency_seg", body)
    err = info.value
    assert isinstance(err, RateLimitError) and err.code == 50430 and err.retryable is True
    assert sim.counters.accepted == 1
    check_error(err)


async def test_internal_error_without_retries_is_a_server_error(sim: Simulator) -> None:
    sim.faults.plan(SUBMIT, "code_50500")
    with pytest.raises(ServerError) as info:
        await sim_client(sim).submit_task("saliency_seg", {"binary_data_base64": [png_b64()]})
    err = info.value
    assert err.code == 50500 and err.status_code == 500 and err.retryable is True
    assert sim.counters.faults["code_50500"] == 1 and sim.counters.accepted == 0
    check_error(err)


# --- task life cycle -------------------------------------------------------------------------------------

async def test_unknown_task_is_not_found(client: Client) -> None:
    task = Task.attach("saliency_seg", "7000000000000000042", client=client, display=False)
    with pytest.raises(TaskNotFoundError) as info:
        await task
    err = info.value
    assert type(err) is TaskNotFoundError and err.task_id == "7000000000000000042" and err.retryable is False
    assert err.request_id  # the GetResult that said not_found
    check_error(err)


async def test_clock_jump_expires_then_purges_a_task() -> None:
    now = [time.time()]
    sim = Simulator(service_times=FAST, queue_time=0.0, clock=lambda: now[0], max_clock_skew=10**9)
    try:
        client = sim_client(sim)
        task_id, _ = await client.submit_task("saliency_seg", {"binary_data_base64": [png_b64()]})
        sim.wait_idle()
        now[0] += 5  # past the service time: the task is done and fetchable
        assert (await client.get_result("saliency_seg", task_id)).data["status"] == "done"
        now[0] += 13 * 3600  # past the 12 h ttl
        with pytest.raises(TaskExpiredError) as expired:
            await Task.attach("saliency_seg", task_id, client=client, display=False)
        assert expired.value.task_id == task_id and expired.value.code == "expired"
        check_error(expired.value)
        now[0] += 12 * 3600  # past the 24 h purge: the task is gone
        with pytest.raises(TaskNotFoundError) as gone:
            await Task.attach("saliency_seg", task_id, client=client, display=False)
        assert type(gone.value) is TaskNotFoundError
    finally:
        sim.close()


async def test_cancelled_task(sim: Simulator, client: Client) -> None:
    sim.set_service_time("saliency_seg", 60.0, sigma=0)
    task = client.submit("saliency_seg", image(), display=False)
    task_id = await task.submitted()
    await task.cancel()
    with pytest.raises(TaskCancelledError) as info:
        await task
    err = info.value
    assert err.task_id == task_id and task.status == "cancelled" and err.retryable is False
    assert sim.counters.cancels == 1
    assert (await client.get_result("saliency_seg", task_id)).data == {"status": "not_found"}
    check_error(err)


async def test_wait_deadline_is_a_task_timeout(sim: Simulator, client: Client) -> None:
    sim.set_service_time("saliency_seg", 60.0, sigma=0)
    task = client.submit("saliency_seg", image(), display=False)
    task_id = await task.submitted()
    with pytest.raises(TaskTimeoutError) as info:
        await task.wait(timeout=0.05)
    err = info.value
    assert isinstance(err, TimeoutError) and err.task_id == task_id
    assert "Task.attach" in err.message  # says how to come back
    check_error(err)


# --- the reply or the connection was bad ------------------------------------------------------------------

async def test_malformed_reply_without_retries_is_a_protocol_error(sim: Simulator) -> None:
    sim.faults.plan(GET_RESULT, "malformed")
    with pytest.raises(ProtocolError) as info:
        await sim_client(sim).get_result("saliency_seg", "7000000000000000001")
    err = info.value
    assert err.status_code == 200 and err.snippet.startswith('{"code": 10000')
    assert err.task_id == "7000000000000000001"
    check_error(err)


async def test_slow_reply_is_a_request_timeout(http_sim: SimServer) -> None:
    http_sim.sim.faults.slow_seconds = 0.5
    http_sim.sim.faults.plan(GET_RESULT, "slow")
    client = Client(AK, SK, endpoint=http_sim.url, timeout=0.1, retry=RetryPolicy(max_retries=0, sleep=_no_sleep))
    with pytest.raises(RequestTimeoutError) as info:
        await client.get_result("saliency_seg", "7000000000000000001")
    err = info.value
    assert isinstance(err, TimeoutError) and isinstance(err, TransportError)
    assert isinstance(err.__cause__, httpx.TimeoutException)
    assert err.retryable is True and err.task_id == "7000000000000000001"
    check_error(err)
    await client.aclose()


async def test_connection_refused_is_a_transport_error() -> None:
    client = Client(AK, SK, endpoint=f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(max_retries=0))
    with pytest.raises(TransportError) as info:
        await client.get_result("saliency_seg", "1")
    err = info.value
    assert type(err) is TransportError and isinstance(err.__cause__, httpx.ConnectError)
    assert err.retryable is True
    check_error(err)


async def test_submit_dropped_after_processing_is_uncertain(http_sim: SimServer) -> None:
    sim = http_sim.sim
    sim.faults.plan(SUBMIT, "drop_after")
    client = Client(AK, SK, endpoint=http_sim.url, retry=RetryPolicy(max_retries=5, sleep=(rec := Recorder())))
    with pytest.raises(SubmitUncertainError) as info:
        await client.submit_task("saliency_seg", {"binary_data_base64": [png_b64()]})
    err = info.value
    assert err.retryable is False and err.req_key == "saliency_seg"
    assert "MAY exist" in err.message
    assert sim.counters.submits == 1 and sim.counters.accepted == 1 and rec.delays == []
    check_error(err)
    await client.aclose()


async def test_bad_input_is_a_validation_error_before_any_request(sim: Simulator) -> None:
    transport = Counting(httpx.ASGITransport(app=sim.app()))
    client = Client(AK, SK, transport=transport)
    with pytest.raises(ValidationError) as info:
        client.submit("saliency_seg", image(), only_mask=9, display=False)
    err = info.value
    assert isinstance(err, ValueError) and err.field == "only_mask" and err.retryable is False
    with pytest.raises(ValidationError):
        client.submit("saliency_seg", image(), logo_info=volcnb.LogoInfo(position=7), display=False)
    await asyncio.sleep(0)
    assert transport.requests == []
    assert sim.counters.snapshot()["submits"] == 0 and dict(sim.counters.rejected) == {}
    check_error(err)


def test_error_tree_is_complete() -> None:
    """Every leaf class of volcnb._exceptions is raised through the client by a test above (the two bases,
    ``VolcError`` and ``APIError``, through their subclasses; ``PossiblyCreatedError`` by a batch in
    tests/verbs/test_batch_http.py; ``ArgumentTypeError`` and ``FetchOptionsError`` in
    tests/verbs/test_hardening.py). A new class must get a test here."""
    import volcnb._exceptions as ex

    reached = {APIError, AuthError, ConcurrencyLimitError, ContentRiskError, InvalidArgumentError, ProtocolError,
               ex.PossiblyCreatedError, ex.ArgumentTypeError, ex.FetchOptionsError, RateLimitError, RequestTimeoutError, ServerError, SignatureError, SubmitUncertainError, ex.SubmitTimeoutError,
               TaskCancelledError,
               TaskExpiredError, TaskNotFoundError, TaskTimeoutError, TransportError, ValidationError, VolcError}
    assert {getattr(ex, n) for n in ex.__all__} - {ex.VolcnbWarning} == reached


# --- secrets --------------------------------------------------------------------------------------------

async def test_secret_never_printed_or_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sim = Simulator(keys={"AKleaktest": SECRET}, service_times=FAST, queue_time=0.0)
    server = SimServer(sim).start()
    errors: list[VolcError] = []
    try:
        client = Client("AKleaktest", SECRET, TOKEN, endpoint=server.url, retry=RetryPolicy(max_retries=2,
                                                                                          sleep=_no_sleep))
        sim.faults.plan(SUBMIT, "code_50500", "code_50500", "code_50500")
        sim.faults.plan(GET_RESULT, "malformed", "malformed", "malformed")
        for call in (client.submit_task("saliency_seg", {"binary_data_base64": [png_b64()]}),
                     client.get_result("saliency_seg", "1"),
                     Client("AKleaktest", SECRET + "x", endpoint=server.url).get_result("saliency_seg", "1")):
            with pytest.raises(VolcError) as info:
                await call
            errors.append(info.value)
        assert [type(e) for e in errors] == [ServerError, ProtocolError, SignatureError]
        texts = [repr(client), str(client), repr(client.credentials), str(client.credentials),
                 repr(client.iva)]
        for err in errors:
            check_error(err, SECRET + "x")
        await client.aclose()
    finally:
        server.stop()
        sim.close()
    assert "AKleaktest" in repr(client)
    assert any("retrying" in r.getMessage() for r in caplog.records)  # the run did log at DEBUG/INFO
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), str(record.__dict__)]
    for text in texts:
        assert SECRET not in text and TOKEN not in text


# --- credentials and endpoints ---------------------------------------------------------------------------

async def test_credentials_from_environment_sign_correctly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLC_ACCESSKEY", "AKfromenv")
    monkeypatch.setenv("VOLC_SECRETKEY", "SKfromenv")
    monkeypatch.setenv("VOLC_SESSION_TOKEN", "TOKENfromenv")
    sim = Simulator(keys={"AKfromenv": "SKfromenv"}, service_times=FAST, queue_time=0.0)
    try:
        transport = Counting(httpx.ASGITransport(app=sim.app()))
        client = Client(transport=transport)
        assert client.credentials == volcnb.Credentials("AKfromenv", "SKfromenv", "TOKENfromenv")
        reply = await client.get_result("saliency_seg", "1")
        assert reply.data == {"status": "not_found"}
        sent = transport.requests[0]
        assert sent.headers["X-Security-Token"] == "TOKENfromenv"
        assert "Credential=AKfromenv/" in sent.headers["Authorization"]
    finally:
        sim.close()


def test_explicit_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOLC_ACCESSKEY", "AKenv")
    monkeypatch.setenv("VOLC_SECRETKEY", "SKenv")
    monkeypatch.setenv("VOLC_SESSION_TOKEN", "TOKenv")
    assert Client().credentials == volcnb.Credentials("AKenv", "SKenv", "TOKenv")
    assert Client("AKarg", "SKarg", "TOKarg").credentials == volcnb.Credentials("AKarg", "SKarg", "TOKarg")
    assert Client(session_token="TOKarg").credentials == volcnb.Credentials("AKenv", "SKenv", "TOKarg")
    # An STS token belongs to its temporary key pair: explicit keys never pick up the environment's token.
    assert Client("AKarg", "SKarg").credentials == volcnb.Credentials("AKarg", "SKarg", None)


def test_missing_credentials_say_how_to_fix() -> None:
    with pytest.raises(AuthError) as info:
        Client()
    err = info.value
    assert err.code == "MissingCredentials" and "VOLC_ACCESSKEY" in err.message
    assert "use_simulator" in err.message
    check_error(err)


async def test_https_endpoints_by_default() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "open.volcengineapi.com":
            return httpx.Response(200, json={"ResponseMetadata": {"RequestId": "r"}, "Result": {"ImageID": "i-1"}})
        return httpx.Response(200, json={"code": 10000, "data": {"status": "in_queue"}, "message": "Success"})

    client = Client("AKx", "SKx", transport=httpx.MockTransport(handler))
    assert client.cv_url == "https://visual.volcengineapi.com"
    assert client.iva_url == "https://open.volcengineapi.com"
    await client.get_result("saliency_seg", "1")
    up = await client.iva.add_image("task-1", "https://example.com/a.jpg")
    assert (up.image_id, up.video_id, up.status, up.iva_task_id) == ("i-1", None, "uploaded", "task-1")
    cv, iva = seen
    assert (cv.url.scheme, cv.url.host, cv.url.path) == ("https", "visual.volcengineapi.com", "/")
    assert dict(cv.url.params) == {"Action": "CVSync2AsyncGetResult", "Version": "2022-08-31"}
    assert cv.headers["Content-Type"] == "application/json"
    assert "/cn-north-1/cv/request" in cv.headers["Authorization"]
    assert (iva.url.scheme, iva.url.host) == ("https", "open.volcengineapi.com")
    assert dict(iva.url.params) == {"Action": "AddAsyncTaskImageData", "Version": "2022-05-13"}
    assert iva.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert "/cn-north-1/iva/request" in iva.headers["Authorization"]
    assert "X-Security-Token" not in cv.headers
    local = Client("AKx", "SKx", endpoint="http://127.0.0.1:8000/")
    assert local.cv_url == local.iva_url == "http://127.0.0.1:8000"


async def test_session_token_is_sent_and_signed(sim: Simulator) -> None:
    transport = Counting(httpx.ASGITransport(app=sim.app()))
    client = Client(AK, SK, session_token=TOKEN, transport=transport)
    await client.get_result("saliency_seg", "1")  # the simulator verified the signature
    sent = transport.requests[0]
    assert sent.headers["X-Security-Token"] == TOKEN
    signed = sent.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "x-security-token" in signed
    # A token changed after signing breaks the signature: it really is covered.
    tampered = sent.headers.copy()
    tampered["X-Security-Token"] = TOKEN + "x"
    forged = httpx.Request("POST", sent.url, headers=tampered, content=sent.content)
    resp = await httpx.ASGITransport(app=sim.app()).handle_async_request(forged)
    await resp.aread()
    assert resp.status_code == 401 and b"SignatureDoesNotMatch" in resp.content


async def test_two_clients_with_different_keys_coexist() -> None:
    sim = Simulator(keys={"AKone": "SKone", "AKtwo": "SKtwo"}, service_times=FAST, queue_time=0.0)
    try:
        app = sim.app()
        one = Client("AKone", "SKone", transport=(t1 := Counting(httpx.ASGITransport(app=app))))
        two = Client("AKtwo", "SKtwo", transport=(t2 := Counting(httpx.ASGITransport(app=app))))
        body = {"binary_data_base64": [png_b64()]}
        (id1, _), (id2, _) = await asyncio.gather(one.submit_task("saliency_seg", body),
                                                  two.submit_task("saliency_seg", body))
        assert id1 != id2 and sim.counters.accepted == 2
        assert all("Credential=AKone/" in r.headers["Authorization"] for r in t1.requests)
        assert all("Credential=AKtwo/" in r.headers["Authorization"] for r in t2.requests)
        assert (await one.get_result("saliency_seg", id1)).data["status"] in ("in_queue", "generating", "done")
        # Tasks belong to their access key: the other client cannot see them.
        assert (await two.get_result("saliency_seg", id1)).data == {"status": "not_found"}
        assert (await one.get_result("saliency_seg", id2)).data == {"status": "not_found"}
        assert repr(one) != repr(two) and "SKone" not in repr(one)
    finally:
        sim.close()


async def test_iva_upload_through_the_client(sim: Simulator, client: Client) -> None:
    buf = io.BytesIO()
    image().save(buf, "PNG")
    up = await client.iva.add_image("iva-task-1", buf.getvalue(), name="a.png")
    assert len(up.image_id or "") == 36 and up.name == "a.png" and sim.counters.uploads == 1
    with pytest.raises(ValidationError) as refused:  # not a picture at all: refused before sending
        await client.iva.add_image("iva-task-1", b"not an image", name="a.png")
    assert refused.value.field == "ImageFile" and sim.counters.uploads == 1
    with pytest.raises(InvalidArgumentError) as info:  # a picture's header, cut short: the service refuses it
        await client.iva.add_image("iva-task-1", buf.getvalue()[:120], name="a.png")
    assert "ImageFile" in info.value.message and info.value.task_id == "iva-task-1"
    check_error(info.value)


# --- the blocking face ------------------------------------------------------------------------------------

def test_sync_face_without_a_loop_reuses_one_private_loop(sim: Simulator) -> None:
    transport = Counting(httpx.ASGITransport(app=sim.app()))
    client = Client(AK, SK, transport=transport)
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    task_id, _ = client.submit_task_sync("saliency_seg", {"binary_data_base64": [png_b64()]})
    statuses = [client.get_result_sync("saliency_seg", task_id).data["status"] for _ in range(3)]
    assert set(statuses) <= {"in_queue", "generating", "done"}
    assert len(transport.loops) == 4 and len(set(map(id, transport.loops))) == 1
    assert transport.loops[0] is _sync.private_loop() and not transport.loops[0].is_running()
    assert client.cancel_task_sync("saliency_seg", "7000000000000000001").data == {"status": "not_found"}
    with pytest.raises(TaskNotFoundError):
        Task.attach("saliency_seg", "7000000000000000001", client=client, display=False).result(timeout=5)


async def test_sync_face_inside_a_running_loop(sim: Simulator, client: Client) -> None:
    """A notebook cell calling the blocking API: the running loop is re-entered (nest_asyncio2)."""
    running = asyncio.get_running_loop()
    task_id, _ = client.submit_task_sync("saliency_seg", {"binary_data_base64": [png_b64()]})
    for _ in range(2):
        assert client.get_result_sync("saliency_seg", task_id).data["status"] in ("in_queue", "generating", "done")
    assert asyncio.get_running_loop() is running
    assert id(running) in _sync._patched  # the blocking call took the nest_asyncio2 path, on this very loop
    assert (await client.get_result("saliency_seg", task_id)).request_id  # the async face still works after


def test_reply_is_plain_json_data(sim: Simulator) -> None:
    client = Client(AK, SK, transport=httpx.ASGITransport(app=sim.app()))
    task_id, reply = client.submit_task_sync("saliency_seg", {"binary_data_base64": [png_b64()]})
    assert reply.data == {"task_id": task_id} and reply.message == "Success"
    assert json.loads(json.dumps(reply.raw))["code"] == 10000


async def test_submit_read_timeout_is_uncertain_and_a_timeout(http_sim: SimServer) -> None:
    """A submit whose reply never comes in time: the task may exist, so no retry; it is also a TimeoutError."""
    http_sim.sim.faults.slow_seconds = 1.0
    http_sim.sim.faults.plan("CVSync2AsyncSubmitTask", "slow")
    c = volcnb.Client(AK, SK, endpoint=http_sim.url, timeout=0.3,
                      retry=volcnb.RetryPolicy(max_retries=5, sleep=_no_sleep))
    with pytest.raises(volcnb.SubmitTimeoutError) as info:
        await c.submit_task("saliency_seg", {"binary_data_base64": [png_b64()]})
    assert isinstance(info.value, volcnb.SubmitUncertainError) and isinstance(info.value, TimeoutError)
    assert "MAY exist" in str(info.value)
    await asyncio.sleep(1.0)  # the slow reply was processed server-side: the task exists, and was sent once
    assert http_sim.sim.counters.submits == 1 and http_sim.sim.counters.accepted == 1
    await c.aclose()


def test_close_releases_every_loops_connections(http_sim: SimServer) -> None:
    """``with Client(...)`` closes the pooled connections of the sync face's private loop and of any other."""
    with Client(AK, SK, endpoint=http_sim.url) as client:
        task_id, _ = client.submit_task_sync("saliency_seg", {"binary_data_base64": [png_b64()]})
        pools = list(client._http.values())
        assert pools and not any(p.is_closed for p in pools)
    assert all(p.is_closed for p in pools) and not client._http
    # still usable afterwards: a new pool is opened on demand
    assert client.get_result_sync("saliency_seg", task_id).request_id
    client.close()
    client.close()  # twice is fine


async def test_async_with_closes_the_running_loops_pool(http_sim: SimServer) -> None:
    async with Client(AK, SK, endpoint=http_sim.url) as client:
        await client.submit_task("saliency_seg", {"binary_data_base64": [png_b64()]})
        pool = client._http[asyncio.get_running_loop()]
    assert pool.is_closed and not client._http


async def test_close_inside_a_running_loop_closes_the_sync_pool_too(http_sim: SimServer) -> None:
    client = Client(AK, SK, endpoint=http_sim.url)
    client.submit_task_sync("saliency_seg", {"binary_data_base64": [png_b64()]})  # nest_asyncio2: this loop
    await client.submit_task("saliency_seg", {"binary_data_base64": [png_b64()]})
    pools = list(client._http.values())
    client.close()  # from inside the running loop: schedules this loop's close, does not block
    await asyncio.sleep(0.05)
    assert all(p.is_closed for p in pools)


def test_close_from_a_running_loop_closes_the_private_loops_pool(http_sim: SimServer) -> None:
    client = Client(AK, SK, endpoint=http_sim.url)
    client.submit_task_sync("saliency_seg", {"binary_data_base64": [png_b64()]})  # the private sync loop
    pools = list(client._http.values())

    async def closer() -> None:
        client.close()  # another loop runs in this thread: a helper thread drives the private loop's close

    asyncio.run(closer())
    assert pools and all(p.is_closed for p in pools)
