"""Notebook views over task state: :class:`TaskView`, :class:`BatchView`, and their text/HTML fallbacks.

A view never talks to the service. It listens to :meth:`volcnb.Task.on_change`, which fires on the event
loop that drives the task (the kernel's own loop in a notebook), and redraws from the task's attributes.
Nothing here starts a thread: ipykernel 7 drops or misroutes display updates made from threads.

Redraws are throttled (``min_interval``, 0.1 s by default: at most ~10 per second per view), the last
change is always drawn (a deferred redraw is scheduled on the running loop), and a terminal state
(done, failed, cancelled) is drawn at once. So a thousand tasks cannot flood the front end.

Where each piece shows up:

* :func:`show_task` is what :func:`volcnb.submit` calls in a notebook: a :class:`TaskView` when
  ipywidgets is importable, else a status line rewritten in place (``display(..., display_id=True)``
  and ``handle.update``), and nothing in a terminal (the CLI has :class:`volcnb.display.progress.TextProgress`).
* Front ends without the widget extension (static renderers, some hosted notebooks) see the views'
  ``text/plain`` line, ``saliency_seg ██████░░ done · 1.2 s · 3 polls · task_id …``, never
  ``VBox(children=...)``; when a displayed task finishes, that line is refreshed once.
* :func:`volcnb.display.cards.task_html` is the HTML card of a task (``Task._repr_html_``).

No view shows a credential (see :mod:`.cards`).
"""

from __future__ import annotations

import contextlib
import html
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._sync import running_loop
from ..results.render import figure_html, figures_html
from .cards import (
    BAR_STYLES,
    COLORS,
    TERMINAL,
    chip,
    error_html,
    error_text,
    ids_html,
    scrub,
    secrets_of,
    stats,
    status_of,
    task_html,
    task_line,
    thumbnails_html,
)
from .progress import STAGE, bar, batch_line, summarize

if TYPE_CHECKING:
    import asyncio

    from ..tasks import Task

_ipw: Any
try:
    import ipywidgets

    _ipw = ipywidgets
except ImportError:  # pragma: no cover - ipywidgets is a dependency, but a trimmed install may lack it
    _ipw = None

__all__ = ["BatchView", "TaskView", "show_batch", "show_task"]

WARN_NOIPYW = ("volcnb: ipywidgets is not installed, so progress is shown as text. For the live view: "
               "pip install 'ipywidgets>=8' (and restart the kernel); see https://ipywidgets.readthedocs.io/")

MIN_INTERVAL = 0.1
"""Default minimum seconds between two redraws of one view (terminal states are drawn at once)."""

# --- throttling ---------------------------------------------------------------------------------------


class _Throttle:
    """Call ``render`` at most once per ``min_interval``; a skipped change is drawn later on the loop.

    ``render`` exceptions are reported once as a warning, then the view stops drawing (it must never
    break the task it watches).
    """

    def __init__(self, render: Callable[[], None], min_interval: float) -> None:
        self._render = render
        self.min_interval = min_interval
        self.renders = 0
        self.broken = False
        self._last = float("-inf")
        self._pending: asyncio.TimerHandle | None = None

    def __call__(self, *, force: bool = False) -> None:
        if self.broken:
            return
        now = time.monotonic()
        wait = self._last + self.min_interval - now
        if force or wait <= 0:
            self.flush()
            return
        if self._pending is None:
            loop = running_loop()
            if loop is not None:  # no loop: the next change (or the terminal one) draws it
                self._pending = loop.call_later(wait, self.flush)

    def flush(self) -> None:
        """Draw now."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self.broken:
            return
        self._last = time.monotonic()
        self.renders += 1
        try:
            self._render()
        except Exception as exc:
            self.broken = True
            warnings.warn(f"volcnb: a progress view failed and was switched off: {exc!r}", stacklevel=2)


# --- widgets ------------------------------------------------------------------------------------------

class _NoWidgets:
    """Stands in for ``ipywidgets.VBox`` when ipywidgets is missing: building a view says how to fix it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ImportError(WARN_NOIPYW)


_VBox: Any = _ipw.VBox if _ipw is not None else _NoWidgets


class _DisplayMixin:
    """A text line for front ends without the widget extension, refreshed once at the end."""

    _handle: Any = None
    _final_sent = False

    def text(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if bundle is not None:
            bundle["text/plain"] = self.text()  # whole, not ipywidgets' 110-character cut of __repr__
        return bundle

    def display(self) -> Any:
        """Display the view in the current output (with a display id); return the display handle."""
        self._handle = _display(self)
        return self._handle

    def _final_update(self) -> None:
        # Re-send the display once, so a saved notebook or a widget-less front end keeps the final text line
        # rather than the "submitting" one captured when the view was first shown.
        if self._handle is not None and not self._final_sent:
            self._final_sent = True
            # A closed front end may refuse; the widget itself is up to date either way.
            with contextlib.suppress(Exception):
                self._handle.update(self)


class TaskView(_DisplayMixin, _VBox):  # type: ignore[misc]
    """A live view of one task: status chip, stage bar, elapsed time, polls, ids, error, thumbnails.

    Parts (ipywidgets, for tests and styling): ``chip`` (HTML), ``bar`` (FloatProgress 0..1, ``bar_style``
    ``''``/``'info'`` running, ``'success'`` done, ``'danger'`` failed, ``'warning'`` cancelled), ``stats``
    (elapsed · polls), ``ids`` (task_id, request_id), ``error`` (the error message), ``thumbs``
    (thumbnails when done). Updated from ``task.on_change``, at most once per ``min_interval`` seconds.

    Usage::

        task = volcnb.submit("saliency_seg", img, display=False)
        TaskView(task)           # last expression of a cell: shown and updated live
    """

    def __init__(self, task: Task, *, min_interval: float = MIN_INTERVAL, thumbnails: bool = True) -> None:
        w = _ipw
        assert w is not None
        self.chip = w.HTML()
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="160px"))
        self.stats = w.HTML()
        self.ids = w.HTML()
        self.error = w.HTML()
        self.thumbs = w.HTML()
        label = w.HTML(f"<code>{html.escape(task.req_key)}</code>")
        head = w.HBox([self.chip, label, self.bar, self.stats], layout=w.Layout(align_items="center",
                                                                                grid_gap="8px"))
        super().__init__([head, self.ids, self.error, self.thumbs])
        self.add_class("volcnb-taskview")
        self.task = task
        self.show_thumbnails = thumbnails
        self._secrets = secrets_of(task)
        self._thumbs_for: object = None
        self._throttle = _Throttle(self._render, min_interval)
        task.on_change(self._on_change)
        self._throttle.flush()

    @property
    def renders(self) -> int:
        """How many times the view was redrawn (throttling keeps this far below the number of changes)."""
        return self._throttle.renders

    def text(self) -> str:
        """The plain-text status line (what a front end without widgets shows)."""
        return task_line(self.task)

    def _on_change(self, task: Task) -> None:
        terminal = status_of(task) in TERMINAL
        self._throttle(force=terminal)
        if terminal:
            self._final_update()

    def refresh(self) -> None:
        """Redraw now from the task's current state."""
        self._throttle.flush()

    def _render(self) -> None:
        task, secrets = self.task, self._secrets
        status = status_of(task)
        self.chip.value = chip(status)
        self.bar.value = STAGE.get(status, 0.0)
        self.bar.bar_style = BAR_STYLES.get(status, "")
        self.stats.value = html.escape(stats(task))
        self.ids.value = f"<span style='font-size:12px;opacity:.85'>{ids_html(task, secrets)}</span>"
        self.error.value = error_html(task, secrets)
        if self.show_thumbnails:
            res = task.peek()
            if res is not None and self._thumbs_for is not res:
                self._thumbs_for = res
                self.thumbs.value = scrub(thumbnails_html(res), secrets)


class BatchView(_DisplayMixin, _VBox):  # type: ignore[misc]
    """One bar and per-status counts for many tasks.

    Parts: ``label`` (HTML), ``bar`` (FloatProgress 0..1, the mean stage of the tasks), ``counts``
    (HTML: ``3/5 done · 1 generating · 1 failed``, polls, elapsed), ``failures`` (the most common error
    messages). ``bar_style`` ends ``'success'`` (all done), ``'warning'`` (some failed) or ``'danger'``
    (none done). Redrawn at most once per ``min_interval`` seconds, and at once when the last task ends.
    Given a ``batch`` (what :func:`volcnb.map` shows), it follows the batch's items as they are read, the
    bar is the fraction ended, the counts add throughput and ETA (tqdm style), ``failures`` is a table of
    the failed items with their errors and ``gallery`` holds thumbnails of the latest results.
    """

    def __init__(self, tasks: Iterable[Task] = (), *, batch: Any = None, title: str | None = None,
                 min_interval: float = MIN_INTERVAL) -> None:
        w = _ipw
        assert w is not None
        self.tasks: list[Any] = []
        self.batch = batch
        self.title = title or (batch.label if batch is not None else None)
        self.label = w.HTML()
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="240px"))
        self.counts = w.HTML()
        self.failures = w.HTML()
        self.gallery = w.HTML()
        """Thumbnails of the latest results (batches)."""
        self._gallery_of: tuple[int, ...] = ()
        head = w.HBox([self.label, self.bar, self.counts], layout=w.Layout(align_items="center", grid_gap="8px"))
        super().__init__([head, self.failures, self.gallery])
        self.add_class("volcnb-batchview")
        self.started = time.monotonic()
        self._secrets: list[str] = []
        self._ended: set[int] = set()  # ids of tasks seen in a terminal state (they never leave it)
        self._throttle = _Throttle(self._render, min_interval)
        for t in tasks:
            self.add(t, redraw=False)
        if batch is not None:
            for item in batch.items:
                self.add(item, redraw=False)
            batch.on_change(self._on_batch)
        self._throttle.flush()

    def _on_batch(self, batch: Any) -> None:
        for item in batch.items[len(self.tasks):]:
            self.add(item, redraw=False)
        self._throttle(force=batch.done)
        if batch.done:
            self._final_update()

    @property
    def renders(self) -> int:
        """How many times the view was redrawn."""
        return self._throttle.renders

    def add(self, task: Task, *, redraw: bool = True) -> None:
        """Watch one more task (a batch runner adds tasks as it submits them)."""
        self.tasks.append(task)
        if status_of(task) in TERMINAL:
            self._ended.add(id(task))
        for s in secrets_of(task):
            if s not in self._secrets:
                self._secrets.append(s)
        task.on_change(self._on_change)
        if redraw:
            self._throttle()

    def _all_done(self) -> bool:
        if self.batch is not None:
            return bool(self.batch.done)
        return bool(self.tasks) and len(self._ended) >= len(self.tasks)

    def _on_change(self, task: Task) -> None:
        # Only the batch's own end forces a redraw: 1000 tasks finishing must not mean 1000 redraws.
        finished = False
        if status_of(task) in TERMINAL:
            self._ended.add(id(task))
            finished = self._all_done()
        self._throttle(force=finished)
        if finished:
            self._final_update()

    def refresh(self) -> None:
        """Redraw now."""
        self._throttle.flush()

    def _title(self) -> str:
        if self.title:
            return self.title
        keys = sorted({t.req_key for t in self.tasks})
        return ", ".join(keys[:3]) + (" …" if len(keys) > 3 else "") if keys else "volcnb"

    def fraction(self) -> float:
        """Mean stage of the tasks, 0..1."""
        if not self.tasks:
            return 0.0
        return sum(STAGE.get(status_of(t), 0.0) for t in self.tasks) / len(self.tasks)

    def bar_style(self) -> str:
        """``''``/``'info'`` while running, then ``'success'``, ``'warning'`` or ``'danger'``."""
        counts = Counter(status_of(t) for t in self.tasks)
        bad = sum(n for s, n in counts.items() if s in ("failed", "cancelled", "not_found", "expired"))
        if self._all_done():
            return "success" if not bad else ("warning" if counts.get("done") else "danger")
        return "info" if counts.get("generating") else ""

    def _summary(self) -> str:
        if self.batch is not None:
            return batch_line(self.batch).split(" ", 2)[2]  # without the label and the text bar
        if self.tasks and all(hasattr(t, "stats_text") for t in self.tasks):  # uploads: callbacks, not polls
            got = sum(1 for t in self.tasks if status_of(t) in TERMINAL)
            return f"{summarize(self.tasks)} · {got} callback{'s' if got != 1 else ''} · " \
                   f"{max(t.elapsed for t in self.tasks):.1f} s"
        polls = sum(t.polls for t in self.tasks)
        return f"{summarize(self.tasks)} · {polls} polls · {time.monotonic() - self.started:.1f} s"

    def _fraction_batch(self) -> float:
        counts = Counter(status_of(t) for t in self.tasks)
        ended = sum(n for s, n in counts.items() if s in TERMINAL)
        total = self.batch.total if self.batch is not None and self.batch.total else len(self.tasks)
        return ended / total if total else 0.0

    def text(self) -> str:
        """The plain-text progress line."""
        if self.batch is not None:
            return scrub(batch_line(self.batch), self._secrets)
        return scrub(f"{self._title()} {bar(self.fraction(), 16)} {self._summary()}", self._secrets)

    def _gallery_html(self) -> str:
        latest = list(self.batch.latest) if self.batch is not None else []
        key = tuple(id(r) for r in latest)
        if key == self._gallery_of:
            return str(self.gallery.value)
        self._gallery_of = key
        figures = [figure_html(r.images[0], f"…{r.task_id[-6:]}", side=96) for r in reversed(latest) if _has_image(r)]
        return scrub(figures_html(figures), self._secrets) if figures else ""

    def _failures_table(self) -> str:
        bad = [t for t in self.tasks if status_of(t) not in ("done", "pending", "submitting", "in_queue",
                                                              "generating")]
        if not bad:
            return ""
        rows = "".join(
            f"<tr><td>#{getattr(t, 'index', '')}</td><td><code>{html.escape(str(getattr(t, 'label', '')))}</code></td>"
            f"<td>{html.escape(status_of(t))}</td><td>{html.escape(scrub(error_text(t) or '', self._secrets))}</td></tr>"
            for t in bad[-8:])
        more = f"<div>… {len(bad) - 8} more in batch.failed</div>" if len(bad) > 8 else ""
        return (f"<table style='font-size:12px;color:{COLORS['danger']}'><tr><th>item</th><th>input</th>"
                f"<th>status</th><th>error</th></tr>{rows}</table>{more}")

    def _failures_html(self) -> str:
        if self.batch is not None:
            return self._failures_table()
        errors = Counter(error_text(t) or status_of(t) for t in self.tasks if status_of(t) in ("failed", "cancelled"))
        if not errors:
            return ""
        rows = [f"{n}× {html.escape(scrub(msg, self._secrets))}" for msg, n in errors.most_common(3)]
        if len(errors) > 3:
            rows.append(f"… {len(errors) - 3} other errors")
        return (f"<div style='color:{COLORS['danger']};font-size:12px'>" + "<br/>".join(rows) + "</div>")

    def _render(self) -> None:
        self.label.value = f"<code>{html.escape(self._title())}</code>"
        self.bar.value = self._fraction_batch() if self.batch is not None else self.fraction()
        self.bar.bar_style = self.bar_style()
        self.counts.value = html.escape(self._summary())
        self.failures.value = self._failures_html()
        if self.batch is not None:
            self.gallery.value = self._gallery_html()


# --- the text fallback --------------------------------------------------------------------------------


class _LineView:
    """A status line rewritten in place (no ipywidgets): HTML card in rich front ends, text elsewhere."""

    def __init__(self, task: Task, *, min_interval: float = MIN_INTERVAL) -> None:
        self.task = task
        self._handle: Any = _display(self)
        self._throttle = _Throttle(self._update, min_interval)
        task.on_change(self._on_change)

    def __repr__(self) -> str:
        return task_line(self.task)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(task_line(self.task))

    def _repr_html_(self) -> str:
        return task_html(self.task)

    def _on_change(self, task: Task) -> None:
        self._throttle(force=status_of(task) in TERMINAL)

    def _update(self) -> None:
        if self._handle is not None:
            self._handle.update(self)


class _BatchLineView(_LineView):
    def __init__(self, tasks: Sequence[Task], *, batch: Any = None, min_interval: float = MIN_INTERVAL) -> None:
        self.tasks = list(tasks)
        self.batch = batch
        self.started = time.monotonic()
        self._handle = _display(self)
        self._throttle = _Throttle(self._update, min_interval)
        for t in self.tasks:
            t.on_change(self._on_change)
        if batch is not None:
            batch.on_change(lambda b: self._throttle(force=b.done))

    def _line(self) -> str:
        if self.batch is not None:
            return batch_line(self.batch)
        key = self.tasks[0].req_key if self.tasks else "volcnb"
        frac = sum(STAGE.get(status_of(t), 0.0) for t in self.tasks) / max(1, len(self.tasks))
        return f"{key} {bar(frac, 16)} {summarize(self.tasks)} · {time.monotonic() - self.started:.1f} s"

    def __repr__(self) -> str:
        return self._line()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self._line())

    def _repr_html_(self) -> str:
        return f"<code>{html.escape(self._line())}</code>"

    def _on_change(self, task: Task) -> None:
        self._throttle(force=all(status_of(t) in TERMINAL for t in self.tasks))


def _has_image(result: Any) -> bool:
    try:
        return bool(result.images)
    except Exception:
        return False


def _display(obj: object) -> Any:
    """``IPython.display.display(obj, display_id=True)``: the handle to update the output in place."""
    from IPython.display import display

    return display(obj, display_id=True)  # type: ignore[no-untyped-call]


# --- entry points -------------------------------------------------------------------------------------


def _use_widgets(widgets: bool | None) -> bool:
    from .env import has_widgets

    if widgets is False:
        return False
    ok = has_widgets()
    if not ok and widgets:
        warnings.warn(WARN_NOIPYW, stacklevel=3)
    return ok


def show_task(task: Task, *, widgets: bool | None = None) -> Any:
    """Show a live progress view for ``task`` in a notebook; return it.

    In a Jupyter kernel: a :class:`TaskView` when ipywidgets is importable (``widgets=False`` forces the
    text fallback), else an HTML/text status line rewritten in place. Outside a notebook: nothing
    (returns ``None``). A view that fails to build is reported as a warning; the task runs on regardless.
    """
    from .env import in_notebook

    if not in_notebook():
        return None
    try:
        if _use_widgets(widgets):
            view: Any = TaskView(task)
            view.display()
        else:
            view = _LineView(task)
    except Exception as exc:
        warnings.warn(f"volcnb: could not show a progress view ({exc!r}); the task runs on", stacklevel=2)
        return None
    return view


def show_batch(tasks: Sequence[Task] = (), *, batch: Any = None, title: str | None = None,
               widgets: bool | None = None) -> Any:
    """Show one progress view for many tasks in a notebook (a :class:`BatchView`); return it, or ``None``
    outside a notebook. Same fallbacks as :func:`show_task`; add tasks later with ``view.add(task)``."""
    from .env import in_notebook

    if not in_notebook():
        return None
    try:
        if _use_widgets(widgets):
            view: Any = BatchView(tasks, batch=batch, title=title)
            view.display()
        else:
            view = _BatchLineView(tasks, batch=batch)
    except Exception as exc:
        warnings.warn(f"volcnb: could not show a progress view ({exc!r}); the tasks run on", stacklevel=2)
        return None
    return view
