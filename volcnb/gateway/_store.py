"""The gateway's task store: SQLite (the shared helper) behind a narrow interface, with expiring leases.

Who polls an upstream task is a row's lease (``lease_owner`` until ``lease_until``), never process memory,
so a restarted gateway (or, later, another replica on a PostgreSQL store) takes over a task whose lease ran out.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._sqlite import Database

__all__ = ["UNFINISHED", "Store", "TaskRow"]

UNFINISHED = ("pending", "processing")

_MIGRATIONS = ["""
CREATE TABLE tasks (
    task_id TEXT PRIMARY KEY, system_task_id TEXT NOT NULL, user_id TEXT NOT NULL, status TEXT NOT NULL,
    params TEXT NOT NULL, created REAL NOT NULL, finished REAL, upstream TEXT NOT NULL DEFAULT '[]',
    images TEXT NOT NULL DEFAULT '[]', error TEXT, lease_owner TEXT, lease_until REAL NOT NULL DEFAULT 0);
CREATE INDEX tasks_user ON tasks(user_id, status);
CREATE INDEX tasks_open ON tasks(status, lease_until);
CREATE TABLE images (image_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, png BLOB NOT NULL);
CREATE TABLE users (user_id TEXT PRIMARY KEY, created REAL NOT NULL);
"""]


@dataclass
class TaskRow:
    """One gateway task as stored."""

    task_id: str
    system_task_id: str
    user_id: str
    status: str
    params: dict[str, Any]
    created: float
    finished: float | None = None
    upstream: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    error: str | None = None


_COLUMNS = "task_id, system_task_id, user_id, status, params, created, finished, upstream, images, error"

_INSERT = f"INSERT INTO tasks ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"  # noqa: S608 - constant columns
_BY_ID = f"SELECT {_COLUMNS} FROM tasks WHERE task_id=?"  # noqa: S608
_BY_USER = f"SELECT {_COLUMNS} FROM tasks WHERE user_id=? ORDER BY created DESC LIMIT ?"  # noqa: S608


def _row(r: tuple[Any, ...]) -> TaskRow:
    return TaskRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], json.loads(r[7]), json.loads(r[8]), r[9])


class Store:
    """The narrow interface the gateway needs: create (under the per-user limit), read, lease, update."""

    def __init__(self, path: str | Path | None) -> None:
        self.db = Database(path, _MIGRATIONS)

    def create(self, user_id: str, params: dict[str, Any], *, limit: int) -> TaskRow | None:
        """Insert a pending task with a fresh unique id; ``None`` when the user already has ``limit`` unfinished."""
        with self.db.transaction() as db:
            (open_,) = db.execute("SELECT COUNT(*) FROM tasks WHERE user_id=? AND status IN (?, ?)",
                                  (user_id, *UNFINISHED)).fetchone()
            if open_ >= limit:
                return None
            now = time.time()
            while True:
                row = TaskRow(f"volcengine_img_{int(now * 1000)}{secrets.randbelow(10**6):06d}",
                              secrets.token_hex(9)[:17], user_id, "pending", params, now)
                try:
                    db.execute(_INSERT,
                               (row.task_id, row.system_task_id, user_id, "pending", json.dumps(params), now,
                                None, "[]", "[]", None))
                    return row
                except sqlite3.IntegrityError:  # the same millisecond and random suffix: draw again
                    continue

    def get(self, task_id: str) -> TaskRow | None:
        """The task, or ``None``."""
        rows = self.db.execute(_BY_ID, (task_id,))
        return _row(rows[0]) if rows else None

    def recent(self, user_id: str, limit: int = 20) -> list[TaskRow]:
        """The user's most recent tasks, newest first."""
        rows = self.db.execute(_BY_USER,
                               (user_id, limit))
        return [_row(r) for r in rows]

    def claim(self, owner: str, *, lease: float, limit: int) -> list[TaskRow]:
        """Take the lease on up to ``limit`` unfinished tasks whose lease is free or expired (oldest first)."""
        now = time.time()
        with self.db.transaction() as db:
            ids = [r[0] for r in db.execute(
                "SELECT task_id FROM tasks WHERE status IN (?, ?) AND lease_until < ? ORDER BY created LIMIT ?",
                (*UNFINISHED, now, limit)).fetchall()]
            for tid in ids:
                db.execute("UPDATE tasks SET lease_owner=?, lease_until=? WHERE task_id=?", (owner, now + lease, tid))
            return [_row(db.execute(_BY_ID, (t,)).fetchone()) for t in ids]

    def renew(self, owner: str, task_ids: list[str], *, lease: float) -> None:
        """Extend this owner's leases."""
        until = time.time() + lease
        self.db.executemany("UPDATE tasks SET lease_until=? WHERE task_id=? AND lease_owner=?",
                            [(until, t, owner) for t in task_ids])

    def update(self, task_id: str, **fields: Any) -> None:
        """Set ``status``, ``upstream``, ``images``, ``error`` or ``finished`` (lists stored as JSON)."""
        allowed = {"status", "upstream", "images", "error", "finished", "lease_until"}
        cols = [k for k in fields if k in allowed]
        values = [json.dumps(fields[k]) if isinstance(fields[k], list) else fields[k] for k in cols]
        self.db.execute(f"UPDATE tasks SET {', '.join(c + '=?' for c in cols)} WHERE task_id=?",  # noqa: S608
                        (*values, task_id))

    def put_image(self, image_id: str, task_id: str, png: bytes) -> None:
        """Keep one generated picture (upstream links expire)."""
        self.db.execute("INSERT OR REPLACE INTO images (image_id, task_id, png) VALUES (?,?,?)",
                        (image_id, task_id, png))

    def image(self, image_id: str) -> bytes | None:
        """A stored picture's PNG bytes, or ``None``."""
        rows = self.db.execute("SELECT png FROM images WHERE image_id=?", (image_id,))
        return bytes(rows[0][0]) if rows else None

    def add_user(self, user_id: str) -> tuple[float, bool]:
        """Register a user; ``(created, new)``."""
        with self.db.transaction() as db:
            got = db.execute("SELECT created FROM users WHERE user_id=?", (user_id,)).fetchone()
            if got:
                return float(got[0]), False
            now = time.time()
            db.execute("INSERT INTO users (user_id, created) VALUES (?, ?)", (user_id, now))
            return now, True

    def close(self) -> None:
        """Close the database."""
        self.db.close()
