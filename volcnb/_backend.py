"""``volcnb.backend()``: which service the default client talks to, said in one line, and the simulator's knobs.

Notebooks start with it so a reader knows whether tasks are paid for; cells that only make sense on a
simulator (fault knobs, risk triggers, short service times) ask :attr:`Backend.is_simulator` and say why
they skip on the real service. The same :meth:`Backend.configure` document drives the embedded simulator and
a ``volcnb sim`` over HTTP (its ``POST /sim/config``), so one notebook runs on either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ._verbs import get_default_client, is_volcnb_sim
from .http.api import ApiClient

__all__ = ["Backend", "backend"]

Kind = Literal["embedded simulator", "volcnb sim", "Volcengine"]


@dataclass(frozen=True)
class Backend:
    """What :func:`backend` found: ``kind``, ``url``, where the keys came from, a short access-key hint."""

    kind: Kind
    url: str
    key_source: str
    access_key: str
    client: ApiClient = field(repr=False, compare=False)

    @property
    def is_simulator(self) -> bool:
        """True for the embedded simulator and for a ``volcnb sim`` over HTTP (nothing is paid for)."""
        return self.kind != "Volcengine"

    def __str__(self) -> str:
        where = {"embedded simulator": "the embedded simulator (in this process)",
                 "volcnb sim": f"a volcnb simulator at {self.url}",
                 "Volcengine": f"the real Volcengine service at {self.url} (tasks are billed)"}[self.kind]
        return f"backend: {where}; keys from {self.key_source}, access key {self.access_key}"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def configure(self, **settings: Any) -> bool:
        """Set simulator knobs (``service_times={...}``, ``faults={...}``, ``plan={...}``, ``quotas={...}``,
        ``queue_time``, ``iva_callbacks={TaskID: url}``, ``iva_callback``, ``iva_task_ids``, ``iva_service_time``):
        the ``/sim/config`` document. Returns False, changing nothing, on the real service."""
        if not self.is_simulator:
            return False
        sim = self.client.simulator
        if sim is not None:
            from .sim._config import apply_config

            apply_config(sim, settings)
            return True
        reply = httpx.post(self.url.rstrip("/") + "/sim/config", json=settings, timeout=10.0)
        if reply.status_code != 200:
            raise ValueError(f"the simulator refused the configuration: {reply.json().get('error', reply.text)}")
        return True

    def stats(self) -> dict[str, Any] | None:
        """A simulator's counters (submits, polls, rejections by code, …); ``None`` on the real service."""
        if not self.is_simulator:
            return None
        sim = self.client.simulator
        if sim is not None:
            found: dict[str, Any] = sim.stats()
            return found
        reply = httpx.get(self.url.rstrip("/") + "/sim/stats", timeout=10.0)
        reply.raise_for_status()
        counted: dict[str, Any] = reply.json()
        return counted

    def skip(self, why: str) -> bool:
        """In a simulator-only cell: ``if volcnb.backend().skip("needs fault knobs"): ...``. Prints why and
        returns True on the real service; returns False (run the cell) on a simulator."""
        if self.is_simulator:
            return False
        print(f"skipped on the real service: {why}")
        return True


def _hint(access_key: str) -> str:
    from .sim import DEFAULT_ACCESS_KEY  # lazily: `import volcnb` stays free of the server stack

    return access_key if access_key == DEFAULT_ACCESS_KEY else access_key[:6] + "…"


def backend(client: ApiClient | None = None) -> Backend:
    """Describe ``client`` (default: the default client, chosen now if need be): embedded simulator, a
    ``volcnb sim`` over HTTP (recognised by its ``/sim/health``), or the real service. Never shows a secret."""
    client = client or get_default_client()
    kind: Kind
    if client.simulator is not None:
        kind = "embedded simulator"
    elif client.transport is None and is_volcnb_sim(client.cv_url):
        kind = "volcnb sim"
    else:
        kind = "Volcengine"
    source = "the simulator's public default pair" if client.simulator is not None else client.key_source
    return Backend(kind, client.cv_url, source, _hint(client.credentials.access_key), client)
