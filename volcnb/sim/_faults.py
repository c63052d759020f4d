"""A raw ASGI layer that injects the configured faults, connection drops included.

Dropped connections need a real server: under ``httpx.ASGITransport`` (in-process) a "drop" shows up as
an incomplete response instead. Fault, timeout and streaming tests therefore run over uvicorn.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._engine import Engine

__all__ = ["FAULT_KEY", "FaultLayer"]

FAULT_KEY = "volcnb.fault"
"""The ASGI scope key under which the chosen fault reaches the app."""


class FaultLayer:
    """Picks the fault for each API request and performs connection drops itself."""

    def __init__(self, app: ASGIApp, sim: Engine) -> None:
        self.app, self.sim = app, sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/":
            await self.app(scope, receive, send)
            return
        action = ""
        for part in scope.get("query_string", b"").decode("latin-1").split("&"):
            if part.startswith("Action="):
                action = part[len("Action="):]
        kind = self.sim.faults.pick(action, self.sim.rng)
        if kind is None:
            await self.app(scope, receive, send)
            return
        self.sim.counters.faults[kind] += 1
        if kind == "drop":
            await _drain(receive)
            await _drop(send)
            return
        if kind == "drop_after":
            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await _drop(send)
            return
        scope = dict(scope)
        scope[FAULT_KEY] = kind
        await self.app(scope, receive, send)


async def _drain(receive: Receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body"):
            return


async def _drop(send: Send) -> None:
    """Start a response, send part of it, and give up: the server then closes the connection."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")]})
    await send({"type": "http.response.body", "body": b'{"code":', "more_body": True})
