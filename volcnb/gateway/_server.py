"""Serving the gateway: the upstream client, a background handle (notebooks, tests) and the foreground CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..sim._server import ServerProcess, ThreadedServer
from ._app import create_app
from ._spec import Limits
from ._store import Store

__all__ = ["GatewayProcess", "GatewayServer", "build_app", "run_foreground"]


def _upstream(db: str | None, service_time: float | None) -> tuple[Any, str]:
    """volcnb's client: ``$VOLCNB_ENDPOINT`` (e.g. a ``volcnb sim``) when set, the real service when keys are
    configured, else a persistent simulator beside ``db``."""
    import os

    import httpx

    from .._verbs import ENDPOINT_VARIABLE, Client, client_for
    from ..http.credentials import find_credentials

    if os.environ.get(ENDPOINT_VARIABLE):
        return client_for(), os.environ[ENDPOINT_VARIABLE]
    if find_credentials() is not None:
        return Client(), "volcengine"
    from ..sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Simulator

    times = {k: service_time for k in ("jimeng_t2i_v30", "jimeng_t2i_v31")} if service_time else None
    sim = Simulator(db=f"{db}.upstream.sqlite" if db else None, service_times=times)
    client = Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, transport=httpx.ASGITransport(app=sim.app()))
    client.simulator = sim
    return client, "simulator"


def build_app(db: str | None = None, *, limits: Limits | None = None, token: str | None = None,
              service_time: float | None = None, client: Any = None) -> Any:
    """The gateway app over ``db`` (in memory when ``None``) and its upstream."""
    upstream = "custom"
    if client is None:
        client, upstream = _upstream(db, service_time)
    return create_app(Store(db), client, limits, token=token, upstream=upstream)


class GatewayServer(ThreadedServer):
    """The gateway under uvicorn in a daemon thread: ``.url`` (the API base), ``.page_url``, ``.stop()``."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(app, host=host, port=port or None, lifespan="on")
        self.app = app

    @property
    def page_url(self) -> str:
        """The web page."""
        return f"http://{self.host}:{self.port}/"

    @property
    def url(self) -> str:
        """The API base URL (``…/api/v1``), what :class:`~volcnb.GatewayClient` takes."""
        return f"http://{self.host}:{self.port}/api/v1"

    def __enter__(self) -> GatewayServer:
        return self

    def _repr_html_(self) -> str:
        return f'volcnb gateway: <a href="{self.page_url}" target="_blank">{self.page_url}</a> (API {self.url})'

    def __repr__(self) -> str:
        return f"GatewayServer(page_url={self.page_url!r}, url={self.url!r})"


def run_foreground(*, host: str, port: int, db: str | Path | None, limits: Limits, token: str | None,
                   service_time: float | None) -> None:
    """``volcnb gateway``: serve until interrupted."""
    import uvicorn

    app = build_app(str(db) if db else None, limits=limits, token=token, service_time=service_time)
    uvicorn.run(app, host=host, port=port, log_level="warning")


class GatewayProcess(ServerProcess):
    """``volcnb gateway`` in a child process (the kill/restart test, the benchmark, a smoke run); ``.url`` is
    the API base, ``.kill()`` a SIGKILL, ``.stop()`` polite."""

    COMMAND = "gateway"
    HEALTH = "/api/v1/health"

    @property
    def url(self) -> str:
        """The API base URL."""
        return f"{self.base}/api/v1"
