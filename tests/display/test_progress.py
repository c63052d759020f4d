"""Outside Jupyter a task shows a plain progress line (redrawn in place on a terminal, one line per stage in logs)."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image, ImageDraw

import volcnb
from volcnb.display.progress import TextProgress, bar, summarize


def _disc() -> Image.Image:
    img = Image.new("RGB", (256, 200), "white")
    ImageDraw.Draw(img).ellipse((80, 50, 180, 150), fill=(200, 30, 30))
    return img


def test_display_true_outside_a_notebook_prints_a_progress_line(client: volcnb.Client,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    volcnb.run("saliency_seg", _disc(), display=True).result(timeout=30)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("saliency_seg ")]
    assert lines[-1].count("1/1 done") == 1
    assert any("in queue" in ln or "generating" in ln for ln in lines)


def test_default_display_is_quiet_in_logs(client: volcnb.Client, capsys: pytest.CaptureFixture[str]) -> None:
    volcnb.run("saliency_seg", _disc()).result(timeout=30)  # stderr is not a TTY under pytest
    assert "saliency_seg" not in capsys.readouterr().err


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_redraws_in_place(client: volcnb.Client) -> None:
    stream = _Tty()
    task = volcnb.submit("saliency_seg", _disc(), display=False)
    progress = TextProgress([task], stream=stream, min_interval=0.0)
    task.result(timeout=30)
    progress.close()
    out = stream.getvalue()
    assert "\r\x1b[2K" in out and out.endswith("\n")
    assert out.count("\n") == 1  # one line, redrawn, then a final newline
    assert "1/1 done" in out.rsplit("\r", 1)[-1]


def test_bar_and_summary() -> None:
    assert bar(0.5, width=10) == "█████░░░░░"
    assert bar(2.0, width=4) == "████"

    class T:
        def __init__(self, status: str) -> None:
            self.status = status

    assert summarize([T("done"), T("failed"), T("generating")]) == "1/3 done · 1 generating · 1 failed"


async def test_the_line_says_reconnecting_during_an_outage_and_queued_while_paced() -> None:
    """A handle whose polls meet a dead service says "reconnecting"; one waiting for the client's rate limit
    says so, not "submitting"."""
    from volcnb.display.cards import LABELS, stats, task_line
    from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY
    from volcnb.sim._server import free_port

    dead = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=f"http://127.0.0.1:{free_port()}")
    task = volcnb.Task.attach("saliency_seg", "7000000000000000001", client=dead, deadline=30)
    waiting = asyncio.ensure_future(task.wait())
    for _ in range(100):
        await asyncio.sleep(0.05)
        if task.reconnecting:
            break
    assert task.reconnecting and "reconnecting" in task_line(task) and "reconnecting" in stats(task)
    waiting.cancel()
    await dead.aclose()
    assert LABELS["queued"] == "waiting (rate limit)"
