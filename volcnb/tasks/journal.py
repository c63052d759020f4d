"""The task journal: a SQLite ledger of every submit, so nothing paid is lost or paid twice.

Each submit is written as an *intent* before it is sent (a fingerprint of backend, req_key, inputs and
parameters), its task_id right after the service answers, then its status and result files as they
change. A process that dies keeps everything it paid for: :func:`volcnb.resume` re-attaches the
unfinished tasks, and re-running the same :func:`volcnb.map` reuses them. An intent left without a
task_id (the process died, or the connection broke, between sending and the answer) is *possibly
created*: it is reported, never silently resubmitted.

It holds no secret: backends are named by :attr:`ApiClient.backend_id` (host and access key id, or the
in-process simulator's instance id). The default file is ``journal.sqlite`` in :func:`volcnb._home.home`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._home import home
from .._sqlite import Database

__all__ = ["ENDED", "Entry", "Journal", "default_journal_path"]

#: Entry states that never change again (a failed entry is retried only on the user's word).
ENDED = frozenset({"done", "failed", "cancelled", "expired", "invalid"})
UNFINISHED = ("in_queue", "generating", "submitted")

_MIGRATIONS = [
    """
    CREATE TABLE batches (
        id TEXT PRIMARY KEY,
        backend TEXT NOT NULL,
        req_key TEXT NOT NULL,
        label TEXT NOT NULL,
        out_dir TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        batch_id TEXT,
        idx INTEGER,
        backend TEXT NOT NULL,
        req_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        item TEXT NOT NULL,
        params TEXT NOT NULL,
        state TEXT NOT NULL,
        task_id TEXT,
        files TEXT,
        error TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX entries_fingerprint ON entries (backend, fingerprint);
    CREATE INDEX entries_batch ON entries (batch_id, idx);
    CREATE INDEX entries_state ON entries (backend, state);
    """,
]


def default_journal_path() -> Path:
    """``journal.sqlite`` in volcnb's home folder (``VOLCNB_HOME``, else ``./.volcnb``)."""
    return home() / "journal.sqlite"


@dataclass(frozen=True)
class Entry:
    """One journaled submit."""

    id: int
    batch_id: str | None
    idx: int | None
    backend: str
    req_key: str
    fingerprint: str
    item: str
    """What the input was, as far as it can be said again (a path, a URL, or a description)."""
    params: dict[str, Any]
    state: str
    """``intent`` (sent, no answer yet), ``submitted``/``in_queue``/``generating``, or an ended state."""
    task_id: str | None
    files: list[str]
    error: str | None
    created_at: float
    updated_at: float

    @property
    def possibly_created(self) -> bool:
        """An intent with no task_id: the submit may have created a task that nobody knows the id of."""
        return self.state == "intent"

    @property
    def ended(self) -> bool:
        """Whether the entry reached a state that never changes again."""
        return self.state in ENDED


_COLUMNS = ("id, batch_id, idx, backend, req_key, fingerprint, item, params, state, task_id, files, error, "
            "created_at, updated_at")


def _entry(row: Sequence[Any]) -> Entry:
    return Entry(id=row[0], batch_id=row[1], idx=row[2], backend=row[3], req_key=row[4], fingerprint=row[5],
                 item=row[6], params=json.loads(row[7]), state=row[8], task_id=row[9],
                 files=json.loads(row[10]) if row[10] else [], error=row[11], created_at=row[12],
                 updated_at=row[13])


class Journal:
    """The ledger (``path=None``: the default file; ``":memory:"`` for a throwaway one)."""

    def __init__(self, path: str | Path | None = None) -> None:
        where = default_journal_path() if path is None else path
        self.path = None if str(where) == ":memory:" else Path(where)
        self.db = Database(self.path, _MIGRATIONS)

    def __repr__(self) -> str:
        return f"<volcnb.Journal {self.path or ':memory:'}>"

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # --- batches ---------------------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        """The folder the journal lives in (batches write their results beside it by default)."""
        return self.path.parent if self.path is not None else home()

    def new_batch(self, batch_id: str, backend: str, req_key: str, label: str, out_dir: str | None) -> None:
        """Record a batch."""
        self.db.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?)",
                        (batch_id, backend, req_key, label, out_dir, time.time()))

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        """A batch's row as a dict, or ``None``."""
        rows = self.db.execute("SELECT id, backend, req_key, label, out_dir, created_at FROM batches WHERE id = ?",
                               (batch_id,))
        if not rows:
            return None
        keys = ("id", "backend", "req_key", "label", "out_dir", "created_at")
        return dict(zip(keys, rows[0], strict=True))

    def batches(self, backend: str | None = None) -> list[dict[str, Any]]:
        """Every batch (of one backend), newest first, with counts per state."""
        where, args = ("WHERE b.backend = ?", (backend,)) if backend else ("", ())
        sql = ("SELECT b.id, b.backend, b.req_key, b.label, b.out_dir, b.created_at, e.state, COUNT(e.id) "
               "FROM batches b LEFT JOIN entries e ON e.batch_id = b.id " + where +
               " GROUP BY b.id, e.state ORDER BY b.created_at DESC")  # constant clauses; values are bound
        rows = self.db.execute(sql, args)
        out: dict[str, dict[str, Any]] = {}
        for bid, back, key, label, out_dir, created, state, n in rows:
            b = out.setdefault(bid, {"id": bid, "backend": back, "req_key": key, "label": label,
                                     "out_dir": out_dir, "created_at": created, "states": {}})
            if state is not None:
                b["states"][state] = n
        return list(out.values())

    # --- entries ---------------------------------------------------------------------------------

    def intent(self, *, backend: str, req_key: str, fingerprint: str, item: str, params: dict[str, Any],
               batch_id: str | None = None, idx: int | None = None) -> int:
        """Record that a submit is about to be sent; return the entry id."""
        now = time.time()
        with self.db.transaction() as db:
            cur = db.execute(
                "INSERT INTO entries (batch_id, idx, backend, req_key, fingerprint, item, params, state, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'intent', ?, ?)",
                (batch_id, idx, backend, req_key, fingerprint, item, json.dumps(params, default=str), now, now))
            assert cur.lastrowid is not None
            return cur.lastrowid

    def landed(self, entry_id: int, task_id: str) -> None:
        """The service answered the submit with ``task_id``."""
        self.db.execute("UPDATE entries SET task_id = ?, state = 'submitted', updated_at = ? WHERE id = ?",
                        (task_id, time.time(), entry_id))

    def update(self, entry_id: int, state: str, *, files: Sequence[str] | None = None,
               error: str | None = None) -> None:
        """A new state (and the result files or the error once it ended)."""
        self.db.execute(
            "UPDATE entries SET state = ?, files = COALESCE(?, files), error = COALESCE(?, error), "
            "updated_at = ? WHERE id = ?",
            (state, json.dumps(list(files)) if files is not None else None, error, time.time(), entry_id))

    def get(self, entry_id: int) -> Entry | None:
        """One entry."""
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM entries WHERE id = ?", (entry_id,))  # noqa: S608
        return _entry(rows[0]) if rows else None

    def latest(self, backend: str, fingerprint: str) -> Entry | None:
        """The newest entry for this submit on this backend (what a re-run reuses)."""
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM entries WHERE backend = ? AND fingerprint = ? "  # noqa: S608
                               "ORDER BY id DESC LIMIT 1", (backend, fingerprint))
        return _entry(rows[0]) if rows else None

    def entries(self, *, backend: str | None = None, batch_id: str | None = None,
                unfinished: bool = False) -> Iterator[Entry]:
        """Entries in submit order, filtered; ``unfinished`` = not ended (possibly-created intents included)."""
        clauses, args = [], []
        if backend is not None:
            clauses.append("backend = ?")
            args.append(backend)
        if batch_id is not None:
            clauses.append("batch_id = ?")
            args.append(batch_id)
        if unfinished:
            clauses.append(f"state NOT IN ({', '.join('?' * len(ENDED))})")
            args.extend(sorted(ENDED))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        # constant columns and clauses; every value is a bound parameter
        for row in self.db.execute(f"SELECT {_COLUMNS} FROM entries {where} ORDER BY id", args):  # noqa: S608
            yield _entry(row)
