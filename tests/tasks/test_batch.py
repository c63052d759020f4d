"""Batches in-process: input forms, results streamed to disk and loaded back, the journal's reuse, one
failure never stopping the rest, lazy inputs, cancel, retry, sweeps, and the one progress line."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

import volcnb
from volcnb.sim import DEFAULT_SECRET_KEY, ServiceTime, Simulator
from volcnb.tasks.journal import Journal

PORTRAIT = "img2img_anime_accelerated_maintain_id"


def _pictures(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        a = np.full((144, 160, 3), 235, np.uint8)
        a[20:80, 10 + 3 * i:90 + i] = (30 + 10 * i, 90, 200)
        p = folder / f"pic{i:02d}.png"
        Image.fromarray(a).save(p)
        paths.append(p)
    return paths


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.sqlite")


async def test_a_folder_runs_once_each_and_streams_to_disk(client: volcnb.Client, sim: Simulator, tmp_path: Path,
                                                           journal: Journal) -> None:
    _pictures(tmp_path / "in", 6)
    out = tmp_path / "out"
    batch = await volcnb.map("saliency_seg", tmp_path / "in", out_dir=out, journal=journal, concurrency=3)
    assert batch.counts() == {"done": 6} and batch.total == 6 and not batch.failed
    assert sim.counters.accepted == 6
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(x["index"] for x in lines) == list(range(6))
    assert all(x["status"] == "done" and x["task_id"] for x in lines)
    results = batch.results  # in input order, loaded back from the files
    assert [Path(item.label).name for item in batch.items] == [f"pic{i:02d}.png" for i in range(6)]
    assert all(r is not None and r.task_id == item.task_id for r, item in zip(results, batch.items, strict=True))
    first = results[0]
    assert isinstance(first, volcnb.SegmentationResult) and first.task_id == batch.items[0].task_id
    assert first.bbox is not None and first.images[0].size == (first.bbox[2] - first.bbox[0],
                                                               first.bbox[3] - first.bbox[1])
    assert not batch.latest or len(batch.latest) <= 8


async def test_rerunning_the_same_map_submits_nothing(client: volcnb.Client, sim: Simulator, tmp_path: Path,
                                                      journal: Journal) -> None:
    paths = _pictures(tmp_path / "in", 5)
    await volcnb.map("saliency_seg", paths, out_dir=tmp_path / "a", journal=journal)
    assert sim.counters.accepted == 5
    again = await volcnb.map("saliency_seg", paths, out_dir=tmp_path / "b", journal=journal)
    assert sim.counters.accepted == 5, "a re-run must reuse the journal's tasks"
    assert again.counts() == {"done": 5} and all(i.reused for i in again.items)
    assert again.results[2] is not None and again.results[2].task_id == again.items[2].task_id
    fresh = await volcnb.map("saliency_seg", paths[:2], out_dir=tmp_path / "c", journal=journal, fresh=True)
    assert sim.counters.accepted == 7 and not any(i.reused for i in fresh.items)
    # other parameters are another submit
    await volcnb.map("saliency_seg", paths[:1], out_dir=tmp_path / "d", journal=journal, only_mask=1)
    assert sim.counters.accepted == 8


async def test_another_simulator_never_inherits_task_ids(client: volcnb.Client, tmp_path: Path,
                                                         journal: Journal) -> None:
    paths = _pictures(tmp_path / "in", 2)
    await volcnb.map("saliency_seg", paths, out_dir=tmp_path / "a", journal=journal)
    other = Simulator(service_times={"saliency_seg": 0.1}, queue_time=0.0)
    try:
        c2 = volcnb.Client(client.credentials.access_key, DEFAULT_SECRET_KEY,
                           transport=httpx.ASGITransport(app=other.app()),
                           poller=volcnb.FixedPoller(0.05))
        c2.simulator = other
        batch = await volcnb.map("saliency_seg", paths, client=c2, out_dir=tmp_path / "b", journal=journal)
        assert other.counters.accepted == 2 and not any(i.reused for i in batch.items)
    finally:
        other.close()


async def test_one_bad_item_never_stops_the_batch(client: volcnb.Client, sim: Simulator, tmp_path: Path) -> None:
    paths = _pictures(tmp_path / "in", 3)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a picture at all")
    items: list[Any] = [paths[0], str(junk), {"image": paths[1], "only_mask": 7}, paths[2]]
    batch = await volcnb.map("saliency_seg", items, journal=False)
    statuses = [i.status for i in batch.items]
    assert statuses == ["done", "invalid", "invalid", "done"]
    assert sim.counters.accepted == 2, "refused items are never sent"
    failed = dict((str(k), e) for k, e in batch.failed)
    assert isinstance(failed[str(junk)], volcnb.ValidationError)
    assert batch.results[1] is None and batch.results[3] is not None  # in memory without a journal


async def test_a_generator_is_consumed_lazily(client: volcnb.Client, sim: Simulator, tmp_path: Path) -> None:
    path = _pictures(tmp_path / "in", 1)[0]
    pulled = 0

    def endless() -> Any:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield {"image": path, "only_mask": i % 2}
            if pulled >= 100_000:
                return

    batch = volcnb.map("saliency_seg", endless(), journal=False, concurrency=2)
    assert batch.total is None
    while sim.counters.accepted < 4:  # noqa: ASYNC110 - the simulator's counter has no event
        await asyncio.sleep(0.02)
    await batch.cancel()
    await batch
    assert pulled <= 8, f"{pulled} inputs read for a batch cancelled after 4 submits"
    assert "cancelled" in batch.counts() or batch.counts()["done"] >= 4


async def test_cancel_cancels_on_the_service(client: volcnb.Client, sim: Simulator, tmp_path: Path) -> None:
    sim.set_service_time("saliency_seg", ServiceTime(30.0, 0.0))
    paths = _pictures(tmp_path / "in", 4)
    batch = volcnb.map("saliency_seg", paths, journal=False)
    while sim.counters.accepted < 4:  # noqa: ASYNC110 - the simulator's counter has no event
        await asyncio.sleep(0.02)
    await batch.cancel()
    await batch
    assert batch.counts() == {"cancelled": 4} and sim.counters.cancels == 4


async def test_lost_tasks_are_reported_and_retried_on_request(client: volcnb.Client, sim: Simulator,
                                                              tmp_path: Path, journal: Journal) -> None:
    paths = _pictures(tmp_path / "in", 3)
    sim.faults.plan("CVSync2AsyncGetResult", "lost")
    batch = await volcnb.map("saliency_seg", paths, journal=journal, out_dir=tmp_path / "out", concurrency=1)
    assert sorted(batch.counts().items()) == [("done", 2), ("expired", 1)]
    again = await volcnb.map("saliency_seg", paths, journal=journal, out_dir=tmp_path / "out2")
    assert sorted(again.counts().items()) == [("done", 2), ("expired", 1)] and sim.counters.accepted == 3
    await again.retry_failed()
    assert again.counts() == {"done": 3} and sim.counters.accepted == 4


async def test_journal_holds_no_secret(http_client: volcnb.Client, tmp_path: Path) -> None:
    client = http_client
    paths = _pictures(tmp_path / "in", 2)
    db = tmp_path / "j.sqlite"
    await volcnb.map("saliency_seg", paths, journal=db, out_dir=tmp_path / "out", client=client)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("j.sqlite"))  # noqa: ASYNC240
    assert client.credentials.access_key.encode() in raw  # the key id names the backend …
    assert DEFAULT_SECRET_KEY.encode() not in raw          # … the secret never


async def test_sweep_labels_a_grid(client: volcnb.Client, sim: Simulator, tmp_path: Path) -> None:
    from matplotlib import cbook

    face = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    grid = await volcnb.sweep(PORTRAIT, str(face), cfg=[3, 6], seed=[1, 2], journal=False,
                              positive_prompt="动漫风格")
    assert grid.counts() == {"done": 4} and sim.counters.accepted == 4
    fig = volcnb.compare(grid)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["cfg=3 · seed=1", "cfg=3 · seed=2", "cfg=6 · seed=1", "cfg=6 · seed=2"]
    from _nb import ARTIFACTS_DIR

    ARTIFACTS_DIR.mkdir(exist_ok=True)
    fig.savefig(ARTIFACTS_DIR / "sweep.png", dpi=60)
    assert (ARTIFACTS_DIR / "sweep.png").stat().st_size > 10_000


def test_a_terminal_gets_one_progress_line(client: volcnb.Client, tmp_path: Path) -> None:
    from volcnb.display.progress import BatchProgress

    paths = _pictures(tmp_path / "in", 5)
    batch = volcnb.map("saliency_seg", paths, journal=False, display=False)
    stream = io.StringIO()
    BatchProgress(batch, stream=stream)
    batch.result()
    lines = stream.getvalue().splitlines()
    assert lines and lines[-1].startswith("saliency_seg") and " 5/5 [" in lines[-1]
    assert len(lines) <= 3, lines


async def test_bad_batch_arguments_are_refused(client: volcnb.Client, tmp_path: Path) -> None:
    with pytest.raises(volcnb.ValidationError, match="concurrency"):
        volcnb.map("saliency_seg", [tmp_path], concurrency=0)
    with pytest.raises(volcnb.ValidationError, match="qps"):
        volcnb.map("saliency_seg", [tmp_path], qps=-1)
    with pytest.raises(volcnb.ValidationError, match="matches no file"):
        volcnb.map("saliency_seg", str(tmp_path / "*.nothing"))
    with pytest.raises(volcnb.ValidationError, match="holds no images"):
        volcnb.map("saliency_seg", tmp_path)
