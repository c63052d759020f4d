"""Hardening through the public API: bad input refused before anything is sent, wait options never sent,
``asyncio.run(volcnb.run(...))``, a client that paces itself, refused fetch options that lose nothing."""

from __future__ import annotations

import asyncio
import json
import warnings

import httpx
import pytest
from matplotlib import cbook

import volcnb
from volcnb.sim import DEFAULT_ACCESS_KEY as AK
from volcnb.sim import DEFAULT_SECRET_KEY as SK
from volcnb.sim import ServiceTime, Simulator

IMAGE = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


class Counting(httpx.AsyncBaseTransport):
    """Wraps a transport and remembers every request; ``refuse_options`` answers 50200 to a GetResult that
    carries ``req_json`` (what the real service does with fetch options it rejects)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, refuse_options: bool = False) -> None:
        self.inner, self.refuse_options = inner, refuse_options
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content or b"{}")
        if self.refuse_options and "GetResult" in str(request.url) and "req_json" in body:
            return httpx.Response(400, json={"code": 50200, "message": "Request Invalid Args: req_json.logo_info",
                                             "request_id": "r1", "data": None, "status": 50200})
        return await self.inner.handle_async_request(request)


@pytest.fixture
def sim() -> Simulator:
    return Simulator(queue_time=0.0, service_times={"saliency_seg": ServiceTime(0.2, 0.0)})


def client_on(sim: Simulator, **kw: object) -> tuple[volcnb.Client, Counting]:
    transport = Counting(httpx.ASGITransport(app=sim.app()), **kw)  # type: ignore[arg-type]
    return volcnb.Client(AK, SK, transport=transport), transport


@pytest.mark.parametrize(("params", "field", "kind"), [
    ({"logo_info": {"add_logo": True, "position": True}}, "logo_info.position", volcnb.ValidationError),
    ({"logo_info": {"add_logo": "no"}}, "logo_info.add_logo", volcnb.ValidationError),
    ({"return_url": "no"}, "return_url", volcnb.ArgumentTypeError),
    ({"deadline": -5}, "deadline", volcnb.ValidationError),
    ({"only_mask": 9}, "only_mask", volcnb.ValidationError),
])
def test_bad_input_is_refused_before_sending(sim: Simulator, params: dict[str, object], field: str,
                                             kind: type[Exception]) -> None:
    client, transport = client_on(sim)
    with pytest.raises(kind) as info:
        volcnb.submit("saliency_seg", IMAGE, client=client, display=False, **params)
    assert info.value.field == field  # type: ignore[attr-defined]
    assert field.split(".")[-1] in str(info.value)
    assert transport.requests == [] and sim.counters.submits == 0


def test_wrong_client_and_attach_arguments_send_nothing(sim: Simulator) -> None:
    client, transport = client_on(sim)
    with pytest.raises(volcnb.ArgumentTypeError) as info:
        volcnb.submit("saliency_seg", IMAGE, client="x", display=False)  # type: ignore[arg-type]
    assert info.value.field == "client" and isinstance(info.value, TypeError)
    for args, field in [(("saliency_seg", ""), "task_id"), (("saliency_seg", None), "task_id"),
                        (("", "1"), "req_key"), ((123, "1"), "req_key")]:
        with pytest.raises(volcnb.ValidationError) as refused:
            volcnb.Task.attach(*args, client=client)  # type: ignore[arg-type]
        assert refused.value.field == field
    assert transport.requests == []


def test_asyncio_run_of_run_with_a_wait_timeout_and_a_dict_logo(sim: Simulator) -> None:
    """How a script user writes it: the task is submitted once, ``timeout`` is the wait's (never an API
    parameter), and ``logo_info`` as a plain dict is sent as the documented JSON at query time."""
    client, transport = client_on(sim)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about `timeout`
        res = asyncio.run(volcnb.run("saliency_seg", IMAGE, client=client, display=False, timeout=60,
                                     logo_info={"add_logo": True, "position": 2}))
    assert isinstance(res, volcnb.SegmentationResult) and res.images
    submits = [json.loads(r.content) for r in transport.requests if "SubmitTask" in str(r.url)]
    polls = [json.loads(r.content) for r in transport.requests if "GetResult" in str(r.url)]
    assert len(submits) == 1 and "timeout" not in submits[0] and "on_timeout" not in submits[0]
    sent = json.loads(polls[-1]["req_json"])["logo_info"]
    assert sent["add_logo"] is True and sent["position"] == 2
    assert sim.counters.accepted == 1


async def test_two_hundred_gathered_submits_pace_themselves(sim: Simulator) -> None:
    """200 submits gathered in one cell against the default quota (20/s): none fails with 50429."""
    client, _ = client_on(sim)
    tasks = [volcnb.submit("saliency_seg", IMAGE, client=client, display=False) for _ in range(200)]
    ids = await asyncio.gather(*(t.submitted() for t in tasks))
    assert len(set(ids)) == 200
    assert sim.counters.accepted == 200 and sim.counters.rejected.get("50429", 0) == 0
    await client.aclose()


async def test_refused_fetch_options_lose_nothing(sim: Simulator) -> None:
    client, transport = client_on(sim, refuse_options=True)
    task = volcnb.submit("saliency_seg", IMAGE, client=client, display=False,
                         logo_info=volcnb.LogoInfo(add_logo=True))
    with pytest.raises(volcnb.FetchOptionsError) as info:
        await task
    err = info.value
    assert err.task_id == task.task_id and err.options["logo_info"]["add_logo"] is True
    assert task.status != "failed" and sim.counters.accepted == 1
    res = await task.fetch()  # without options: the same task, no new submit
    assert res.images and sim.counters.accepted == 1
    await client.aclose()


async def test_an_outage_while_tasks_generate_ends_no_handle() -> None:
    """The service is unreachable for 3 s while 10 tasks generate: every handle still gets its result
    (polls are retried until the task's deadline, not a fixed count), and nothing is submitted twice."""
    from volcnb.sim import SimServer
    from volcnb.sim._server import free_port

    sim = Simulator(queue_time=0.0, service_times={"saliency_seg": ServiceTime(1.0, 0.0)})
    port = free_port()
    server = SimServer(sim, port=port).start()
    client = volcnb.Client(AK, SK, endpoint=server.url)
    try:
        tasks = [volcnb.submit("saliency_seg", IMAGE, client=client, display=False) for _ in range(10)]
        await asyncio.gather(*(t.submitted() for t in tasks))
        await asyncio.to_thread(server.stop)  # connections refused from now on
        await asyncio.sleep(3.0)
        assert not any(t.done for t in tasks)
        server = SimServer(sim, port=port).start()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 60)
        assert all(r.images for r in results)
        assert sim.counters.accepted == 10 and sim.counters.submits == 10
    finally:
        await client.aclose()
        server.stop()
        sim.close()
