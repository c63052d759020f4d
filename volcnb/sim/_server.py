"""Serving a :class:`Simulator` over real HTTP with uvicorn, in a background thread or in the foreground."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

from ._simulator import Simulator


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThreadedServer:
    """Any ASGI ``app`` under uvicorn on loopback in a daemon thread (the simulator's, the gateway's)."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int | None = None, keep_alive: float = 5.0,
                 lifespan: Literal["auto", "on", "off"] = "off") -> None:
        import uvicorn

        self.host, self.port = host, port or free_port()
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning",
                                timeout_keep_alive=int(keep_alive), lifespan=lifespan)
        self._server: Any = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Any:
        """Start serving; return once the port accepts connections."""
        self._thread = threading.Thread(target=self._server.run, name="volcnb-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the {type(self).__name__} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop serving (in-flight requests finish)."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SimServer(ThreadedServer):
    """Run ``sim`` under uvicorn on loopback in a daemon thread (tests, benchmarks, notebooks).

    Usage::

        with SimServer(Simulator()) as server:
            client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=server.url)
    """

    def __init__(self, sim: Simulator | None = None, *, host: str = "127.0.0.1", port: int | None = None,
                 keep_alive: float = 5.0) -> None:
        self.sim = sim or Simulator()
        super().__init__(self.sim.app(), host=host, port=port, keep_alive=keep_alive)


def serve(sim: Simulator, *, host: str = "127.0.0.1", port: int = 8000, keep_alive: float = 5.0) -> None:
    """Serve in the foreground until interrupted (``volcnb sim``)."""
    import uvicorn

    uvicorn.run(sim.app(), host=host, port=port, log_level="info", timeout_keep_alive=int(keep_alive),
                lifespan="off")


class ServerProcess:
    """A ``volcnb`` server command in a child process, ready once its health route answers ``ok``."""

    COMMAND = "sim"
    HEALTH = "/sim/health"

    def __init__(self, *args: str, log: str | Path | None = None, port: int | None = None,
                 python: str | None = None) -> None:
        self.port = port or free_port()
        self.log = Path(log) if log else None
        self.args = [python or sys.executable, "-m", "volcnb.cli", self.COMMAND, "--port", str(self.port), *args]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return self.base

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def start(self, timeout: float = 30.0) -> Any:
        """Start the process; return once its health route answers."""
        import httpx

        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - closed below
        try:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if self.log:
                out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"volcnb {self.COMMAND} exited with {self.proc.returncode}:\n{self._log_text()}")
            try:
                if httpx.get(self.base + self.HEALTH, timeout=1.0).json().get("ok"):
                    return self
            except (httpx.HTTPError, ValueError):
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"volcnb {self.COMMAND} did not answer {self.HEALTH} within {timeout} s:\n{self._log_text()}")

    def stop(self) -> None:
        """Terminate politely (SIGTERM), then kill if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flush, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SimProcess(ServerProcess):
    """``volcnb sim`` in a child process (kill/restart tests, benchmarks, a user's own CI).

    Usage::

        server = SimProcess("--db", "tasks.sqlite", log="sim.log").start()
        client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=server.url)
        ...
        server.kill()     # SIGKILL: no shutdown handlers, like a crash;  server.stop() terminates politely
    """
