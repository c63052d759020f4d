"""The verbs for many tasks: :func:`map`, :func:`resume`, :func:`sweep`, and the journal they share.

A batch shows ONE view (a :class:`~volcnb.BatchView` in a notebook, one progress line in a terminal) and
its tasks none of their own.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._verbs import get_default_client
from .http.api import ApiClient
from .protocol.options import AigcMeta, LogoInfo
from .tasks.batch import BATCH_DEADLINE, Batch
from .tasks.journal import Journal, default_journal_path
from .tasks.polling import Poller
from .tasks.task import fetch_options

__all__ = ["JournalOption", "get_journal", "map", "resume", "status", "sweep"]

JournalOption = Journal | str | os.PathLike[str] | bool | None
"""``None``/``True``: the default journal; ``False``: none; a path or a :class:`Journal`: that one."""

_lock = threading.Lock()
_journals: dict[str, Journal] = {}


def get_journal(journal: JournalOption = None) -> Journal | None:
    """The journal a batch uses (one open :class:`Journal` per file, shared by the process)."""
    if journal is False:
        return None
    if isinstance(journal, Journal):
        return journal
    path = default_journal_path() if journal is None or journal is True else Path(journal)
    key = str(Path(path).resolve())
    with _lock:
        found = _journals.get(key)
        if found is None:
            found = _journals[key] = Journal(path)
        return found


def _show(batch: Batch, display: bool | None) -> Any:
    from .display.env import frontend

    where = frontend()
    if display is False or (display is None and where == "plain"):
        return None
    if where == "notebook":
        from .display.widgets import show_batch

        return show_batch(batch=batch)
    from .display.progress import BatchProgress

    return BatchProgress(batch, stream=sys.stderr)


def map(  # noqa: A001 - the name users know from the builtin and from every peer library
    req_key: str,
    inputs: Any,
    *,
    concurrency: int | None = None,
    qps: float | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    fresh: bool = False,
    journal: JournalOption = None,
    client: ApiClient | None = None,
    display: bool | None = None,
    deadline: float = BATCH_DEADLINE,
    poller: Poller | None = None,
    return_url: bool | None = None,
    logo_info: LogoInfo | Mapping[str, Any] | None = None,
    aigc_meta: AigcMeta | Mapping[str, Any] | None = None,
    **params: Any,
) -> Batch:
    """Run ``req_key`` over many inputs; return the :class:`~volcnb.tasks.batch.Batch` (awaitable, or ``.result()``).

    ``inputs``: a list, a folder (its images, sorted), a glob (expanded here, ``**`` included), one input,
    or any iterable (consumed lazily). An item is an input or a dict ``{"image": ..., **per_item_params}``.
    ``concurrency`` caps this batch's unfinished tasks (default 32) and ``qps`` its submits per second, on
    top of the client's own pacing. Results stream to ``out_dir`` (default: beside the journal, in
    ``.volcnb/batches/<batch_id>/``) with a ``manifest.jsonl``; ``batch.results`` loads them back lazily.
    Every submit is journaled first, so re-running the same call reuses its tasks (0 new submits) unless
    ``fresh=True``, and :func:`resume` picks them up after a crash. ``journal=False`` keeps nothing (and
    results in memory unless ``out_dir`` is given).

    Usage::

        batch = volcnb.map("saliency_seg", "photos/*.jpg", out_dir="out/")
        await batch                    # one live view; or batch.result()
        batch.results, batch.failed
    """
    client = client or get_default_client()
    options = fetch_options(return_url=return_url, logo_info=logo_info, aigc_meta=aigc_meta)
    label = req_key if not isinstance(inputs, (str, os.PathLike)) else f"{req_key} {os.fspath(inputs)}"
    batch = Batch(req_key, inputs, client=client, concurrency=concurrency, qps=qps, out_dir=out_dir, fresh=fresh,
                  journal=get_journal(journal), params=params, fetch_options=options, deadline=deadline,
                  poller=poller, label=label)
    _show(batch, display)
    return batch.start()


def resume(batch_id: str | None = None, *, journal: JournalOption = None, client: ApiClient | None = None,
           display: bool | None = None, concurrency: int | None = None) -> Batch:
    """Re-attach every unfinished journaled task of this backend (or of batch ``batch_id``); never resubmits.

    An entry whose submit was never answered is reported as *possibly created* (``batch.possibly_created``),
    not sent again. Results go where the original batch was writing them.
    """
    client = client or get_default_client()
    found = get_journal(journal)
    if found is None:
        raise ValueError("resume() needs a journal (journal=False has none)")
    entries = list(found.entries(backend=client.backend_id, batch_id=batch_id, unfinished=True))
    keys = sorted({e.req_key for e in entries})
    ids = {e.batch_id for e in entries}
    only = batch_id or (next(iter(ids)) if len(ids) == 1 else None)
    recorded = found.batch(only) if only else None
    batch = Batch(keys[0] if len(keys) == 1 else "+".join(keys) or "(nothing to resume)", client=client,
                  journal=found, concurrency=concurrency, out_dir=recorded["out_dir"] if recorded else None,
                  batch_id=only, label="resume " + (", ".join(keys) or "(nothing unfinished)"), entries=entries)
    _show(batch, display)
    return batch.start()


def sweep(req_key: str, image: Any = None, *, client: ApiClient | None = None, **grid: Any) -> Batch:
    """Run the cartesian product of the list-valued parameters through :func:`map`; other keyword arguments
    are passed to every task (and to :func:`map`). ``volcnb.compare(batch)`` lays the results out as a grid
    labelled by the swept parameters.

    Usage::

        grid = volcnb.sweep("img2img_anime_accelerated_maintain_id", face, cfg=[3, 4.5, 6], seed=[1, 2])
        volcnb.compare(grid)
    """
    map_args = {k: grid.pop(k) for k in ("concurrency", "qps", "out_dir", "fresh", "journal", "display",
                                         "deadline", "poller", "return_url", "logo_info", "aigc_meta")
                if k in grid}
    swept = {k: list(v) for k, v in grid.items() if isinstance(v, (list, tuple, range))}
    fixed = {k: v for k, v in grid.items() if k not in swept}
    if not swept:
        raise ValueError("sweep() needs at least one parameter given as a list, e.g. cfg=[3, 4.5, 6]")
    names = list(swept)
    items = [{"image": image, **dict(zip(names, combo, strict=True))}
             for combo in itertools.product(*(swept[n] for n in names))]
    batch = map(req_key, items, client=client, **map_args, **fixed)
    batch.swept = names
    return batch


def status(*, journal: JournalOption = None, backend: str | None = None) -> list[dict[str, Any]]:
    """What the journal holds, per batch (newest first): id, req_key, label, out_dir, counts per state."""
    found = get_journal(journal)
    return found.batches(backend) if found is not None else []
