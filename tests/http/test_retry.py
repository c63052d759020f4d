"""Retry behaviour (volcnb._retry + Client.send), all with zero real sleeps.

The rules: a submit is never repeated once it may have reached the service (the API has no idempotency
key), but it is retried where no task can exist; GetResult is retried through any transient fault;
``Retry-After`` is honoured up to a limit; the backoff grows, is capped and is jittered.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import io
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image

import volcnb
from volcnb import (
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
    TransportError,
    VolcError,
)
from volcnb.http.api import KEEPALIVE_EXPIRY, _transport_error
from volcnb.protocol.retry import classify, retry_after_seconds
from volcnb.sim import DEFAULT_ACCESS_KEY as AK
from volcnb.sim import DEFAULT_SECRET_KEY as SK
from volcnb.sim import SimServer, Simulator
from volcnb.sim._server import free_port

SUBMIT = "CVSync2AsyncSubmitTask"
GET_RESULT = "CVSync2AsyncGetResult"
UVICORN_KEEP_ALIVE = 5.0  # uvicorn's default timeout_keep_alive


class Recorder:
    """``RetryPolicy.sleep`` that records each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Edge(random.Random):
    """An rng whose jitter always lands on one edge of the interval (``high`` or low)."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


def png_b64() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (160, 128), (30, 90, 200)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


BODY = {"binary_data_base64": [png_b64()]}

Step = httpx.Response | Exception


def scripted(steps: list[Step]) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    """A MockTransport handler playing ``steps`` in order (an exception is raised as the transport failure)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = steps[min(len(seen), len(steps)) - 1]
        if isinstance(step, Exception):
            raise step
        return step

    return handler, seen


def mock_client(steps: list[Step], *, max_retries: int = 5, rec: Recorder | None = None, **policy: Any
                ) -> tuple[Client, list[httpx.Request], Recorder]:
    rec = rec or Recorder()
    handler, seen = scripted(steps)
    client = Client("AKmock", "SKmock", transport=httpx.MockTransport(handler),
                    retry=RetryPolicy(max_retries=max_retries, sleep=rec, **policy))
    return client, seen, rec


def api(code: int, http: int | None = None, data: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    status = http or {10000: 200, 50429: 429, 50430: 429, 50500: 500, 50501: 500}.get(code, 400)
    return httpx.Response(status, headers=headers,
                          json={"code": code, "data": data, "message": "m", "request_id": "rid", "status": code})


SUBMITTED = api(10000, data={"task_id": "7000000000000000007"})
QUEUED = api(10000, data={"status": "in_queue"})


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait (really) for a server-side effect that lags behind the client's view."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


def http_client(server: SimServer, rec: Recorder, *, max_retries: int = 5, timeout: float = 5.0) -> Client:
    return Client(AK, SK, endpoint=server.url, timeout=timeout, retry=RetryPolicy(max_retries=max_retries, sleep=rec))


# --- RetryPolicy.backoff -----------------------------------------------------------------------------------

def test_backoff_grows_then_caps() -> None:
    high = RetryPolicy(base=0.5, cap=5.0, rng=Edge(high=True))
    assert [high.backoff(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    low = RetryPolicy(base=0.5, cap=5.0, rng=Edge(high=False))
    assert [low.backoff(n) for n in range(1, 8)] == [0.25, 0.5, 1.0, 2.0, 2.5, 2.5, 2.5]


def test_backoff_is_jittered_within_equal_jitter_bounds() -> None:
    policy = RetryPolicy(base=1.0, cap=8.0, rng=random.Random(42))
    for attempt, ceiling in ((1, 1.0), (3, 4.0), (10, 8.0)):
        draws = [policy.backoff(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in draws)
        assert len(set(draws)) > 150  # really random, not a constant
        assert min(draws) < ceiling * 0.6 and max(draws) > ceiling * 0.9


def test_backoff_survives_huge_attempt_numbers() -> None:
    assert RetryPolicy(cap=20.0).backoff(5000) <= 20.0


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(base=0.5, cap=20.0, rng=Edge(high=True))
    assert policy.backoff(1, retry_after=2.0) == 2.0
    assert policy.backoff(6, retry_after=2.0) == 16.0  # the backoff already waits longer


def test_retry_after_parsing() -> None:
    parse = retry_after_seconds
    assert parse(httpx.Headers({"Retry-After": "2"})) == 2.0
    assert parse(httpx.Headers({"Retry-After": "1.5"})) == 1.5
    assert parse(httpx.Headers({"Retry-After": "-3"})) == 0.0
    assert parse(httpx.Headers({"Retry-After": "soon"})) is None
    assert parse(httpx.Headers({})) is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse(httpx.Headers({"Retry-After": future})) or 0) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse(httpx.Headers({"Retry-After": past})) == 0.0


# --- classify -----------------------------------------------------------------------------------------------

def _api_error(cls: type, code: int | str, status: int, **kw: Any) -> Any:
    err = cls("m", code=code, status_code=status)
    for k, v in kw.items():
        setattr(err, k, v)
    return err


REQ = httpx.Request("POST", "https://visual.volcengineapi.com/")
CLASSIFY: list[tuple[str, BaseException, str, str]] = [
    # (label, failure, decision for GetResult, decision for Submit)
    ("connect refused", httpx.ConnectError("refused", request=REQ), "retry", "retry"),
    ("connect timeout", httpx.ConnectTimeout("t", request=REQ), "retry", "retry"),
    ("pool timeout", httpx.PoolTimeout("t", request=REQ), "retry", "retry"),
    ("read timeout", httpx.ReadTimeout("t", request=REQ), "retry", "uncertain"),
    ("write error", httpx.WriteError("w", request=REQ), "retry", "uncertain"),
    ("dropped", httpx.RemoteProtocolError("peer closed", request=REQ), "retry", "uncertain"),
    ("50429", _api_error(RateLimitError, 50429, 429), "retry", "retry"),
    ("50430", _api_error(ConcurrencyLimitError, 50430, 429), "retry", "retry"),
    ("50500", _api_error(ServerError, 50500, 500), "retry", "retry"),
    ("50501", _api_error(ServerError, 50501, 500), "retry", "retry"),
    ("gateway 5xx", _api_error(ServerError, "InternalError", 503), "retry", "raise"),
    ("50200", _api_error(InvalidArgumentError, 50200, 400), "raise", "raise"),
    ("signature", _api_error(SignatureError, "SignatureDoesNotMatch", 401), "raise", "raise"),
    ("pre-risk", _api_error(ContentRiskError, 50411, 400), "raise", "raise"),
    ("post-risk, task done", _api_error(ContentRiskError, 50511, 400, task_failed=True), "raise", "raise"),
    ("50500, task done", _api_error(ServerError, 50500, 500, task_failed=True), "raise", "raise"),
    ("html 502", ProtocolError("x", status_code=502), "retry", "uncertain"),
    ("garbled 200", ProtocolError("x", status_code=200), "retry", "uncertain"),
    ("html 404", ProtocolError("x", status_code=404), "raise", "uncertain"),
]


@pytest.mark.parametrize(("failure", "get", "submit"), [c[1:] for c in CLASSIFY], ids=[c[0] for c in CLASSIFY])
def test_classify(failure: BaseException, get: str, submit: str) -> None:
    if isinstance(failure, httpx.TransportError):  # the HTTP layer hands httpx failures over as TransportError
        failure = _transport_error(failure, "CVSync2AsyncGetResult")
    assert isinstance(failure, VolcError)
    assert classify(failure, idempotent=True) == get
    assert classify(failure, idempotent=False) == submit


# --- submit: never repeated after an ambiguous failure --------------------------------------------------------

@pytest.mark.parametrize("kind", ["drop_after", "malformed", "http_500", "drop", "slow"])
async def test_ambiguous_submit_is_never_repeated(http_sim: SimServer, kind: str) -> None:
    sim = http_sim.sim
    sim.faults.slow_seconds = 0.6
    sim.faults.plan(SUBMIT, kind)
    rec = Recorder()
    client = http_client(http_sim, rec, timeout=0.3 if kind == "slow" else 5.0)
    with pytest.raises(SubmitUncertainError) as info:
        await client.submit_task("saliency_seg", BODY)
    err = info.value
    assert err.retryable is False and err.req_key == "saliency_seg"
    assert rec.delays == []
    # Exactly one submit reached the server, and nothing was re-sent. The engine counts the submits it
    # processed: "drop_after" and "malformed" are processed (the task exists!), "http_500" (a proxy page) and
    # "drop" (cut before processing) never reach it.
    expected = {"drop_after": 1, "malformed": 1, "http_500": 0, "drop": 0}
    if kind == "slow":
        # Our abandoned request is still sleeping on the server; when it wakes it either creates the task or
        # (today's simulator, see the report) fails to read the body of the gone client: wait for either.
        await eventually(lambda: sim.counters.submits + sim.counters.rejected["50500"] >= 1)
        expected["slow"] = 0 if sim.counters.rejected["50500"] else 1
    assert sim.counters.submits == expected[kind]
    assert sim.counters.accepted == expected[kind]
    assert sim.counters.faults[kind] == 1 and sum(sim.counters.faults.values()) == 1
    if kind == "slow":
        assert isinstance(err.__cause__, httpx.ReadTimeout)
    await client.aclose()


async def test_ambiguous_iva_upload_is_never_repeated() -> None:
    client, seen, rec = mock_client([httpx.RemoteProtocolError("peer closed"), SUBMITTED])
    with pytest.raises(SubmitUncertainError):
        await client.iva.add_image("task-1", "https://example.com/a.jpg")
    assert len(seen) == 1 and rec.delays == []


# --- submit: retried where no task can exist ------------------------------------------------------------------

async def test_submit_retried_on_json_admission_refusals() -> None:
    client, seen, rec = mock_client([api(50429), api(50430), api(50500), api(50501), SUBMITTED])
    task_id, reply = await client.submit_task("saliency_seg", BODY)
    assert task_id == "7000000000000000007" and reply.request_id == "rid"
    assert len(seen) == 5 and len(rec.delays) == 4
    assert len({r.headers["Authorization"] for r in seen}) >= 1  # every attempt is signed afresh
    assert all(r.content == seen[0].content for r in seen)  # the same body each time


async def test_submit_retried_on_simulated_50500(http_sim: SimServer) -> None:
    sim = http_sim.sim
    sim.faults.plan(SUBMIT, "code_50500", "code_50500")
    rec = Recorder()
    task_id, _ = await http_client(http_sim, rec).submit_task("saliency_seg", BODY)
    assert task_id and len(rec.delays) == 2
    assert sim.counters.faults["code_50500"] == 2 and sim.counters.accepted == 1 and sim.counters.submits == 1


async def test_submit_retried_on_simulated_quota_refusals() -> None:
    sim = Simulator(service_times={k: 0.2 for k in volcnb.CAPABILITIES}, queue_time=0.0)
    try:
        sim.quotas.max_unfinished = 1
        sim.set_service_time("saliency_seg", 60.0, sigma=0)
        rec = Recorder()
        client = Client(AK, SK, transport=httpx.ASGITransport(app=sim.app()),
                        retry=RetryPolicy(max_retries=3, sleep=rec))
        await client.submit_task("saliency_seg", BODY)
        with pytest.raises(ConcurrencyLimitError):
            await client.submit_task("saliency_seg", BODY)
        assert len(rec.delays) == 3 and sim.counters.submits == 5 and sim.counters.accepted == 1
        assert sim.counters.rejected["50430"] == 4
    finally:
        sim.close()


async def test_submit_retried_when_the_connection_is_refused() -> None:
    rec = Recorder()
    client = Client(AK, SK, endpoint=f"http://127.0.0.1:{free_port()}", retry=RetryPolicy(max_retries=3, sleep=rec))
    with pytest.raises(TransportError) as info:
        await client.submit_task("saliency_seg", BODY)
    err = info.value
    assert type(err) is TransportError  # not SubmitUncertainError: nothing was sent
    assert isinstance(err.__cause__, httpx.ConnectError)
    assert len(rec.delays) == 3


async def test_submit_not_retried_on_a_refusal_of_the_request() -> None:
    client, seen, rec = mock_client([api(50200), SUBMITTED])
    with pytest.raises(InvalidArgumentError):
        await client.submit_task("saliency_seg", BODY)
    assert len(seen) == 1 and rec.delays == []


# --- GetResult: survives transient faults ----------------------------------------------------------------------

async def _done_task(client: Client, sim: Simulator) -> str:
    task_id, _ = await client.submit_task("saliency_seg", {**BODY, "only_mask": 1})
    for _ in range(200):
        sim.wait_idle()
        if (await client.get_result("saliency_seg", task_id)).data.get("status") == "done":
            return task_id
        await asyncio.sleep(0.02)
    raise AssertionError("the task never finished")


async def test_get_result_survives_five_consecutive_mixed_faults(http_sim: SimServer) -> None:
    sim = http_sim.sim
    task_id = await _done_task(http_client(http_sim, Recorder()), sim)
    polls_before = sim.counters.polls
    rec = Recorder()
    client = http_client(http_sim, rec, timeout=0.5)  # short, so that "slow" times out
    sim.faults.slow_seconds = 1.2
    kinds = ("http_500", "drop", "malformed", "code_50500", "slow")
    sim.faults.plan(GET_RESULT, *kinds)
    reply = await client.get_result("saliency_seg", task_id)
    assert reply.data["status"] == "done" and reply.data["binary_data_base64"]
    assert len(rec.delays) == 5
    assert all(sim.counters.faults[k] == 1 for k in kinds)
    assert sim.counters.polls - polls_before >= 2  # malformed and the good one reached the engine
    await client.aclose()


async def test_get_result_gives_up_after_max_retries(http_sim: SimServer) -> None:
    sim = http_sim.sim
    sim.faults.plan(GET_RESULT, *["http_500"] * 4, "code_50500")
    rec = Recorder()
    with pytest.raises(ServerError):
        await http_client(http_sim, rec, max_retries=4).get_result("saliency_seg", "7000000000000000001")
    assert len(rec.delays) == 4 and sim.counters.faults["http_500"] == 4


async def test_get_result_retries_timeouts_then_raises_request_timeout() -> None:
    client, seen, rec = mock_client([httpx.ReadTimeout("slow")], max_retries=2)
    with pytest.raises(RequestTimeoutError) as info:
        await client.get_result("saliency_seg", "1")
    assert isinstance(info.value, TimeoutError) and len(seen) == 3 and len(rec.delays) == 2


async def test_failed_task_result_is_not_asked_again() -> None:
    failed = api(50511, data={"status": "done"})
    client, seen, rec = mock_client([failed, QUEUED])
    with pytest.raises(ContentRiskError) as info:
        await client.get_result("saliency_seg", "1")
    assert info.value.resubmittable is True  # a NEW submit may pass; this result will not change
    assert len(seen) == 1 and rec.delays == []


# --- Retry-After ------------------------------------------------------------------------------------------------

async def test_retry_after_is_honoured() -> None:
    client, seen, rec = mock_client([api(50429, headers={"Retry-After": "2"}), QUEUED])
    reply = await client.get_result("saliency_seg", "1")
    assert reply.data["status"] == "in_queue"
    assert len(seen) == 2 and len(rec.delays) == 1 and rec.delays[0] >= 2


async def test_retry_after_as_http_date_on_a_proxy_error() -> None:
    when = email.utils.formatdate(time.time() + 10, usegmt=True)
    page = httpx.Response(503, headers={"Retry-After": when}, text="<html>503 Service Unavailable</html>")
    client, seen, rec = mock_client([page, QUEUED])
    await client.get_result("saliency_seg", "1")
    assert len(seen) == 2 and 8 <= rec.delays[0] <= 11


async def test_retry_after_beyond_the_limit_raises_at_once() -> None:
    client, seen, rec = mock_client([api(50429, headers={"Retry-After": "600"}), QUEUED], max_retry_after=120.0)
    with pytest.raises(RateLimitError) as info:
        await client.submit_task("saliency_seg", BODY)
    assert info.value.retryable is True and info.value.status_code == 429
    assert info.value.__cause__ is not info.value  # raised as is, not chained to itself
    assert len(seen) == 1 and rec.delays == []


async def test_client_backoff_delays_grow_and_cap() -> None:
    client, seen, rec = mock_client([api(50500)] * 5 + [QUEUED], base=1.0, cap=4.0, rng=Edge(high=True))
    await client.get_result("saliency_seg", "1")
    assert rec.delays == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(seen) == 6


async def test_client_backoff_exhausted_raises_the_last_error() -> None:
    client, seen, rec = mock_client([api(50500)] * 10, max_retries=3)
    with pytest.raises(ServerError):
        await client.get_result("saliency_seg", "1")
    assert len(seen) == 4 and len(rec.delays) == 3


# --- downloads ---------------------------------------------------------------------------------------------------

async def test_download_retries_server_errors_only() -> None:
    client, seen, rec = mock_client([httpx.Response(503), httpx.ConnectError("x"), httpx.Response(200,
                                                                                                  content=b"png")])
    assert await client.download("https://files.example.com/a.png") == b"png"
    assert len(seen) == 3 and len(rec.delays) == 2
    client, seen, rec = mock_client([httpx.Response(403, text="AccessDenied: Request has expired")])
    with pytest.raises(TransportError) as info:
        await client.download("https://files.example.com/a.png")
    assert info.value.retryable is False and info.value.status_code == 403 and "expired" in info.value.message
    assert len(seen) == 1


# --- connections ----------------------------------------------------------------------------------------------------

async def test_pool_keepalive_is_below_server_keepalive() -> None:
    client = Client("AKx", "SKx")
    assert client.keepalive_expiry == KEEPALIVE_EXPIRY < UVICORN_KEEP_ALIVE
    http = client._client_for_loop()
    # The limit really reaches the connection pool (httpx → httpcore; private names, checked where present).
    pool = getattr(getattr(http, "_transport", None), "_pool", None)
    if pool is not None:
        assert pool._keepalive_expiry == KEEPALIVE_EXPIRY
    await client.aclose()


async def test_submit_after_server_closed_an_idle_connection_needs_no_retry() -> None:
    sim = Simulator(service_times={k: 0.2 for k in volcnb.CAPABILITIES}, queue_time=0.0)
    server = SimServer(sim, keep_alive=1).start()
    try:
        rec = Recorder()
        client = http_client(server, rec)
        await client.submit_task("saliency_seg", BODY)
        await asyncio.sleep(1.5)  # longer than the server's keep-alive: it has closed our pooled connection
        await client.submit_task("saliency_seg", BODY)
        assert rec.delays == [] and sim.counters.submits == 2 and sim.counters.accepted == 2
        await client.aclose()
    finally:
        server.stop()
        sim.close()
