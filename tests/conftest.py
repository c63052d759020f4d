"""Shared fixtures: a clean environment, an in-process simulator, and a simulator over real HTTP."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import volcnb
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimServer, Simulator

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers (``_nb``) under --import-mode=importlib


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real credentials leak into tests; the default client is reset around each test."""
    for name in ("VOLC_ACCESSKEY", "VOLC_SECRETKEY", "VOLC_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOLCNB_QUIET", "1")
    monkeypatch.setenv("HOME", os.environ.get("HOME", "/tmp"))
    volcnb.set_default_client(None)
    yield
    volcnb.set_default_client(None)


async def _no_sleep(_delay: float) -> None:
    return None


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A fresh in-process simulator with fast service times (0.2 s) and no queue wait."""
    s = Simulator(service_times={k: 0.2 for k in volcnb.CAPABILITIES}, queue_time=0.0, seed=1)
    yield s
    s.close()


@pytest.fixture
def client(sim: Simulator) -> volcnb.Client:
    """A client bound to ``sim`` in-process (ASGI), zero retry sleeps, set as the default client."""
    c = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, transport=httpx.ASGITransport(app=sim.app()),
                      retry=volcnb.RetryPolicy(max_retries=5, sleep=_no_sleep),
                      poller=volcnb.BackoffPoller(first=0.05, factor=1.3, cap=0.2))
    c.simulator = sim
    volcnb.set_default_client(c)
    return c


@pytest.fixture
def http_sim() -> Iterator[SimServer]:
    """The simulator served by uvicorn on loopback (faults, timeouts and the official SDK need real HTTP)."""
    s = Simulator(service_times={k: 0.2 for k in volcnb.CAPABILITIES}, queue_time=0.0, seed=2)
    server = SimServer(s).start()
    yield server
    server.stop()
    s.close()


@pytest.fixture
def http_client(http_sim: SimServer) -> Iterator[volcnb.Client]:
    """A client talking to ``http_sim`` over HTTP, zero retry sleeps."""
    c = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=http_sim.url,
                      retry=volcnb.RetryPolicy(max_retries=5, sleep=_no_sleep), timeout=5.0,
                      poller=volcnb.BackoffPoller(first=0.05, factor=1.3, cap=0.2))
    yield c
    c.close()
