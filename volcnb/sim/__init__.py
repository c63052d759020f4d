"""A faithful local Volcengine: the embedded default backend for demos, notebooks and tests.

In-process::

    sim = volcnb.use_simulator()          # a Simulator, with volcnb's default client pointed at it
    sim.faults.plan("CVSync2AsyncGetResult", "http_500", "http_500")
    sim.counters.polls

Over HTTP (``volcnb sim --port 8000``) for the official SDK, fault and timeout tests, and benchmarks.
See :mod:`volcnb.sim._engine` for the inferred semantics (life cycle, quotas, expiry, moderation triggers).
"""

from __future__ import annotations

from ._compute import RISK_IMAGE_COLOR, RISK_TRIGGERS
from ._iva_items import write_sample_video
from ._model import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Counters, Faults, Quotas, ServiceTime
from ._server import SimProcess, SimServer
from ._simulator import Simulator

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET_KEY",
    "RISK_IMAGE_COLOR",
    "RISK_TRIGGERS",
    "Counters",
    "Faults",
    "Quotas",
    "ServiceTime",
    "SimProcess",
    "SimServer",
    "Simulator",
    "write_sample_video",
]
