"""Where are we running? One place decides (tqdm's rule: a notebook means ``ipykernel.zmqshell`` is loaded)."""

from __future__ import annotations

import sys
from typing import Literal

Frontend = Literal["notebook", "terminal", "plain"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, VS Code, Colab)."""
    if "ipykernel.zmqshell" not in sys.modules:
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def has_widgets() -> bool:
    """ipywidgets importable (the front end may still lack the extension: views fall back to text)."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def frontend() -> Frontend:
    """``notebook``, ``terminal`` (stderr is a TTY) or ``plain`` (logs, pipes, CI)."""
    if in_notebook():
        return "notebook"
    return "terminal" if sys.stderr.isatty() else "plain"
