"""The one SQLite helper: WAL for files, a lock for threads, numbered schema migrations, transactions.

Shared by every store (the simulator's tasks, the task journal, the gateway). A migration list is
applied in order up to ``PRAGMA user_version``, so a file made by an older volcnb is upgraded in place
and a newer one is refused rather than misread.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Database", "SchemaTooNew"]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer volcnb (its schema version is above the known migrations)."""


class Database:
    """A thread-safe SQLite connection (in memory when ``path`` is ``None``) with migrations applied.

    ``migrations[i]`` is a SQL script that takes the schema from version ``i`` to ``i + 1``.
    """

    def __init__(self, path: str | Path | None, migrations: Sequence[str], *, busy_timeout: float = 10.0) -> None:
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                   timeout=busy_timeout)
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate(migrations)

    def _migrate(self, migrations: Sequence[str]) -> None:
        with self.lock:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version > len(migrations):
                raise SchemaTooNew(f"{self.path} has schema version {version}; this volcnb knows "
                                   f"{len(migrations)} (upgrade volcnb)")
            for target in range(version + 1, len(migrations) + 1):
                with self.transaction():
                    for statement in _statements(migrations[target - 1]):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {target}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error), holding the lock throughout."""
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement under the lock; return all rows."""
        with self.lock:
            return self._db.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many rows under the lock."""
        with self.lock:
            self._db.executemany(sql, rows)

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self._db.close()


def _statements(script: str) -> list[str]:
    """A script's statements (``sqlite3.complete_statement`` decides where each ends)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
