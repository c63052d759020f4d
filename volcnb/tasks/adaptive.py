"""The learning poller: learns each req_key's time-to-done and polls where completions are likely.

Per req_key, a log-normal posterior over (median, sigma) is fitted to what the client's own polls saw
(interval-censored: "done between two polls", "still running at age a"); a dynamic programme then places
each next poll to minimise expected lag + λ·polls, with λ set so the expected lag meets an aim that grows
with the service time. Cold keys probe one poll at a time; with a ``store`` a new process starts from the
model an earlier one persisted. The reasoning and figures: ``benchmarks/README.md``.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .keystate import Fit, KeyState
from .lognormal import (
    Arr,
    components,
    dp,
    fresh,
    grid,
    log_lik,
    lognormal_cdf_mean,
)
from .polling import PollSubject
from .pollmodels import ModelStore

__all__ = ["AdaptivePoller", "ModelFit", "TaskRecord"]

_CATALOG_WEIGHT, _CATALOG_SD = 0.3, 1.0  # the catalog's median: a weak bump (30 % of the mass, ±×e)
_G = 320  # points of the scheduling time grid
_C2_PER_SIGMA = 1.73  # polls × lag ≈ median · 1.73 σ / 2 for the optimal schedule of a log-normal
_SURV_CACHE = 512  # cached log-survival rows (running tasks' "not done by age a")
_PROBE_WAIT = 2.0  # seconds a due task of a cold key waits at most for another task's poll in flight
_COLD_PRICE = 0.35  # a cold poll costs this × the price it would have if the median were its age (learning pays)


# --- public records --------------------------------------------------------------------------------


class ModelFit(NamedTuple):
    """What the poller believes about a req_key's time-to-done: log-normal ``median`` (s), ``sigma``, and
    ``n`` finished tasks it has learned from (0: the prior only)."""

    median: float
    sigma: float
    n: int


@dataclass(frozen=True)
class TaskRecord:
    """One finished task as the poller saw it: ``polls`` made, done within ``(lo, hi]`` seconds after the
    submit, and ``est_lag`` — the expected delay between the server finishing and the client noticing."""

    req_key: str
    task_id: str | None
    polls: int
    lo: float
    hi: float
    est_lag: float


# --- per req_key state -----------------------------------------------------------------------------


@dataclass
class _TaskState:
    key: KeyState
    task_id: str | None
    submitted: float  # clock() at submit
    known_age: bool  # False for re-attached tasks: their age is unknown, nothing is learned from them
    last_notdone: float = 0.0  # age of the last poll that saw the task not done
    poll_started: float | None = None  # age at which the poll in flight started
    planned: float | None = None  # age at which the poll in flight was planned (it may start late)
    last_poll: float = 0.0  # age of the last poll (0: none yet)
    polls: int = 0
    tie: float = field(default_factory=random.random)  # tie-break between tasks submitted together
    ref: Callable[[], object] | None = None  # the task (weakly if possible): guards against id() reuse


# --- the poller ------------------------------------------------------------------------------------


@dataclass
class AdaptivePoller:
    """Learns each req_key's time-to-done from its own polls and polls where completions are likely.

    Parameters (all optional):

    * ``lag_fraction``/``lag_growth``/``max_lag``/``min_lag`` — the aim: notice a completion of a task
      whose typical service time is m within about ``lag_fraction`` × m × (m / 2 s) ** ``lag_growth``,
      clamped to ``[min_lag, max_lag]`` seconds, with as few polls as the learned distribution allows.
    * ``catalog_weight`` — prior weight of the catalog's ``service_time`` (0: ignore the catalog).
    * ``first``/``factor`` — backoff for tasks whose submit time is unknown (re-attached): nothing is
      learned from them.
    * ``cap`` — the longest pause between two polls of a task; ``min_interval`` — the shortest.
    * ``jitter`` — relative jitter of every pause (tasks submitted together do not poll in lock-step).
    * ``window`` — finished tasks kept per req_key; ``deadline`` — default overall deadline (seconds after
      submit) when the task has none: a last poll lands just before it.
    * ``store`` — a :class:`~volcnb.tasks.pollmodels.ModelStore`: start from the model persisted for
      this backend, keep it up to date (a persisted model that the service's replies contradict is dropped).
    * ``clock`` — must be the clock of ``task.submitted_monotonic`` (``time.monotonic``); ``timer`` — what
      times the refits (their CPU cost throttles them; a virtual-time harness passes its own clock).
    """

    lag_fraction: float = 0.10
    lag_growth: float = 0.2
    max_lag: float = 1.35
    min_lag: float = 0.05
    catalog_weight: float = _CATALOG_WEIGHT
    first: float = 0.5
    factor: float = 1.5
    cap: float = 60.0
    min_interval: float = 0.05
    jitter: float = 0.05
    window: int = 200
    deadline: float | None = None
    rng: random.Random = field(default_factory=random.Random)
    store: ModelStore | None = None
    clock: Callable[[], float] = time.monotonic
    timer: Callable[[], float] = time.perf_counter
    _keys: dict[str, KeyState] = field(default_factory=dict, init=False, repr=False)
    _tasks: dict[int, _TaskState] = field(default_factory=dict, init=False, repr=False)
    _history: deque[TaskRecord] = field(default_factory=lambda: deque(maxlen=2000), init=False, repr=False)

    # --- the Poller protocol ------------------------------------------------------------------------

    async def pause(self, task: PollSubject) -> None:
        """Wait until ``task`` should be polled next (woken early to re-plan when the model changes)."""
        st = self._state(task)
        key = st.key
        due = False  # the planned time has come (a timer, not a wake-up, ended the last sleep)
        planned = 0.0
        while True:
            age = self._age(st)
            if not due:
                planned = self._next_age(st, age, task)
                due = planned - age <= 1e-3
            if due:
                probe = self._cold_probe(st)
                if probe is None:
                    break
                # another task's poll of this cold key is in flight: its answer re-plans this one too
                # (a batch submitted together probes the unknown scale one poll at a time)
                await self._sleep(st, max(self.min_interval, _PROBE_WAIT - probe))
                due = False
                continue
            due = not await self._sleep(st, planned - age)
        st.poll_started = self._age(st)
        st.planned = min(planned, st.poll_started)
        if st.known_age:
            key.inflight[id(st)] = self.clock()

    def _cold_probe(self, st: _TaskState) -> float | None:
        """While ``st``'s key is cold: how long another task's poll has been in flight (None: go ahead)."""
        key = st.key
        if not key.cold or not st.known_age:
            return None
        now = self.clock()
        others = [now - t for i, t in key.inflight.items() if i != id(st) and now - t < _PROBE_WAIT]
        return min(others) if others else None  # (a probe stuck in retries is not waited for long)

    def record(self, task: PollSubject, status: str) -> None:
        """Learn from what a poll of ``task`` saw (``in_queue``/``generating``/``done``/…)."""
        st = self._lookup(task)
        if st is None:
            return
        key = st.key
        now_age = self._age(st)
        started = st.poll_started if st.poll_started is not None else now_age
        st.poll_started = None
        key.inflight.pop(id(st), None)
        # from the planned time to the reply: a timer that fires late on a busy loop, then the poll itself
        since = st.planned if st.planned is not None else started
        st.planned = None
        key.latency += 0.2 * (min(max(now_age - since, 0.0), 2.0) - key.latency)
        st.polls += 1
        st.last_poll = started
        if not st.known_age:
            return
        if status in ("in_queue", "generating"):
            st.last_notdone = max(st.last_notdone, started)
            key.running[id(st)] = (st.submitted, st.tie, st.last_notdone)
            key.dirty = True
            self._check_warm(key, st.last_notdone, math.inf)
            if key.cold:  # the others of a fresh batch wait for this answer: they should know at once
                self._refit(key, notify=False)
                _wake(key)
        elif status == "done":
            key.running.pop(id(st), None)
            was_cold = key.cold
            lo, hi = st.last_notdone, max(now_age, st.last_notdone + 1e-6)
            key.add_done(st.submitted, lo, hi, st.tie)
            self._check_warm(key, lo, hi)
            self._save(key)
            if was_cold:
                self._refit(key, notify=True)
                _wake(key)
            elif len(key.done) <= 30:  # while learning, every finished task counts at once
                self._request_refit(key)
            task_id = task.task_id
            self._history.append(TaskRecord(key.req_key, task_id if isinstance(task_id, str) else st.task_id,
                                            st.polls, lo, hi, self._est_lag(key, lo, hi)))
        else:  # failed / cancelled / expired: no service-time information
            key.running.pop(id(st), None)

    def forget(self, task: PollSubject) -> None:
        """``task`` stopped waiting."""
        st = self._lookup(task)
        if st is not None:
            self._drop(task, st)

    # --- introspection -----------------------------------------------------------------------------

    def model(self, req_key: str) -> ModelFit:
        """The fitted log-normal time-to-done of ``req_key``: ``(median, sigma, n)``."""
        fit = self._current(self._key(req_key))
        return ModelFit(fit.median, fit.sigma, fit.n)

    def schedule(self, req_key: str, count: int = 10) -> list[float]:
        """Planned poll ages (seconds after submit) of a fresh task of ``req_key`` that stays unfinished
        (without jitter, and without what other tasks' polls would teach meanwhile)."""
        fit = self._current(self._key(req_key))
        out: list[float] = []
        last = 0.0
        while len(out) < count:
            nxt = self._plan(fit, last, last)
            if nxt is None:
                nxt = last + self._fallback(last)
            last = min(nxt, last + self.cap)
            out.append(last)
        return out

    def history(self, req_key: str | None = None) -> list[TaskRecord]:
        """Finished tasks (oldest first, the last 2000): polls made and estimated lag, per task."""
        return [r for r in self._history if req_key is None or r.req_key == req_key]

    # --- planning ----------------------------------------------------------------------------------

    def _key(self, req_key: str) -> KeyState:
        key = self._keys.get(req_key)
        if key is None:
            key = self._keys[req_key] = KeyState(req_key, self.window, self.catalog_weight)
            learned = self.store.load(req_key) if self.store is not None else None
            if learned is not None:
                key.warm_obs = learned.obs
                key.warm = [learned.weight * log_lik(lo, hi) for lo, hi in learned.obs]
                self._refit(key, notify=False)
                assert key.fit is not None
                key.warm_cdf = (key.fit.t, key.fit.F)
        return key

    def _check_warm(self, key: KeyState, lo: float, hi: float) -> None:
        """Drop the persisted model if it gave what was just seen (done in ``(lo, hi]``), or every task so far
        being done at its first poll, less than 0.1 %."""
        if key.warm_cdf is None:
            return
        t, F = key.warm_cdf
        p = (1.0 if hi == math.inf else float(np.interp(hi, t, F))) - float(np.interp(lo, t, F, left=0.0))
        if key.first_poll_logp is not None and hi < math.inf:  # a faster service: all done at the first poll
            key.first_poll_logp = key.first_poll_logp + math.log(max(p, 1e-12)) if lo <= 0 else None
        if p < 1e-3 or (key.first_poll_logp or 0.0) < math.log(1e-3):  # the speed changed: learn it again
            key.warm, key.warm_obs, key.warm_cdf = [], [], None
            key.dirty = True
            self._refit(key, notify=True)
            _wake(key)

    def _save(self, key: KeyState) -> None:
        n = len(key.done)
        if self.store is not None and (n <= 20 or n % 10 == 0):
            self.store.save(key.req_key, key.warm_obs + [(o.lo, o.hi) for o in key.done])

    def _lookup(self, task: PollSubject) -> _TaskState | None:
        st = self._tasks.get(id(task))
        if st is not None and st.ref is not None and st.ref() is not task:  # a dead task's id, reused
            self._drop(task, st)
            return None
        return st

    def _drop(self, task: PollSubject, st: _TaskState) -> None:
        self._tasks.pop(id(task), None)
        st.key.running.pop(id(st), None)
        if st.key.inflight.pop(id(st), None) is not None:
            _wake(st.key)  # a cold probe that will not answer: the others go ahead

    def _state(self, task: PollSubject) -> _TaskState:
        st = self._lookup(task)
        if st is None:
            sub = task.submitted_monotonic
            known = sub is not None and task.submitted_at is not None
            task_id = task.task_id
            st = _TaskState(key=self._key(task.req_key), task_id=task_id if isinstance(task_id, str) else None,
                            submitted=sub if sub is not None and known else self.clock(), known_age=known,
                            tie=self.rng.random())
            try:
                st.ref = weakref.ref(task)
            except TypeError:  # not weak-referenceable: keep it until forget()
                st.ref = lambda task=task: task  # type: ignore[misc]
            self._tasks[id(task)] = st
        return st

    def _age(self, st: _TaskState) -> float:
        return max(0.0, self.clock() - st.submitted)

    def _current(self, key: KeyState) -> Fit:
        """The fit with every observation so far (introspection: no throttling)."""
        if key.fit is None or key.dirty:
            self._refit(key, notify=True)
        assert key.fit is not None
        return key.fit

    def _fit(self, key: KeyState) -> Fit:
        stale = key.dirty and self.clock() - key.fitted_at >= self._refit_interval(key)
        if key.fit is None or stale:
            self._refit(key, notify=key.fit is not None)
        assert key.fit is not None
        return key.fit

    def _refit_interval(self, key: KeyState) -> float:
        m = key.fit.pred_median if key.fit is not None else 1.0
        return min(2.0, max(0.02, 0.02 * m, 4.0 * key.fit_cost))

    def _request_refit(self, key: KeyState) -> None:
        """Refit now, or as soon as the CPU budget allows (a refit every ≥ 4× its own cost), and wake
        the waiting tasks if the model changed."""
        wait = key.fitted_at + 4.0 * key.fit_cost - self.clock()
        if wait <= 0 or key.fit is None:
            self._refit(key, notify=True)
            return
        if key.refit_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._refit(key, notify=True)
            return
        key.refit_pending = True
        loop.call_later(wait, self._deferred_refit, key)

    def _deferred_refit(self, key: KeyState) -> None:
        key.refit_pending = False
        if key.dirty:
            self._refit(key, notify=True)

    def _refit(self, key: KeyState, *, notify: bool) -> None:
        old = key.fit
        started = self.timer()
        key.fit = self._compute_fit(key)
        key.fit_cost = 0.7 * key.fit_cost + 0.3 * (self.timer() - started)
        key.fitted_at = self.clock()
        key.dirty = False
        if notify and old is not None and _changed(old, key.fit):
            _wake(key)

    def _compute_fit(self, key: KeyState) -> Fit:
        g = grid()
        lp = key.log_posterior()
        w = np.exp(lp - lp.max())
        w /= w.sum()
        mean_mu = float(w @ g.mu)
        sd_mu = math.sqrt(max(float(w @ (g.mu - mean_mu) ** 2), 0.0))
        sigma = float(w @ g.sigma)
        mu_k, sg_k, w_k = components(w, sd_mu)
        main = w_k > w_k.max() * 1e-3
        t_lo = max(0.02, float(np.min(np.exp(mu_k[main] - 4.0 * sg_k[main]))))
        t_hi = min(6 * 3600.0, float(np.max(np.exp(mu_k[main] + 4.0 * sg_k[main]))))
        t_hi = max(t_hi, t_lo * 1.5)
        t = np.exp(np.linspace(math.log(t_lo), math.log(t_hi), _G))
        F, M = lognormal_cdf_mean(t, mu_k, sg_k, w_k)
        F = np.maximum.accumulate(np.clip(F, 0.0, 1.0))
        pred_median = float(np.interp(0.5, F, t)) if F[-1] > 0.5 else float(t[-1])
        lam_median = float(self._lam(np.array([pred_median]), sigma)[0])
        if key.cold:
            # nothing seen done yet, the scale is unknown: price a poll at age t as if the median were t (at
            # most as at the current estimate), at a discount: what it teaches pays off for every later task
            lam = _COLD_PRICE * np.minimum(self._lam(t, sigma), lam_median)
        else:
            lam = np.full(_G, key.lam_scale * lam_median)
        W, L, P, _ = dp(t, F, M, lam)
        lag, polls = fresh(t, F, M, W, L, P, lam)
        # a completion is noticed when the reply arrives, some time after the poll was planned (a timer
        # firing late on a busy loop, then the request itself; the DP's lag counts from the planned poll):
        # the aim left for the schedule is the aim minus that time
        target = max(0.5 * self.min_lag, self._target(pred_median) - key.latency)
        if key.n_done >= 3 and sd_mu < 0.3 and lag > 0:
            # calibrate λ so that the expected lag of a fresh task meets the target
            scale = min(4.0, max(0.25, (target / lag) ** 2))
            if abs(scale - 1.0) > 0.05:
                key.lam_scale = min(50.0, max(0.02, key.lam_scale * scale))
                lam = lam * scale
                W, L, P, _ = dp(t, F, M, lam)
                lag, polls = fresh(t, F, M, W, L, P, lam)
        return Fit(median=math.exp(mean_mu), sigma=sigma, sd_mu=sd_mu, n=key.n_done, pred_median=pred_median,
                    t=t, F=F, M=M, W=W, lam=lam, exp_lag=lag, exp_polls=polls, mu_k=mu_k, sg_k=sg_k, w_k=w_k)

    def _target(self, median: float) -> float:
        return float(self._aim(np.array([median]))[0])

    def _aim(self, median: Arr) -> Arr:
        """The lag aimed at for a typical service time ``median``: ``lag_fraction`` of it at 2 s, a growing
        fraction for longer tasks (``lag_growth``: a second matters less to a long wait), within
        ``[min_lag, max_lag]``."""
        m = np.maximum(median, 1e-3)
        out: Arr = np.clip(self.lag_fraction * m * (m / 2.0) ** self.lag_growth, self.min_lag, self.max_lag)
        return out

    def _lam(self, median: Arr, sigma: float) -> Arr:
        """λ for which the optimal schedule of a log-normal(median, sigma) has about the target lag.

        For the optimal schedule, polls × lag ≈ median · 1.73 σ / 2 and lag ≈ sqrt(λ · median · 1.73 σ / 2).
        """
        target = self._aim(median)
        out: Arr = 2.0 * target**2 / (_C2_PER_SIGMA * median * max(sigma, 0.1))
        return out

    def _plan(self, fit: Fit, a0: float, age: float) -> float | None:
        """Best next poll age ≥ ``age + min_interval`` after a last not-done poll at ``a0``."""
        t = fit.t
        start = int(np.searchsorted(t, age + self.min_interval))
        if start >= len(t):
            return None
        Fa = float(np.interp(a0, t, fit.F, left=0.0))
        Ma = float(np.interp(a0, t, fit.M, left=0.0))
        if 1.0 - Fa < 1e-3:  # the model did not expect the task to run this long
            return None
        c = (fit.lam[start:] * (1.0 - Fa) + t[start:] * (fit.F[start:] - Fa) - (fit.M[start:] - Ma)
             + fit.W[start:])
        return float(t[start + int(np.argmin(c))])

    def _fallback(self, age: float) -> float:
        """Pause of a task running longer than the model expects: grow with its age."""
        return min(self.cap, max(self.min_interval, self.first, 0.15 * age))

    def _next_age(self, st: _TaskState, age: float, task: PollSubject) -> float:
        """The age at which the task of ``st`` should be polled next."""
        last = st.last_poll
        if not st.known_age:
            base = min(self.cap, self.first * self.factor ** st.polls)
            return max(age, last + base * self._jit())
        target = self._plan(self._fit(st.key), st.last_notdone, age)
        if target is None:
            target = max(age, last) + self._fallback(max(age, last))
        target = age + max(0.0, target - age) * self._jit()
        target = min(target, max(age, last + self.cap))
        deadline = task.deadline or self.deadline
        if isinstance(deadline, (int, float)) and deadline > 0:
            final = deadline - min(1.0, 0.02 * deadline)
            if age < final < target:
                target = final
        return target

    def _jit(self) -> float:
        return 1.0 + self.rng.uniform(-self.jitter, self.jitter) if self.jitter > 0 else 1.0

    def _est_lag(self, key: KeyState, lo: float, hi: float) -> float:
        fit = key.fit or self._fit(key)
        F, M = lognormal_cdf_mean(np.array([max(lo, 1e-6), hi]), fit.mu_k, fit.sg_k, fit.w_k)
        if lo <= 0:
            F[0], M[0] = 0.0, 0.0
        dF = float(F[1] - F[0])
        if dF <= 1e-12:
            return (hi - lo) / 2
        return max(0.0, min(hi - lo, hi - float(M[1] - M[0]) / dF))

    async def _sleep(self, st: _TaskState, delay: float) -> bool:
        """Sleep ``delay`` seconds; True if woken early because the model changed."""
        key = st.key
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        handle = loop.call_later(delay, _resolve, fut, False)
        key.waiters[fut] = None
        try:
            return await fut
        finally:
            handle.cancel()
            key.waiters.pop(fut, None)


def _changed(old: Fit, new: Fit) -> bool:
    if new.n != old.n and new.n <= 30:
        return True
    return (abs(math.log(new.pred_median / old.pred_median)) > 0.03 or abs(new.sigma - old.sigma) > 0.03
            or abs(new.sd_mu - old.sd_mu) > 0.05)


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)


def _wake(key: KeyState) -> None:
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for fut in list(key.waiters):
        _wake_future(fut, running)


def _wake_future(fut: asyncio.Future[bool], running: asyncio.AbstractEventLoop | None = None) -> None:
    if running is None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
    loop = fut.get_loop()
    if loop is running:
        _resolve(fut, True)
    elif not loop.is_closed():
        loop.call_soon_threadsafe(_resolve, fut, True)
