"""The adaptive poller's persisted model (a new process starts warm; a changed service is re-learned) and
the virtual-time benchmark's determinism."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

from PIL import Image

import volcnb
from volcnb.sim import Simulator
from volcnb.tasks.adaptive import AdaptivePoller
from volcnb.tasks.pollmodels import ModelStore

ROOT = Path(__file__).resolve().parents[2]


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (128, 128), (180, 200, 230)).save(buf, format="PNG")
    return buf.getvalue()


async def _wave(client: volcnb.Client, store: ModelStore, n: int = 10) -> tuple[float, AdaptivePoller]:
    """A new "process": a fresh poller on ``store``; one wave of ``n`` tasks; its polls per task."""
    poller = AdaptivePoller(store=store)
    client.poller = poller
    image = _png()
    tasks = [volcnb.submit("saliency_seg", image, client=client, display=False) for _ in range(n)]
    await asyncio.gather(*tasks)
    return sum(t.polls for t in tasks) / n, poller


async def test_a_new_process_with_a_persisted_model_spends_fewer_polls_on_its_first_wave(
        client: volcnb.Client, sim: Simulator, tmp_path: Path) -> None:
    # the cold first wave probes the unknown scale; the warm one polls where a steady service finishes
    sim.set_service_time("saliency_seg", 3.0, 0.05)
    path = tmp_path / "polling.sqlite"
    cold, _ = await _wave(client, ModelStore(client.backend_id, path))
    warm, poller = await _wave(client, ModelStore(client.backend_id, path))  # a new process, same file
    assert warm < cold, (warm, cold)
    assert 2.5 < poller.model("saliency_seg").median < 3.6
    assert ModelStore("another backend", path).load("saliency_seg") is None  # models are per backend


async def test_a_service_that_slowed_down_between_two_processes_is_relearned(
        client: volcnb.Client, sim: Simulator, tmp_path: Path) -> None:
    sim.set_service_time("saliency_seg", 1.0, 0.2)
    path = tmp_path / "polling.sqlite"
    await _wave(client, ModelStore(client.backend_id, path))
    sim.set_service_time("saliency_seg", 3.0, 0.2)  # the persisted 1 s model is dropped and 3 s learned
    _, poller = await _wave(client, ModelStore(client.backend_id, path))
    assert 2.3 < poller.model("saliency_seg").median < 3.9
    learned = ModelStore(client.backend_id, path).load("saliency_seg")
    assert learned is not None and len(learned.obs) == 10 and min(hi for _, hi in learned.obs) > 2.0


def test_a_stale_model_decays_toward_the_prior(tmp_path: Path) -> None:
    now = [0.0]
    store = ModelStore("b", tmp_path / "p.sqlite", half_life=100.0, now=lambda: now[0])
    store.save("saliency_seg", [(0.9, 1.1)] * 5)
    fresh = store.load("saliency_seg")
    assert fresh is not None and fresh.weight == 1.0
    now[0] = 100.0
    half = store.load("saliency_seg")
    assert half is not None and abs(half.weight - 0.5) < 1e-9
    now[0] = 1000.0
    assert store.load("saliency_seg") is None  # decayed to almost nothing: the catalog's prior alone


def test_the_virtual_time_benchmark_repeats_exactly() -> None:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "polling_vt.py"), "--settings", "10", "--seeds", "2",
           "--waves", "2", "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=True).stdout
            for _ in range(2)]
    assert runs[0] == runs[1]
    figures = json.loads(runs[0].splitlines()[-1])["settings"]
    assert set(figures) == {"10"}
    for key in ("polls_per_task", "lag_s", "fixed_polls_per_task", "fixed_lag_s", "oracle_polls_per_task",
                "polls_vs_oracle", "first_wave_polls_vs_oracle", "warm_polls_vs_oracle", "warm_lag_s"):
        assert figures["10"][key] > 0, key


def test_a_service_that_sped_up_drops_the_persisted_model() -> None:
    # a persisted 3 s model; the service now takes 1 s: every task is done at its first poll (2 s), which
    # the 3 s model gives ≈ 9 % each, so after a few tasks it is dropped and 1 s is learned
    from tests.tasks.test_polling import Clock, observe

    store = ModelStore("b", ":memory:", now=lambda: 0.0)
    rng = random.Random(1)
    store.save("saliency_seg", [(0.95 * s, 1.05 * s) for s in (3.0 * math.exp(0.3 * rng.gauss(0, 1)) for _ in range(50))])
    clock = Clock()
    poller = AdaptivePoller(store=store, clock=clock, timer=clock)
    assert 2.6 < poller.model("saliency_seg").median < 3.4
    observe(poller, clock, [1.0] * 2, every=2.0)
    assert poller._keys["saliency_seg"].warm  # two tasks are not enough evidence (≈ 0.1² > 0.1 %)
    observe(poller, clock, [1.0] * 2, every=2.0)
    assert not poller._keys["saliency_seg"].warm
    assert poller.model("saliency_seg").median < 2.0
