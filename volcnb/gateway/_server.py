"""Serving the gateway: the upstream client, a background handle (notebooks, tests) and the foreground CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class GatewayServer:
    """The gateway under uvicorn in a daemon thread: ``.url`` (the API base), ``.page_url``, ``.stop()``."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.host, self.port = host, port or _free_port()
        self.app = app
        self._server: Any = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning"))
        self._thread: threading.Thread | None = None

    @property
    def page_url(self) -> str:
        """The web page."""
        return f"http://{self.host}:{self.port}/"

    @property
    def url(self) -> str:
        """The API base URL (``…/api/v1``), what :class:`~volcnb.GatewayClient` takes."""
        return f"http://{self.host}:{self.port}/api/v1"

    def start(self, timeout: float = 15.0) -> GatewayServer:
        """Serve; return once the port accepts connections."""
        self._thread = threading.Thread(target=self._server.run, name="volcnb-gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving (unfinished tasks stay in the store and resume on the next start)."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)

    def __enter__(self) -> GatewayServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

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


class GatewayProcess:
    """``volcnb gateway`` in a child process (the kill/restart test, the benchmark, a smoke run)."""

    def __init__(self, *args: str, port: int | None = None, log: str | Path | None = None) -> None:
        self.port = port or _free_port()
        self.log = Path(log) if log else None
        self.args = [sys.executable, "-m", "volcnb.cli", "gateway", "--port", str(self.port), *args]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The API base URL."""
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        """Start; return once ``/api/v1/health`` answers."""
        import httpx

        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed below
        try:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"volcnb gateway did not start (exit {self.proc.returncode})")

    def kill(self) -> None:
        """SIGKILL: no shutdown, like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
