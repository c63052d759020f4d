"""The :class:`Simulator`: the engine plus its HTTP face (``sim.app()``)."""

from __future__ import annotations

from typing import Any

from ._app import create_app
from ._engine import Engine

__all__ = ["Simulator"]


class Simulator(Engine):
    """A faithful local Volcengine: CV sync-to-async + IVA uploads, with quotas, expiry and faults.

    ``keys`` maps access keys to secret keys (default: one documented local pair). ``db`` keeps tasks in a
    SQLite file so they survive a restart. ``clock`` is injectable (tests jump 12 h ahead).
    """

    def app(self) -> Any:
        """The Starlette ASGI application serving this simulator."""
        return create_app(self)

    def lag(self, task_id: str, noticed_at: float) -> float | None:
        """Seconds between the task turning done here and ``noticed_at`` (a client's ``finished_at``);
        ``None`` while it is not done. For benchmarks and tests: clients never see the true finish."""
        row = self.store.get_task(task_id)
        finish = row.visible_finish if row else None
        return None if finish is None else noticed_at - finish
