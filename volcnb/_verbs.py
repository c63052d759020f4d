"""The verbs on top: ``submit``, ``run``, the default client, ``use_simulator``, and the friendly ``Client``.

This is the one place where a view is attached to a task (the :class:`_NotebookPresenter` plugged into
the task layer) and where a result's overlay is plugged into the display layer's plots.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

import httpx

from .http.api import ApiClient
from .http.credentials import find_credentials
from .protocol.images import ImageInput
from .protocol.options import AigcMeta, LogoInfo
from .protocol.retry import RetryPolicy
from .protocol.submission import prepare_submit
from .results import SegmentationResult, set_overlay_drawer
from .tasks import ports
from .tasks.polling import Poller
from .tasks.task import DEFAULT_DEADLINE, Task, fetch_options, poller_for, set_poller

__all__ = ["Client", "get_default_client", "run", "set_default_client", "submit", "use_simulator"]


class Client(ApiClient):
    """A client for the Volcengine visual async APIs (and, pointed at it, the volcnb simulator).

    Every argument is optional: keys are found as the official SDK finds them (arguments, then
    ``VOLC_ACCESSKEY`` / ``VOLC_SECRETKEY`` / ``VOLC_SESSION_TOKEN``, then ``~/.volc/credentials`` or
    ``~/.volc/config``). Calls are HTTPS by default. ``endpoint`` (e.g. ``"http://127.0.0.1:8000"``) sends
    every service to one base URL (the simulator over HTTP); ``transport`` is any ``httpx.AsyncBaseTransport``;
    ``poller`` decides when this client's tasks poll (default: an :class:`~volcnb.AdaptivePoller`).

    Usage::

        client = volcnb.Client()                     # keys from the environment
        task = client.submit("saliency_seg", "cat.jpg")
        res = await task                              # or task.result()
    """

    def __init__(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        *,
        region: str = "cn-north-1",
        endpoint: str | None = None,
        iva_endpoint: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_retries: int = 3,
        retry: RetryPolicy | None = None,
        keepalive_expiry: float = 2.0,
        poller: Poller | None = None,
    ) -> None:
        super().__init__(access_key, secret_key, session_token, region=region, endpoint=endpoint,
                         iva_endpoint=iva_endpoint, transport=transport, timeout=timeout,
                         connect_timeout=connect_timeout, max_retries=max_retries, retry=retry,
                         keepalive_expiry=keepalive_expiry)
        if poller is not None:
            set_poller(self, poller)

    @property
    def poller(self) -> Poller:
        """The poller shared by this client's tasks."""
        return poller_for(self)

    @poller.setter
    def poller(self, value: Poller) -> None:
        set_poller(self, value)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def submit(self, req_key: str, image: ImageInput | list[ImageInput] | None = None, **params: Any) -> Task:
        """Validate, encode and submit; return the :class:`~volcnb.Task` (awaitable, or ``.result()``)."""
        return submit(req_key, image, client=self, **params)

    def run(self, req_key: str, image: ImageInput | list[ImageInput] | None = None, **params: Any) -> Task:
        """Submit and wait: ``await client.run(...)`` or ``client.run(...).result()``."""
        return run(req_key, image, client=self, **params)


# --- the default client -----------------------------------------------------------------------------

_lock = threading.Lock()
_default: ApiClient | None = None


def set_default_client(client: ApiClient | None) -> None:
    """Make ``client`` the one ``run``/``submit``/``map`` use (``None`` resets to automatic)."""
    global _default
    with _lock:
        _default = client


def get_default_client() -> ApiClient:
    """The default client: the one set, else the real service if keys are found (environment or
    ``~/.volc``), else the embedded simulator (announced once on stderr)."""
    with _lock:
        if _default is not None:
            return _default
    if find_credentials() is not None:
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
        print("volcnb: no Volcengine credentials (VOLC_ACCESSKEY / VOLC_SECRETKEY, ~/.volc/credentials) found, "
              "so tasks run on the embedded SIMULATOR. Set them, or volcnb.set_default_client(volcnb.Client(...)), "
              "for the real service.", file=sys.stderr)
    return sim


# --- one task -----------------------------------------------------------------------------------------


def submit(
    req_key: str,
    image: ImageInput | list[ImageInput] | None = None,
    *,
    client: ApiClient | None = None,
    display: bool | None = None,
    deadline: float = DEFAULT_DEADLINE,
    poller: Poller | None = None,
    return_url: bool | None = None,
    logo_info: LogoInfo | Mapping[str, Any] | None = None,
    aigc_meta: AigcMeta | Mapping[str, Any] | None = None,
    **params: Any,
) -> Task:
    """Submit a task and return its :class:`~volcnb.Task` handle.

    ``image`` is a PIL image, a path, bytes, a numpy array or an http(s) URL (or a list of them);
    ``params`` are the capability's parameters (checked against the catalog before sending).
    ``return_url``/``logo_info``/``aigc_meta`` are GetResult options used when the result is fetched.
    In a notebook a progress view is shown (``display=False`` to opt out).

    Usage::

        task = volcnb.submit("saliency_seg", "cat.jpg", only_mask=1)
        res = await task            # or task.result()
    """
    client = client or get_default_client()
    options = fetch_options(return_url=return_url, logo_info=logo_info, aigc_meta=aigc_meta)
    body, originals = prepare_submit(req_key, image, params)
    task = Task(req_key, client=client, body=body, input_images=originals, deadline=deadline, poller=poller,
                fetch_options=options)
    _PRESENTER.show(task, display)
    task.start()
    return task


def run(req_key: str, image: ImageInput | list[ImageInput] | None = None, **kwargs: Any) -> Task:
    """Submit and wait: ``res = await volcnb.run(...)`` or ``res = volcnb.run(...).result()``.

    Returns the :class:`~volcnb.Task`; awaiting it (or ``.result()``) gives the :class:`~volcnb.Result`.
    """
    return submit(req_key, image, **kwargs)


# --- what the lower layers need from here -------------------------------------------------------------


class _NotebookPresenter:
    """Notebook: a TaskView. Terminal (stderr is a TTY): a progress line redrawn in place. Logs/pipes: quiet."""

    def show(self, task: Task, display: bool | None) -> Any:
        from .display.env import frontend

        where = frontend()
        if display is False or (display is None and where == "plain"):
            return None
        if where != "notebook":
            from .display.progress import TextProgress

            progress = TextProgress([task], stream=sys.stderr)
            task.on_change(lambda t: progress.close() if t.done else None)
            return progress
        from .display.widgets import show_task

        view = show_task(task)
        task.view = view
        return view

    def html(self, task: Task) -> str:
        from .display.cards import task_html

        return task_html(task)


def _draw_overlay(canvas: Any, result: SegmentationResult, **style: Any) -> Any:
    from .display.viz import overlay_contours

    return overlay_contours(canvas, result, **style)


_PRESENTER = _NotebookPresenter()
ports.set_presenter(_PRESENTER)
ports.set_default_client_provider(get_default_client)
set_overlay_drawer(_draw_overlay)
