"""The verbs on top: ``submit``, ``run``, the default client, ``use_simulator``, and the friendly ``Client``.

This is the one place where a view is attached to a task (the :class:`_NotebookPresenter` plugged into
the task layer) and where a result's overlay is plugged into the display layer's plots.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Coroutine, Generator, Mapping
from typing import Any

import httpx

from ._exceptions import AuthError
from .http.api import ApiClient, check_endpoint
from .http.credentials import find_credentials
from .http.pacing import Pacer
from .protocol.images import ImageInput
from .protocol.options import AigcMeta, LogoInfo
from .protocol.retry import RetryPolicy
from .protocol.submission import check_bool, prepare_submit
from .results import Result, SegmentationResult, set_overlay_drawer
from .tasks import ports
from .tasks.arguments import OnTimeout, check_client, check_deadline, check_poller, check_wait
from .tasks.polling import Poller
from .tasks.task import DEFAULT_DEADLINE, Task, fetch_options, poller_for, set_poller
from .tasks.upload import Uploads

__all__ = ["ENDPOINT_VARIABLE", "Client", "Run", "client_for", "get_default_client", "run", "set_default_client", "submit",
           "use_simulator"]


class Client(ApiClient):
    """A client for the Volcengine visual async APIs (and, pointed at it, the volcnb simulator).

    Every argument is optional: keys are found as the official SDK finds them (arguments, then
    ``VOLC_ACCESSKEY`` / ``VOLC_SECRETKEY`` / ``VOLC_SESSION_TOKEN``, then ``~/.volc/credentials`` or
    ``~/.volc/config``). Calls are HTTPS by default. ``endpoint`` (e.g. ``"http://127.0.0.1:8000"``) sends
    every service to one base URL (the simulator over HTTP); ``transport`` is any ``httpx.AsyncBaseTransport``;
    ``poller`` decides when this client's tasks poll (default: an :class:`~volcnb.AdaptivePoller`);
    ``pacer`` paces its calls (default: the :class:`~volcnb.Pacer` shared by every client on this endpoint
    and access key). Bad arguments raise :class:`~volcnb.ValidationError` naming the field.

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
        pacer: Pacer | None = None,
    ) -> None:
        check_poller(poller)
        super().__init__(access_key, secret_key, session_token, region=region, endpoint=endpoint,
                         iva_endpoint=iva_endpoint, transport=transport, timeout=timeout,
                         connect_timeout=connect_timeout, max_retries=max_retries, retry=retry,
                         keepalive_expiry=keepalive_expiry, pacer=pacer)
        self.iva: Uploads = Uploads(self)
        """IVA uploads: ``up = await client.iva.add_image(iva_task_id, "a.jpg")`` → an :class:`~volcnb.Upload`."""
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

    def run(self, req_key: str, image: ImageInput | list[ImageInput] | None = None, **params: Any) -> Run:
        """Submit and wait: ``await client.run(...)``, ``asyncio.run(client.run(...))`` or ``client.run(...).result()``."""
        return run(req_key, image, client=self, **params)


# --- the default client -----------------------------------------------------------------------------

_lock = threading.Lock()
_default: ApiClient | None = None


def set_default_client(client: ApiClient | None) -> None:
    """Make ``client`` the one ``run``/``submit``/``map`` use (``None`` resets to automatic)."""
    global _default
    with _lock:
        _default = client


ENDPOINT_VARIABLE = "VOLCNB_ENDPOINT"
"""Points every default client at one base URL (e.g. a ``volcnb sim`` at ``http://127.0.0.1:8000``)."""


def client_for(endpoint: str | None = None, access_key: str | None = None, secret_key: str | None = None) -> Client:
    """A client for ``endpoint`` (default: ``$VOLCNB_ENDPOINT``, else the real service).

    Keys come from the arguments, then the official SDK's places. With none anywhere, a ``volcnb sim`` at
    ``endpoint`` (it says so on ``/sim/health``) is used with its public default pair, and says so; any other
    endpoint gets an :class:`~volcnb.AuthError` saying what to set.
    """
    endpoint = endpoint or os.environ.get(ENDPOINT_VARIABLE) or None
    if endpoint is None or find_credentials(access_key, secret_key) is not None:
        return Client(access_key, secret_key, endpoint=endpoint)
    endpoint = check_endpoint(endpoint)
    if is_volcnb_sim(endpoint):
        from .sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY

        print(f"volcnb: {endpoint} is a volcnb simulator; using its public default key pair "
              f"({DEFAULT_ACCESS_KEY})", file=sys.stderr)
        return Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=endpoint)
    raise AuthError(f"no keys for {endpoint}: set VOLC_ACCESSKEY and VOLC_SECRETKEY, write ~/.volc/credentials "
                    "([default] access_key_id / secret_access_key), or pass --access-key/--secret-key "
                    "(Client(access_key=..., secret_key=...))")


def is_volcnb_sim(endpoint: str) -> bool:
    """True when ``endpoint`` is a ``volcnb sim`` (its ``/sim/health`` says so)."""
    try:
        reply = httpx.get(endpoint.rstrip("/") + "/sim/health", timeout=3.0)
        return bool(reply.status_code == 200 and reply.json().get("simulator") == "volcnb")
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


def get_default_client() -> ApiClient:
    """The default client: the one set, else ``$VOLCNB_ENDPOINT`` (see :func:`client_for`), else the real
    service if keys are found (environment or ``~/.volc``), else the embedded simulator (announced once)."""
    with _lock:
        if _default is not None:
            return _default
    if os.environ.get(ENDPOINT_VARIABLE):
        client = client_for()
        set_default_client(client)
        return client
    found = find_credentials()
    if found is not None:
        client = Client()
        print(f"volcnb: the real service ({client.cv_url}), keys from {found.source} "
              f"(access key {found.credentials.access_key[:6]}…)", file=sys.stderr)
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
    timeout: float | None = None,
    on_timeout: OnTimeout = "raise",
    **params: Any,
) -> Task:
    """Submit a task and return its :class:`~volcnb.Task` handle.

    ``image`` is a PIL image, a path, bytes, a numpy array or an http(s) URL (or a list of them);
    ``params`` are the capability's parameters (checked against the catalog before sending).
    ``return_url``/``logo_info``/``aigc_meta`` are GetResult options used when the result is fetched
    (``logo_info``/``aigc_meta`` may be plain dicts). ``deadline``, ``timeout``, ``on_timeout`` and
    ``display`` belong to the handle and its waits and are never sent; so is ``auto_resize=True``
    (downsize a picture over 4096 px a side or 4.7 MB of base64 until it fits, with a warning). In a notebook a progress view is
    shown (``display=False`` to opt out). Bad arguments raise :class:`~volcnb.ValidationError` before
    anything is sent.

    Usage::

        task = volcnb.submit("saliency_seg", "cat.jpg", only_mask=1)
        res = await task            # or task.result()
    """
    task = _prepare(req_key, image, client=client, display=display, deadline=deadline, poller=poller,
                    return_url=return_url, logo_info=logo_info, aigc_meta=aigc_meta, timeout=timeout,
                    on_timeout=on_timeout, params=params)
    _start(task, display)
    return task


def _prepare(req_key: Any, image: Any, *, client: Any, display: Any, deadline: Any, poller: Any, return_url: Any,
             logo_info: Any, aigc_meta: Any, timeout: Any, on_timeout: Any, params: Mapping[str, Any]) -> Task:
    """A checked, unstarted task: every argument validated, the body encoded; nothing sent."""
    check_client(client)
    check_bool(display, "display")
    limit = check_deadline(deadline)
    check_poller(poller)
    wait_timeout, policy = check_wait(timeout, on_timeout)
    options = fetch_options(return_url=check_bool(return_url, "return_url"), logo_info=logo_info,
                            aigc_meta=aigc_meta)
    body, originals = prepare_submit(req_key, image, params)
    task = Task(req_key, client=client or get_default_client(), body=body, input_images=originals, deadline=limit,
                poller=poller, fetch_options=options)
    task.wait_timeout, task.on_timeout = wait_timeout, policy
    return task


def _start(task: Task, display: bool | None) -> None:
    _PRESENTER.show(task, display)
    task.start()


class Run(Coroutine[Any, Any, "Result | None"]):
    """What :func:`volcnb.run` returns: a coroutine, so ``await`` and ``asyncio.run`` both take it.

    The arguments were checked when ``run()`` was called; the task is submitted when the coroutine first
    runs (``await``, ``asyncio.run``) or on :meth:`result` (blocking), never before, so a ``run()`` that is
    never awaited sends nothing (and warns). :attr:`task` is the handle once submitted.
    """

    def __init__(self, task: Task, display: bool | None) -> None:
        self._task = task
        self._display = display
        self._started = False
        self._inner: Coroutine[Any, Any, Result | None] | None = None

    @property
    def task(self) -> Task | None:
        """The :class:`~volcnb.Task` once the run has started, else ``None``."""
        return self._task if self._started else None

    def _begin(self) -> Task:
        if not self._started:
            self._started = True
            _start(self._task, self._display)
        return self._task

    async def _go(self) -> Result | None:
        return await self._begin().wait()

    def _coro(self) -> Coroutine[Any, Any, Result | None]:
        if self._inner is None:
            self._inner = self._go()
        return self._inner

    def __await__(self) -> Generator[Any, None, Result | None]:
        return self._coro().__await__()

    def send(self, value: Any) -> Any:
        """Drive the coroutine (what the event loop calls)."""
        return self._coro().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """Raise into the coroutine (what the event loop calls on cancellation)."""
        return self._coro().throw(typ, val, tb) if val is not None or tb is not None else self._coro().throw(typ)

    def close(self) -> None:
        """Close the coroutine; a run that never started sends nothing."""
        self._started = True  # closing settles it: no "never awaited" warning
        if self._inner is not None:
            self._inner.close()

    def result(self, timeout: float | None = None, on_timeout: OnTimeout | None = None) -> Result:
        """Submit (if not yet) and block until the result: ``volcnb.run(...).result()`` in a script."""
        return self._begin().result(timeout, on_timeout)

    def __repr__(self) -> str:
        state = repr(self._task) if self._started else f"{self._task.req_key}, not started: await it"
        return f"<volcnb.Run {state}>"

    def __del__(self) -> None:
        if not self._started:
            warnings.warn(f"volcnb.run({self._task.req_key!r}, ...) was never awaited, so nothing was submitted: "
                          "`await volcnb.run(...)`, `asyncio.run(volcnb.run(...))` or `volcnb.run(...).result()`",
                          RuntimeWarning, stacklevel=2)


def run(
    req_key: str,
    image: ImageInput | list[ImageInput] | None = None,
    *,
    client: ApiClient | None = None,
    display: bool | None = None,
    timeout: float | None = None,
    on_timeout: OnTimeout = "raise",
    **kwargs: Any,
) -> Run:
    """Submit and wait: ``res = await volcnb.run(...)``, ``asyncio.run(volcnb.run(...))`` in a script, or
    ``volcnb.run(...).result()``.

    Takes :func:`submit`'s arguments; ``timeout``/``on_timeout`` bound the wait (never sent). Returns a
    :class:`Run` coroutine whose value is the :class:`~volcnb.Result`. Arguments are checked at once; the
    task is submitted when the coroutine runs.
    """
    task = _prepare(req_key, image, client=client, display=display, timeout=timeout, on_timeout=on_timeout,
                    deadline=kwargs.pop("deadline", DEFAULT_DEADLINE), poller=kwargs.pop("poller", None),
                    return_url=kwargs.pop("return_url", None), logo_info=kwargs.pop("logo_info", None),
                    aigc_meta=kwargs.pop("aigc_meta", None), params=kwargs)
    return Run(task, display)


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
