"""``volcnb.callbacks.serve()``: a loopback HTTP receiver for IVA callbacks that resolves upload handles.

The IVA document ends with "异步任务处理的结果通过回调的方式给出" (results come by callback) and says no
more, so the body is ours (the README's simulator section documents it)::

    {"TaskID": "<IVA TaskID>", "DataType": "image" | "video", "DataID": "<ImageID / VideoID>",
     "Name": "a.jpg", "Status": "success" | "failed", "Result": {...},          # success: the analysis
     "Error": {"Code": "...", "Message": "..."},                                # failed only
     "CallbackID": "<one per item, the same on every retry>", "Attempt": 1, "Time": "2026-12-03T12:00:00Z"}

Usage::

    async with volcnb.callbacks.serve(port=0) as cb:      # or cb = volcnb.callbacks.serve() in a blocking cell
        print(cb)                                          # cb.url is the IVA task's callback address
        up = await client.iva.add_image(task_id, "a.jpg")
        analysis = await up                                # resolved by its callback

Starlette served by uvicorn in its own thread (its own event loop), so a blocked cell (``up.result()``)
still receives. Bound to loopback unless ``host=`` says otherwise. A ``secret`` rides in ``cb.url`` as
``?token=…`` (the one thing an IVA console takes is a URL) or in an ``X-Volcnb-Token`` header; every
callback without it gets 401. Malformed bodies get 400 naming the field; unknown ids are logged and
ignored (200); nothing a sender does gets a 5xx or stops the receiver.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import logging
import secrets as _secrets
import socket
import threading
import time
from typing import Any

from ._exceptions import ValidationError
from .tasks.upload import deliver, set_receiver_count

__all__ = ["MAX_BODY", "Receiver", "check_callback", "serve"]

log = logging.getLogger("volcnb")

MAX_BODY = 1024 * 1024
"""Largest callback body accepted, bytes (413 above)."""


def check_callback(obj: Any) -> dict[str, Any]:
    """A callback body, checked field by field; ``ValueError`` naming the first bad one."""
    if not isinstance(obj, dict):
        raise ValueError(f"the callback body must be a JSON object, got {type(obj).__name__}")
    for name in ("TaskID", "DataID"):
        if not isinstance(obj.get(name), str) or not obj[name]:
            raise ValueError(f"{name} must be a non-empty string, got {obj.get(name)!r:.60}")
    if obj.get("DataType") not in ("image", "video"):
        raise ValueError(f"DataType must be 'image' or 'video', got {obj.get('DataType')!r:.40}")
    status = obj.get("Status")
    if status == "success":
        if not isinstance(obj.get("Result"), dict):
            raise ValueError(f"Result must be a JSON object when Status is success, got {obj.get('Result')!r:.60}")
    elif status == "failed":
        err = obj.get("Error")
        if not isinstance(err, dict) or not isinstance(err.get("Code"), str) or not isinstance(err.get("Message"), str):
            raise ValueError("Error must be {\"Code\": string, \"Message\": string} when Status is failed")
    else:
        raise ValueError(f"Status must be 'success' or 'failed', got {status!r:.40}")
    return obj


class Receiver:
    """A running callback receiver: ``url``, counters (``matched``, ``unknown``, ``malformed``…), recent ``events``.

    Made by :func:`serve`; ``close()`` (or leaving ``with`` / ``async with``) stops it.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, secret: str | bool | None = None,
                 path: str = "/callback") -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValidationError(f"port must be an integer 0–65535 (0: any free port), got {port!r}", field="port",
                                  limit="0–65535")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValidationError(f"path must start with '/', got {path!r}", field="path", limit="an absolute path")
        if secret is True:
            secret = _secrets.token_urlsafe(18)
        if secret is not None and secret is not False and (not isinstance(secret, str) or not secret):
            raise ValidationError("secret must be a non-empty string, True (generate one) or None", field="secret",
                                  limit="string")
        self.host, self.path = host, path
        self._secret = secret or None
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self.counts: collections.Counter[str] = collections.Counter()
        """Callbacks by outcome: ``matched``, ``repeated``, ``unknown``, ``malformed``, ``refused``, ``too_large``."""
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)
        """The last 200 callbacks: ``{"outcome", "DataID", "status", "error", "time"}``."""
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._active = False

    # --- what a user reads -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The address to give the IVA task (its callback URL); carries the token when a secret is set."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        token = f"?token={self._secret}" if self._secret else ""
        return f"http://{host}:{self.port}{self.path}{token}"

    def __repr__(self) -> str:
        shown = self.url.replace(self._secret, "***") if self._secret else self.url
        state = "running" if self._active else "stopped"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "no callbacks yet"
        return f"<volcnb.callbacks.Receiver {shown} {state}: {counts}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    @property
    def running(self) -> bool:
        """True between start and close."""
        return self._active

    # --- life cycle -------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Receiver:
        """Start serving in a daemon thread; return once it accepts connections."""
        import uvicorn

        if self._active:
            return self
        config = uvicorn.Config(self._app(), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="volcnb-callbacks", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the callback receiver did not start")
            time.sleep(0.01)
        self._active = True
        set_receiver_count(+1)
        return self

    def close(self) -> None:
        """Stop serving (safe to call twice); uploads still waiting keep waiting for another receiver."""
        if self._active:
            self._active = False
            set_receiver_count(-1)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._sock.close()

    stop = close

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Receiver:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.close)  # joining the server thread must not hold the kernel's loop

    # --- the HTTP face -----------------------------------------------------------------------------------

    def _note(self, outcome: str, **fields: Any) -> None:
        self.counts[outcome] += 1
        self.events.append({"outcome": outcome, "time": time.time(), **fields})

    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def callback(request: Request) -> JSONResponse:
            try:
                status, reply = await self._handle(request)
            except Exception as exc:  # never a 5xx, never a dead receiver
                log.warning("volcnb: a callback could not be processed: %s", type(exc).__name__)
                status, reply = 400, {"error": f"the callback could not be processed ({type(exc).__name__})"}
            return JSONResponse(reply, status)

        async def health(request: Request) -> JSONResponse:
            return JSONResponse({"ok": True, "receiver": "volcnb.callbacks"})

        return Starlette(routes=[Route(self.path, callback, methods=["POST"]),
                                 Route("/health", health, methods=["GET"])])

    async def _handle(self, request: Any) -> tuple[int, dict[str, Any]]:
        if self._secret is not None:
            given = request.query_params.get("token") or request.headers.get("x-volcnb-token") or ""
            if not hmac.compare_digest(given.encode(), self._secret.encode()):
                self._note("refused")
                return 401, {"error": "missing or wrong token"}
        body = await _read_capped(request)
        if body is None:
            self._note("too_large")
            return 413, {"error": f"a callback body is at most {MAX_BODY} bytes"}
        try:
            obj = check_callback(json.loads(body))
        except (ValueError, RecursionError) as exc:
            detail = (f"not JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError)
                      else "not JSON (nested too deeply)" if isinstance(exc, RecursionError) else str(exc))
            self._note("malformed", error=detail[:200])
            log.warning("volcnb: a malformed callback was refused (400): %s", detail[:200])
            return 400, {"error": detail}
        outcome = deliver(obj, lambda o: self._note(o, DataID=obj["DataID"], status=obj["Status"],
                                                    TaskID=obj["TaskID"]))
        if outcome == "unknown":
            log.warning("volcnb: a callback for unknown %s %s (IVA TaskID %s) was ignored", obj["DataType"],
                        obj["DataID"][:80], obj["TaskID"][:80])
        return 200, {"ok": True, "outcome": outcome}


async def _read_capped(request: Any) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def serve(port: int = 0, *, host: str = "127.0.0.1", secret: str | bool | None = None,
          path: str = "/callback") -> Receiver:
    """Start a callback receiver on ``host:port`` (loopback, any free port by default) and return it.

    ``secret``: a shared token every callback must carry (``True``: generate one); it is part of ``url``.
    Use as ``async with volcnb.callbacks.serve() as cb:``, ``with …``, or keep it and ``cb.close()`` later.
    """
    return Receiver(host=host, port=port, secret=secret, path=path).start()
