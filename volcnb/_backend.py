"""The default client: what ``volcnb.run``/``submit``/``map`` use when no ``client=`` is given.

No credentials anywhere means the embedded simulator, and volcnb says so once, visibly.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from ._auth import Credentials
from ._client import Client

__all__ = ["get_default_client", "set_default_client", "use_simulator"]

_lock = threading.Lock()
_default: Client | None = None


def set_default_client(client: Client | None) -> None:
    """Make ``client`` the one ``run``/``submit``/``map`` use (``None`` resets to automatic)."""
    global _default
    with _lock:
        _default = client


def get_default_client() -> Client:
    """The default client: the one set, else the real service if ``VOLC_ACCESSKEY``/``VOLC_SECRETKEY`` are set,
    else the embedded simulator (announced once on stderr)."""
    global _default
    with _lock:
        if _default is not None:
            return _default
    if Credentials.from_env() is not None:
        client = Client()
        set_default_client(client)
        return client
    use_simulator(announce=True)
    assert _default is not None
    return _default


def use_simulator(*, announce: bool = False, fresh: bool = False, **options: Any) -> Any:
    """Use the embedded simulator (in-process) as the default backend; return the :class:`Simulator`.

    Calling it again returns the same simulator unless ``fresh=True`` or simulator ``options`` are given
    (e.g. ``service_times={"saliency_seg": 0.5}``, ``faults=Faults(...)``, ``db="tasks.sqlite"``).
    """
    import httpx

    from .sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, Simulator

    with _lock:
        current = _default
    if current is not None and current.simulator is not None and not fresh and not options:
        return current.simulator
    sim = Simulator(**options)
    client = Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, transport=httpx.ASGITransport(app=sim.app()))
    client.simulator = sim
    set_default_client(client)
    if announce and not os.environ.get("VOLCNB_QUIET"):
        print("volcnb: no Volcengine credentials (VOLC_ACCESSKEY / VOLC_SECRETKEY) found, so tasks run on the "
              "embedded SIMULATOR. Set them, or volcnb.set_default_client(volcnb.Client(...)), for the real service.",
              file=sys.stderr)
    return sim
