"""The adaptive poller: model fit on censored data, the schedule, and an end-to-end run on the simulator."""

from __future__ import annotations

import asyncio
import io
import math
import random
import time
from dataclasses import dataclass

import pytest
from PIL import Image

import volcnb
from volcnb.sim import Simulator
from volcnb.tasks import AdaptivePoller as DefaultPoller
from volcnb.tasks.adaptive import AdaptivePoller, ModelFit


@dataclass(eq=False)
class FakeTask:
    """What a poller may look at on a task."""

    req_key: str = "saliency_seg"
    polls: int = 0
    submitted_monotonic: float | None = 0.0
    submitted_at: float | None = 1.0
    task_id: str | None = "t"
    deadline: float | None = None


class Clock:
    """A settable clock for the poller (ages are measured from ``submitted_monotonic``)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


_alive: list[FakeTask] = []


def observe(poller: AdaptivePoller, clock: Clock, durations: list[float], every: float,
            stop_after: float = math.inf, latency: float = 0.0) -> None:
    """Tasks that take ``durations`` seconds, one after the other, each polled every ``every`` s through
    the poller's record(); a task still running after ``stop_after`` s is left running (right-censored).
    Each poll takes ``latency`` seconds (it started that long before its reply is recorded)."""
    for i, d in enumerate(durations):
        start = clock.now
        task = FakeTask(task_id=f"t{i}", submitted_monotonic=start)
        _alive.append(task)  # a running task must outlive this loop (the poller holds it weakly)
        poller._state(task)
        k = 1
        while k * every <= stop_after:
            clock.now = start + k * every
            done = k * every >= d
            if latency:
                poller._tasks[id(task)].poll_started = k * every - latency
            poller.record(task, "done" if done else "generating")
            if done:
                poller.forget(task)
                break
            k += 1
        clock.now = start + max(d, every) + 1.0


def lognormal(n: int, median: float, sigma: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [median * math.exp(sigma * rng.gauss(0.0, 1.0)) for _ in range(n)]


# --- the model ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("median", [2.0, 10.0, 60.0])
def test_fit_recovers_median_from_interval_censored_polls(median: float) -> None:
    clock = Clock()
    poller = AdaptivePoller(clock=clock)
    # coarse polls (every 20 % of the median): each task only says "done within (k·Δ, (k+1)·Δ]"
    observe(poller, clock, lognormal(20, median, 0.3, seed=int(median)), every=0.2 * median)
    fit = poller.model("saliency_seg")
    assert isinstance(fit, ModelFit) and fit.n == 20
    assert fit.median == pytest.approx(median, rel=0.15)
    assert 0.15 < fit.sigma < 0.5


def test_fit_uses_running_tasks_so_slow_tasks_do_not_bias_it() -> None:
    clock = Clock()
    poller = AdaptivePoller(clock=clock)
    # polls every 1 s, but each task is watched for 10 s only: about half are still running then
    observe(poller, clock, lognormal(40, 10.0, 0.3, seed=3), every=1.0, stop_after=10.0)
    fit = poller.model("saliency_seg")
    assert 10 < fit.n < 30  # the slow ones are only right-censored
    assert fit.median == pytest.approx(10.0, rel=0.15)


def test_unknown_req_key_and_no_data_give_the_prior() -> None:
    poller = AdaptivePoller()
    fit = poller.model("no_such_key")
    assert fit.n == 0 and 0.2 < fit.median < 1800


# --- the schedule ------------------------------------------------------------------------------------


def test_schedule_cold_polls_soon_then_grows() -> None:
    poller = AdaptivePoller(cap=20.0)
    ages = poller.schedule("no_such_key", 25)
    assert ages[0] <= 1.0  # first poll soon after submit while nothing is known
    gaps = [b - a for a, b in zip(ages, ages[1:], strict=False)]
    assert all(g > 0 for g in gaps)
    assert max(gaps) <= 20.0 + 1e-9  # capped
    assert gaps[-1] > 2 * gaps[0]  # growing intervals


@pytest.mark.parametrize("median", [2.0, 10.0, 60.0])
def test_schedule_learned_places_polls_where_completions_are(median: float) -> None:
    clock = Clock()
    cap = 0.6 * median
    poller = AdaptivePoller(clock=clock, cap=cap)
    observe(poller, clock, lognormal(40, median, 0.3, seed=7), every=0.05 * median)
    ages = poller.schedule("saliency_seg", 40)
    gaps = [b - a for a, b in zip(ages, ages[1:], strict=False)]
    assert all(g > 0 for g in gaps)
    assert 0.4 * median < ages[0] < median  # no polls long before anything finishes, but early enough
    assert max(gaps) <= cap + 1e-9  # capped (a task running far longer than expected still gets polled)
    target = min(0.12 * median, 1.3)  # the lag the schedule aims at
    bulk = [g for a, g in zip(ages, gaps, strict=False) if 0.7 * median < a < 1.5 * median]
    assert bulk and max(bulk) < 4 * target  # dense where completions are likely: lag ≈ gap / 2


def test_expected_lag_tracks_the_target() -> None:
    clock = Clock()
    poller = AdaptivePoller(clock=clock)
    observe(poller, clock, lognormal(60, 10.0, 0.3, seed=11), every=0.5)
    fit = poller._keys["saliency_seg"].fit
    assert fit is not None
    assert poller._target(fit.pred_median) == pytest.approx(1.35)  # 10 s tasks: the max_lag clamp
    assert fit.exp_lag == pytest.approx(1.35, rel=0.1)
    assert 1.5 < fit.exp_polls < 4.0


def test_the_time_a_poll_takes_counts_against_the_aim() -> None:
    # the reply of a slow poll arrives 0.3 s after it started: the schedule aims 0.3 s lower to compensate
    clock = Clock()
    poller = AdaptivePoller(clock=clock)
    observe(poller, clock, lognormal(60, 10.0, 0.3, seed=11), every=0.5, latency=0.3)
    fit = poller._keys["saliency_seg"].fit
    assert fit is not None and poller._keys["saliency_seg"].latency == pytest.approx(0.3)
    assert fit.exp_lag == pytest.approx(1.35 - 0.3, rel=0.1)


def test_the_lag_aim_grows_with_the_service_time() -> None:
    poller = AdaptivePoller()
    assert poller._target(2.0) == pytest.approx(0.20)  # 10 % of 2 s
    assert poller._target(5.0) == pytest.approx(0.10 * 5.0 * 2.5**0.2)  # a growing fraction
    assert poller._target(0.2) == pytest.approx(poller.min_lag, abs=0.02)
    assert poller._target(600.0) == poller.max_lag


async def test_pause_respects_the_task_deadline() -> None:
    clock = Clock()
    poller = AdaptivePoller(clock=clock)
    observe(poller, clock, lognormal(20, 60.0, 0.3, seed=5), every=3.0)  # learned: ~60 s
    poller.clock = time.monotonic
    task = FakeTask(submitted_monotonic=time.monotonic(), deadline=0.3, task_id="d")
    started = time.monotonic()
    await poller.pause(task)  # the plan says ~40 s, but the deadline says: one last poll before 0.3 s
    assert time.monotonic() - started < 2.0  # not the ~40 s of the plan (slack for a loaded machine)


async def test_attached_task_of_unknown_age_backs_off_and_teaches_nothing() -> None:
    poller = AdaptivePoller(first=0.02, factor=2.0, jitter=0.0)
    task = FakeTask(submitted_at=None, submitted_monotonic=time.monotonic())
    started = time.monotonic()
    await poller.pause(task)
    assert time.monotonic() - started < 1.0  # first=0.02 s, not the learned plan
    poller.record(task, "done")
    assert poller.model("saliency_seg").n == 0


async def test_waiting_tasks_are_woken_when_the_model_changes() -> None:
    loop = asyncio.get_running_loop()
    poller = AdaptivePoller(clock=loop.time)
    now = loop.time()
    a, b = FakeTask(task_id="a", submitted_monotonic=now), FakeTask(task_id="b", submitted_monotonic=now)
    poller._state(a)
    waiting = asyncio.create_task(poller.pause(b))
    await asyncio.sleep(0.05)
    key = poller._keys["saliency_seg"]
    assert not waiting.done() and key.waiters  # b waits for its first poll (~0.4 s, from the prior)
    planned = poller.schedule("saliency_seg", 1)[0]
    poller.record(a, "done")  # a task submitted with b is done already: b re-plans, to poll sooner
    await asyncio.wait_for(waiting, planned)
    assert loop.time() - now < 0.75 * planned


def test_history_records_polls_and_estimated_lag() -> None:
    clock = Clock()
    poller = AdaptivePoller(clock=clock)
    observe(poller, clock, [3.3, 4.1], every=1.0)
    hist = poller.history("saliency_seg")
    assert [r.polls for r in hist] == [4, 5]
    assert [r.task_id for r in hist] == ["t0", "t1"]
    assert all(0 <= r.est_lag <= r.hi - r.lo for r in hist)


def test_default_poller_is_the_learning_one() -> None:
    assert DefaultPoller is AdaptivePoller


# --- end to end on the in-process simulator -------------------------------------------------------------


def _png(size: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (180, 200, 230)).save(buf, format="PNG")
    return buf.getvalue()


async def test_waves_learn_and_notice_sooner(client: volcnb.Client, sim: Simulator) -> None:
    # 3 waves of 5 tasks at 1 s. The cold key polls geometrically from a fraction of a second (the scale is
    # unknown), so wave 1 is noticed late; once learned, the polls move to where the tasks finish.
    sim.set_service_time("saliency_seg", 1.0, 0.2)
    poller = AdaptivePoller()
    client.poller = poller
    image = _png()
    polls: list[float] = []
    lags: list[float] = []
    for _ in range(3):
        tasks = [volcnb.submit("saliency_seg", image, client=client, display=False) for _ in range(5)]
        await asyncio.gather(*tasks)
        polls.append(sum(t.polls for t in tasks) / len(tasks))
        lags.append(sum(sim.lag(t.task_id, t.finished_at) or 0.0 for t in tasks) / len(tasks))
    print("lags", lags, "polls", polls)
    # Real time on a possibly busy machine (event-loop delays add to every lag): the learned waves are
    # noticed well sooner than the cold one, or within a quarter of the service time outright.
    learned = (lags[1] + lags[2]) / 2
    assert learned < max(0.7 * lags[0], 0.25), (lags, polls)
    assert polls[2] <= 3.5  # the aim at 1 s is ≈ 0.09 s: polls × lag ≈ 1.73 σ m / 2 ≈ 0.17 s → ≈ 2–3 polls
    fit = poller.model("saliency_seg")
    assert fit.n == 15 and 0.6 < fit.median < 1.6
    hist = poller.history("saliency_seg")
    assert len(hist) == 15 and all(r.polls >= 1 and r.est_lag >= 0 for r in hist)


async def test_a_cold_batch_probes_one_poll_at_a_time() -> None:
    # two tasks of a key never seen done, submitted together: when a's poll is in flight, b's poll (due at
    # the same moment) waits for a's answer instead of asking the same question
    loop = asyncio.get_running_loop()
    poller = AdaptivePoller(clock=loop.time, jitter=0.0)
    now = loop.time()
    a, b = FakeTask(task_id="a", submitted_monotonic=now), FakeTask(task_id="b", submitted_monotonic=now)
    pauses = {asyncio.create_task(poller.pause(a)): a, asyncio.create_task(poller.pause(b)): b}
    done, pending = await asyncio.wait(pauses, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1  # one poll is due (and now "in flight")
    first, (other,) = pauses[done.pop()], pending
    await asyncio.sleep(0.3)
    assert not other.done()  # the other was due too, but waits for the first one's answer
    poller.record(first, "done")  # it was done: the key is learned, the other re-plans at once, polls soon
    await asyncio.wait_for(other, 1.0)
    assert poller.model("saliency_seg").n == 1


async def test_a_cold_probe_that_never_answers_is_not_waited_for_long() -> None:
    loop = asyncio.get_running_loop()
    poller = AdaptivePoller(clock=loop.time, jitter=0.0)
    now = loop.time()
    a, b = FakeTask(task_id="a", submitted_monotonic=now), FakeTask(task_id="b", submitted_monotonic=now)
    pauses = {asyncio.create_task(poller.pause(a)), asyncio.create_task(poller.pause(b))}
    _, (other,) = await asyncio.wait(pauses, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
    started = loop.time()
    await asyncio.wait_for(other, 5.0)  # the first poll hangs (retries, a slow network): go ahead anyway
    assert 1.5 < loop.time() - started < 3.5
