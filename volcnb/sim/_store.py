"""The simulator's task store: SQLite, in memory by default or in a file (``--db``) to survive restarts.

One implementation for both modes (``":memory:"`` vs a path), guarded by a lock because the compute
threads write results while the event loop reads. Accepted tasks are written before the submit reply is
sent, with their full request body, so a task whose computation was interrupted by a restart is
recomputed on start-up: an accepted task is never lost.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._sqlite import Database

MIGRATIONS = ("""
CREATE TABLE IF NOT EXISTS tasks (
    task_id      TEXT PRIMARY KEY,
    access_key   TEXT NOT NULL,
    req_key      TEXT NOT NULL,
    body         TEXT NOT NULL,          -- the submit body (JSON), inputs included, for recomputation
    body_hash    TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    start_at     REAL NOT NULL,          -- in_queue -> generating
    finish_at    REAL NOT NULL,          -- scheduled end of generating
    computed_at  REAL,                   -- when the output was ready (NULL while computing)
    state        TEXT NOT NULL DEFAULT 'active',   -- active | cancelled | lost
    code         INTEGER NOT NULL DEFAULT 10000,  -- the task's outcome code
    message      TEXT NOT NULL DEFAULT 'Success',
    result       TEXT,                   -- data fields other than images (JSON)
    notes        TEXT                    -- JSON list of notes for response_data
);
CREATE INDEX IF NOT EXISTS tasks_ak ON tasks(access_key, computed_at);
CREATE INDEX IF NOT EXISTS tasks_submitted ON tasks(submitted_at);
CREATE TABLE IF NOT EXISTS outputs (
    task_id TEXT NOT NULL,
    idx     INTEGER NOT NULL,
    data    BLOB NOT NULL,               -- PNG bytes
    PRIMARY KEY (task_id, idx)
);
CREATE TABLE IF NOT EXISTS files (
    token      TEXT PRIMARY KEY,
    data       BLOB NOT NULL,
    mime       TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    access_key TEXT NOT NULL,
    request    TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created_at REAL NOT NULL
);
""", """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
""")


@dataclass
class TaskRow:
    """One stored task."""

    task_id: str
    access_key: str
    req_key: str
    body: dict[str, Any]
    body_hash: str
    submitted_at: float
    start_at: float
    finish_at: float
    computed_at: float | None = None
    state: str = "active"
    code: int = 10000
    message: str = "Success"
    result: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def visible_finish(self) -> float | None:
        """When the task turns ``done`` for a poller: the later of schedule and computation."""
        if self.computed_at is None:
            return None
        return max(self.finish_at, self.computed_at)


_COLS = ("task_id, access_key, req_key, body, body_hash, submitted_at, start_at, finish_at, computed_at, state, code, "
         "message, result, notes")


def _row(r: tuple[Any, ...]) -> TaskRow:
    return TaskRow(
        task_id=r[0], access_key=r[1], req_key=r[2], body=json.loads(r[3]), body_hash=r[4], submitted_at=r[5],
        start_at=r[6], finish_at=r[7], computed_at=r[8], state=r[9], code=r[10], message=r[11],
        result=json.loads(r[12]) if r[12] else None, notes=json.loads(r[13]) if r[13] else [])


def _first(rows: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    return rows[0] if rows else None


class Store:
    """Thread-safe SQLite storage of tasks, outputs, served files and IVA uploads."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._db = Database(path, MIGRATIONS)
        self.path = self._db.path
        self._lock = self._db.lock

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def instance_id(self) -> str:
        """This store's identity, made once and kept in the database (so a ``db`` file keeps it)."""
        with self._db.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key='instance_id'").fetchone()
            if row:
                return str(row[0])
            value = uuid.uuid4().hex
            db.execute("INSERT INTO meta (key, value) VALUES ('instance_id', ?)", (value,))
            return value

    def add_task(self, row: TaskRow) -> None:
        """Insert an accepted task (committed before the reply is sent)."""
        with self._lock:
            self._db.execute(
                f"INSERT INTO tasks ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608 - constant columns
                (row.task_id, row.access_key, row.req_key, json.dumps(row.body), row.body_hash, row.submitted_at,
                 row.start_at, row.finish_at, row.computed_at, row.state, row.code, row.message,
                 json.dumps(row.result) if row.result is not None else None, json.dumps(row.notes)))

    def get_task(self, task_id: str) -> TaskRow | None:
        """A task by id."""
        with self._lock:
            r = _first(self._db.execute(f"SELECT {_COLS} FROM tasks WHERE task_id=?", (task_id,)))  # noqa: S608
        return _row(r) if r else None

    def finish_task(self, task_id: str, *, computed_at: float, code: int, message: str, result: dict[str, Any] | None,
                    outputs: list[bytes], notes: list[str]) -> None:
        """Store a computed outcome and its output images atomically."""
        with self._db.transaction() as db:
            db.execute("DELETE FROM outputs WHERE task_id=?", (task_id,))
            db.executemany("INSERT INTO outputs (task_id, idx, data) VALUES (?,?,?)",
                           [(task_id, i, b) for i, b in enumerate(outputs)])
            db.execute("UPDATE tasks SET computed_at=?, code=?, message=?, result=?, notes=? WHERE task_id=?",
                       (computed_at, code, message, json.dumps(result) if result is not None else None,
                        json.dumps(notes), task_id))

    def set_state(self, task_id: str, state: str) -> None:
        """Mark a task cancelled or lost."""
        with self._lock:
            self._db.execute("UPDATE tasks SET state=? WHERE task_id=?", (state, task_id))

    def outputs(self, task_id: str) -> list[bytes]:
        """The output images of a task, in order."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM outputs WHERE task_id=? ORDER BY idx", (task_id,))
        return [bytes(r[0]) for r in rows]

    def unfinished(self, access_key: str, now: float) -> int:
        """Tasks of an access key not yet visible as done (for the 50430 concurrency quota)."""
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COUNT(*) FROM tasks WHERE access_key=? AND state='active' AND "
                "(computed_at IS NULL OR computed_at > ? OR finish_at > ?)", (access_key, now, now))[0]
        return int(n)

    def pending_computation(self) -> list[TaskRow]:
        """Accepted tasks whose output was never computed (e.g. the server was killed mid-way)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM tasks WHERE computed_at IS NULL AND state='active'")  # noqa: S608
        return [_row(r) for r in rows]

    def has_body(self, access_key: str, body_hash: str) -> bool:
        """Whether this access key already submitted an identical body (duplicate counter)."""
        with self._lock:
            r = _first(self._db.execute("SELECT 1 FROM tasks WHERE access_key=? AND body_hash=? LIMIT 1",
                                        (access_key, body_hash)))
        return r is not None

    def purge(self, before: float) -> int:
        """Delete tasks submitted before ``before`` (and their outputs); return how many."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT task_id FROM tasks WHERE submitted_at < ?", (before,))]
            for tid in ids:
                self._db.execute("DELETE FROM outputs WHERE task_id=?", (tid,))
                self._db.execute("DELETE FROM tasks WHERE task_id=?", (tid,))
            self._db.execute("DELETE FROM files WHERE expires_at < ?", (before,))
        return len(ids)

    def timings(self) -> Iterator[tuple[str, str, float, float | None, str]]:
        """``(task_id, req_key, submitted_at, visible finish, state)`` for every task (benchmarks)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT task_id, req_key, submitted_at, finish_at, computed_at, state FROM tasks")
        for tid, rk, sub, fin, comp, state in rows:
            yield tid, rk, sub, (max(fin, comp) if comp is not None else None), state

    def add_file(self, token: str, data: bytes, mime: str, expires_at: float) -> None:
        """Keep bytes served under ``/sim/files/{token}`` until ``expires_at``."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO files (token, data, mime, expires_at) VALUES (?,?,?,?)",
                             (token, data, mime, expires_at))

    def get_file(self, token: str) -> tuple[bytes, str, float] | None:
        """``(data, mime, expires_at)`` of a served file."""
        with self._lock:
            r = _first(self._db.execute("SELECT data, mime, expires_at FROM files WHERE token=?", (token,)))
        return (bytes(r[0]), r[1], r[2]) if r else None

    def add_upload(self, upload_id: str, kind: str, task_id: str, access_key: str, request: dict[str, Any],
                   size: int, created_at: float) -> None:
        """Record an IVA upload."""
        with self._lock:
            self._db.execute(
                "INSERT INTO uploads (id, kind, task_id, access_key, request, size, created_at) VALUES (?,?,?,?,?,?,?)",
                (upload_id, kind, task_id, access_key, json.dumps(request), size, created_at))

    def count(self, table: str) -> int:
        """Rows in a table (tests, stats)."""
        if table not in ("tasks", "outputs", "files", "uploads"):
            raise ValueError(table)
        with self._lock:
            (n,) = self._db.execute(f"SELECT COUNT(*) FROM {table}")[0]  # noqa: S608 - whitelisted name
        return int(n)
