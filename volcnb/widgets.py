"""Notebook views (placeholder until the TaskView lands): text updates via display_id."""

from __future__ import annotations

from typing import Any


def show_task(task: Any) -> None:
    """Show a progress view for ``task``."""
    return None
