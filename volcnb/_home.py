"""volcnb's own folder for what it keeps between runs (the task journal, learned polling models).

``VOLCNB_HOME`` if set, else ``.volcnb`` under the working folder (a project's notebooks share it).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["home"]


def home() -> Path:
    """The folder (not created here)."""
    env = os.environ.get("VOLCNB_HOME")
    return Path(env).expanduser() if env else Path.cwd() / ".volcnb"
