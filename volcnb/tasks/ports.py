"""What the task layer needs from the layers above it, plugged in by ``volcnb`` at import.

The task layer shows nothing and picks no backend itself: a :class:`Presenter` (the display layer's
views) and the default-client provider are set here by :mod:`volcnb._verbs`. Without them a task has no
view and ``Task.attach`` needs an explicit ``client=``: what a server-side user of tasks (a gateway, a
callback receiver) gets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..http.api import ApiClient
    from .task import Task

__all__ = ["Presenter", "default_client", "notify", "presenter", "set_default_client_provider", "set_presenter"]

log = logging.getLogger("volcnb")


class Presenter(Protocol):
    """Shows tasks: a live view when asked, an HTML card for ``Task._repr_html_``."""

    def show(self, task: Task, display: bool | None) -> Any:
        """Show a view for ``task`` (``display``: ``None`` = where it makes sense); return it or ``None``."""

    def html(self, task: Task) -> str:
        """The HTML card of ``task``."""


_presenter: Presenter | None = None
_provider: Callable[[], ApiClient] | None = None


def set_presenter(value: Presenter | None) -> None:
    """Plug in the presenter (``None`` unplugs it)."""
    global _presenter
    _presenter = value


def presenter() -> Presenter | None:
    """The plugged-in presenter, if any."""
    return _presenter


def set_default_client_provider(provider: Callable[[], ApiClient] | None) -> None:
    """Plug in what gives the default client."""
    global _provider
    _provider = provider


def default_client() -> ApiClient:
    """The default client, from the plugged-in provider."""
    if _provider is None:
        raise RuntimeError("no default client: pass client=, or import volcnb (it provides one)")
    return _provider()


def notify(listeners: list[Callable[[Any], None]], subject: Any, what: str) -> None:
    """Call every listener with ``subject``; a failing one is logged, never raised (a broken view must not
    break the handle it watches). ``what`` names the handle in the log line (``an upload``)."""
    for listener in list(listeners):
        try:
            listener(subject)
        except Exception as exc:
            log.warning("volcnb: %s listener failed: %r", what, exc)
