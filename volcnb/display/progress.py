"""Text progress for terminals and logs: one line redrawn in place on a TTY, one line per change elsewhere.

Used by ``volcnb run`` and as the fallback of the notebook views when no widget front end is available.
It listens to :meth:`Task.on_change`, so it moves while ``task.result()`` waits, without threads.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

BAR_WIDTH = 24


def summarize(tasks: Sequence[Any]) -> str:
    """``3/5 done · 1 generating · 1 failed`` for a set of tasks."""
    counts = Counter(t.status for t in tasks)
    parts = [f"{counts.get('done', 0)}/{len(tasks)} done"]
    for status in ("submitting", "in_queue", "generating", "uploaded", "failed", "cancelled"):
        if counts.get(status):
            parts.append(f"{counts[status]} {status.replace('_', ' ')}")
    return " · ".join(parts)


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A text progress bar."""
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "█" * filled + "░" * (width - filled)


#: How far each status is along the bar (the API gives no percentage; stages are what we know).
STAGE = {"pending": 0.0, "queued": 0.02, "submitting": 0.05, "in_queue": 0.2, "generating": 0.55, "done": 1.0, "failed": 1.0,
         "cancelled": 1.0, "expired": 1.0, "invalid": 1.0, "possibly_created": 1.0,
         "uploaded": 0.55}


class TextProgress:
    """A progress line over a set of tasks."""

    def __init__(self, tasks: Sequence[Any], *, stream: TextIO | None = None, min_interval: float = 0.1) -> None:
        self.tasks = list(tasks)
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval
        self.started = time.monotonic()
        self._last_text = ""
        self._last_time = 0.0
        for t in self.tasks:
            t.on_change(lambda _t: self.update())
        self.update(force=True)

    def line(self) -> str:
        """The current progress line."""
        if not self.tasks:
            return "no tasks"
        frac = sum(STAGE.get(t.status, 0.0) for t in self.tasks) / len(self.tasks)
        key = self.tasks[0].req_key
        polls = sum(t.polls for t in self.tasks)
        return (f"{key} {bar(frac)} {summarize(self.tasks)} · {polls} polls · "
                f"{time.monotonic() - self.started:.1f}s")

    def update(self, *, force: bool = False) -> None:
        """Redraw (throttled on a TTY; on a pipe only when the summary changes)."""
        text = self.line()
        now = time.monotonic()
        if self.tty:
            if not force and now - self._last_time < self.min_interval:
                return
            self.stream.write("\r\x1b[2K" + text)
        else:
            summary = summarize(self.tasks)
            if summary == self._last_text:
                return
            self._last_text = summary
            self.stream.write(text + "\n")
        self._last_time = now
        self.stream.flush()

    def message(self, text: str) -> None:
        """Print a message above the progress line."""
        if self.tty:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        self.update(force=True)

    def close(self) -> None:
        """Final state and a newline on a TTY."""
        self.update(force=True)
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()


def clock(seconds: float) -> str:
    """``01:05`` (or ``1:02:03``), as tqdm prints times."""
    s = int(max(0.0, seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


def batch_line(batch: Any) -> str:
    """tqdm-style: ``saliency_seg ████░░ 42/100 [00:13<00:19, 3.10 it/s] · 8 generating · 1 failed``."""
    counts = batch.counts()
    ended = sum(n for s, n in counts.items() if STAGE.get(s, 0.0) >= 1.0)
    total = batch.total
    frac = ended / total if total else 0.0
    elapsed = (batch.finished_at or time.monotonic()) - batch.started_at
    eta = batch.eta()
    timing = f"[{clock(elapsed)}<{clock(eta) if eta is not None else '?'}, {batch.throughput():.2f} it/s]"
    rest = [f"{counts[s]} {s.replace('_', ' ')}" for s in ("submitting", "in_queue", "generating", "failed",
                                                           "possibly_created", "expired", "invalid", "cancelled")
            if counts.get(s)]
    head = f"{batch.label} {bar(frac)} {ended}/{total if total is not None else '?'} {timing}"
    return " · ".join([head, *rest])


class BatchProgress:
    """One progress line for a whole batch (terminals and logs); nothing per task."""

    def __init__(self, batch: Any, *, stream: TextIO | None = None, min_interval: float = 0.2) -> None:
        self.batch = batch
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval if self.tty else 1.0
        self._last = float("-inf")
        self._closed = False
        self._counts: object = None
        batch.on_change(lambda _b: self.update())

    def update(self, *, force: bool = False) -> None:
        """Redraw, throttled (every ``min_interval`` on a TTY; on a pipe at most once a second and only when
        the counts changed), and once at the end."""
        if self._closed:
            return
        now = time.monotonic()
        finished = self.batch.done
        if not force and not finished and now - self._last < self.min_interval:
            return
        counts = self.batch.counts()
        if not self.tty and not finished and counts == self._counts:
            return
        self._last, self._counts = now, counts
        text = batch_line(self.batch)
        self.stream.write(("\r\x1b[2K" + text) if self.tty else text + "\n")
        if finished:
            self._closed = True
            if self.tty:
                self.stream.write("\n")
        self.stream.flush()
