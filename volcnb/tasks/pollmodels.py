"""What the adaptive poller learned, kept between processes: per backend and req_key, the last finished
tasks' censored times-to-done ("done between ages lo and hi") and when they were saved.

A new process starts from them instead of from the catalog's prior alone; their weight halves every
``half_life`` seconds of age (a stale model decays toward the prior). The file sits beside the journal
(``polling.sqlite`` in :func:`volcnb._home.home`); backends are named as the journal names them
(:attr:`ApiClient.backend_id`: host and access key id, or the simulator's identity), so it holds no secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._home import home
from .._sqlite import Database

__all__ = ["Learned", "ModelStore", "default_store_path"]

_MIGRATIONS = [
    """
    CREATE TABLE poll_models (
        backend TEXT NOT NULL,
        req_key TEXT NOT NULL,
        obs TEXT NOT NULL,
        saved_at REAL NOT NULL,
        PRIMARY KEY (backend, req_key)
    );
    """,
]
KEEP = 100  # finished tasks kept per backend and req_key


def default_store_path() -> Path:
    """``polling.sqlite`` in volcnb's home folder, beside the journal."""
    return home() / "polling.sqlite"


@dataclass(frozen=True)
class Learned:
    """A persisted model: finished tasks as ``(lo, hi)`` ages (oldest first), and the weight they carry now
    (1 when just saved, halving every ``half_life`` seconds)."""

    obs: list[tuple[float, float]]
    weight: float


class ModelStore:
    """Learned polling models of one backend (``path=":memory:"``: a throwaway store; ``None``: the default
    file). ``now`` is the wall clock that ages the models (injectable for deterministic benchmarks)."""

    def __init__(self, backend: str, path: str | Path | None = None, *, half_life: float = 7 * 86400.0,
                 now: Callable[[], float] = time.time) -> None:
        where = default_store_path() if path is None else path
        self.path = None if str(where) == ":memory:" else Path(where)
        self.backend = backend
        self.half_life = half_life
        self.now = now
        self.db = Database(self.path, _MIGRATIONS)

    def __repr__(self) -> str:
        return f"<volcnb.ModelStore {self.backend!r} {self.path or ':memory:'}>"

    def load(self, req_key: str) -> Learned | None:
        """The persisted model of ``req_key``, or ``None`` (none, or decayed to almost nothing)."""
        rows = self.db.execute("SELECT obs, saved_at FROM poll_models WHERE backend = ? AND req_key = ?",
                               (self.backend, req_key))
        if not rows:
            return None
        obs = [(float(lo), float(hi)) for lo, hi in json.loads(rows[0][0])]
        weight = 0.5 ** (max(0.0, self.now() - float(rows[0][1])) / self.half_life)
        return Learned(obs, weight) if obs and weight >= 0.05 else None

    def save(self, req_key: str, obs: Sequence[tuple[float, float]]) -> None:
        """Replace the model of ``req_key`` by the last :data:`KEEP` of ``obs`` (oldest first)."""
        data = json.dumps([[round(lo, 4), round(hi, 4)] for lo, hi in list(obs)[-KEEP:]])
        self.db.execute("INSERT OR REPLACE INTO poll_models VALUES (?, ?, ?, ?)",
                        (self.backend, req_key, data, self.now()))

    def forget(self, req_key: str | None = None) -> None:
        """Drop the model of ``req_key`` (of every req_key when ``None``)."""
        if req_key is None:
            self.db.execute("DELETE FROM poll_models WHERE backend = ?", (self.backend,))
        else:
            self.db.execute("DELETE FROM poll_models WHERE backend = ? AND req_key = ?", (self.backend, req_key))

    def close(self) -> None:
        """Close the database."""
        self.db.close()
