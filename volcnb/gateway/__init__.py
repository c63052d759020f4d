"""The Jimeng image gateway (the 即梦AI异步接口 document) and its notebook client.

``volcnb gateway --port 8080 [--db PATH]`` serves it; :func:`serve` starts one from a notebook without
blocking; :class:`GatewayClient` talks to one. Importing this package never imports Starlette or uvicorn.
"""

from __future__ import annotations

from typing import Any

from .client import GatewayClient, GatewayError, GatewayTask

__all__ = ["GatewayClient", "GatewayError", "GatewayTask", "serve"]


def serve(port: int = 0, db: str | None = None, *, host: str = "127.0.0.1", token: str | None = None,
          per_user: int = 10, max_n: int = 4, task_timeout: float = 300.0,
          service_time: float | None = None, lease: float = 15.0) -> Any:
    """Start a gateway in a background thread; return its handle (``.url``, ``.page_url``, ``.stop()``,
    a context manager). ``service_time`` sets the simulated upstream's median seconds per image."""
    from ._server import GatewayServer, build_app
    from ._spec import Limits

    limits = Limits(per_user=per_user, max_n=max_n, task_timeout=task_timeout, lease=lease)
    app = build_app(db, limits=limits, token=token, service_time=service_time)
    return GatewayServer(app, host=host, port=port).start()
