"""The learning poller: learns each req_key's time-to-done and polls where completions are likely.

Why: a fixed 3 s loop wastes polls on long tasks and notices short ones late; geometric backoff guesses a
scale. Service times of one req_key are fairly regular, so :class:`AdaptivePoller` learns them from what its
own polls see and places each next poll to minimise ``expected lag + λ · expected polls``.

How it works, per req_key (all tasks of a client share its poller, so they share what they learn):

* **Observations** (ages are seconds since the submit returned; only GetResult replies are used): a finished
  task gives an interval ``(last poll that was not done, first poll that was done]``; a running task gives
  "not done at age a" (right-censored). The last ``window`` finished tasks are kept, so the model follows a
  service whose speed drifts.
* **Model**: time-to-done is log-normal. A grid posterior over (log median, sigma) — the median log-uniform
  over 0.2 s – 30 min plus a weak bump at the catalog's ``service_time``, sigma around 0.35 (×/÷ 1.8) — is
  updated with the exact interval-censored likelihood, mixed with a small broad outlier component so that
  one odd task cannot wreck it. It is refitted only when observations change (at most every 2 % of the
  typical service time for survival-only changes), and cached.
* **Schedule**: on the posterior predictive (which carries the uncertainty about median and sigma) a dynamic
  programme over a time grid gives, for "last not-done poll at age a", the next poll age minimising
  expected lag + λ·polls. λ is calibrated so the expected lag meets an aim that grows with the typical
  service time m: ``lag_fraction`` × m at m = 2 s, a slowly growing fraction for longer tasks
  (× (m / 2 s) ** ``lag_growth``: a second matters less in a long wait), clamped to ``[min_lag, max_lag]``
  seconds. Fast tasks are noticed within a fraction of a second (≈ 0.22 s at 2 s), long ones within
  ``max_lag`` with as few polls as that allows. So the first poll comes soon after submit while the key is
  unknown or fast, and where completions start once it is learned. Pauses get a little jitter, never exceed
  ``cap`` (60 s: a cap below the typical service time would force a useless early poll on every task); a
  task running past everything the model expects backs off.
* **Cold start**: while no task of a req_key has been seen done, a poll at age t is priced as if the median
  were t (scale-free, so polls grow geometrically from the first fraction of a second), at a discount
  (``_COLD_PRICE``): what the first completions teach pays off for every later task. A batch submitted
  together probes one poll at a time: when a task's poll is due while another task of the cold key has a
  poll in flight, it waits for that answer and re-plans on the refitted model. Waiting tasks are woken
  whenever the model changes materially, so the batch re-plans as soon as one of them is done.
* **Latency**: a completion is noticed when the reply arrives, not when the poll was planned; the time in
  between (a timer firing late on a busy event loop, then the request) is measured per req_key and
  subtracted from the lag aim.
* **Deadline**: if the task has a ``deadline`` (seconds, as :class:`volcnb.Task` has) or the poller has one,
  a last poll lands just before it.

Per finished task the poller records polls made and an estimate of the lag (a client cannot see the true
finish; the estimate is ``E[noticed − finished]`` under the model): :meth:`AdaptivePoller.history`. The
fitted model is :meth:`AdaptivePoller.model`; the plan of a fresh task :meth:`AdaptivePoller.schedule`.

Usage::

    from volcnb._polling import AdaptivePoller   # the default poller of every client
    client.poller = poller = AdaptivePoller()     # shared by all tasks of the client
    ...
    poller.model("saliency_seg")                  # ModelFit(median=2.03, sigma=0.31, n=40)
    poller.schedule("saliency_seg", 4)            # [1.62, 1.95, 2.24, 2.52]
"""

from __future__ import annotations

import asyncio
import bisect
import math
import random
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from ._polling import PollSubject

__all__ = ["AdaptivePoller", "ModelFit", "TaskRecord"]

Arr = npt.NDArray[np.float64]

# --- the parameter grid ------------------------------------------------------------------------------

_MU_LO, _MU_HI, _MU_STEP = math.log(0.2), math.log(1800.0), 0.035  # log-uniform median 0.2 s – 30 min
_SIGMAS = np.exp(np.linspace(math.log(0.04), math.log(1.6), 24))
_SIGMA_PRIOR = (math.log(0.35), 0.6)  # log sigma ~ N(log 0.35, 0.6): "±35 %, give or take ×2"
_CATALOG_WEIGHT, _CATALOG_SD = 0.3, 1.0  # the catalog's median: a weak bump (30 % of the mass, ±×e)
_OUTLIER = 0.01  # likelihood mixture weight of a broad log-uniform outlier (0.05 s – 4 h)
_OUT_LO, _OUT_HI = math.log(0.05), math.log(4 * 3600.0)
_MAX_COMPONENTS = 300  # at most this many mixture components for the predictive (broad posteriors are coarsened)
_G = 320  # points of the scheduling time grid
_C2_PER_SIGMA = 1.73  # polls × lag ≈ median · 1.73 σ / 2 for the optimal schedule of a log-normal
_SURV_CACHE = 512  # cached log-survival rows (running tasks' "not done by age a")
_SQRT2 = math.sqrt(2.0)
_PROBE_WAIT = 2.0  # seconds a due task of a cold key waits at most for another task's poll in flight
_COLD_PRICE = 0.35  # a cold poll costs this × the price it would have if the median were its age (learning pays)


@dataclass(frozen=True)
class _Grid:
    mu: Arr
    sigma: Arr
    prior_sigma: Arr

    @staticmethod
    def build() -> _Grid:
        mus = np.arange(_MU_LO, _MU_HI + _MU_STEP / 2, _MU_STEP)
        mu, sg = np.meshgrid(mus, _SIGMAS, indexing="ij")
        ls = np.log(sg.ravel())
        prior_sigma = -0.5 * ((ls - _SIGMA_PRIOR[0]) / _SIGMA_PRIOR[1]) ** 2
        return _Grid(mu.ravel().astype(np.float64), sg.ravel().astype(np.float64), prior_sigma)


_GRID: _Grid | None = None


def _grid() -> _Grid:
    global _GRID
    if _GRID is None:
        _GRID = _Grid.build()
    return _GRID


# --- normal tails, accurate far out ------------------------------------------------------------------


def _log_erfc_pos(x: Arr) -> Arr:
    """log erfc(x) for x >= 0 (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7 everywhere)."""
    t = 1.0 / (1.0 + 0.5 * x)
    poly = -x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    out: Arr = np.log(t) + poly
    return out


def _log_q(z: Arr) -> Arr:
    """log P(Z > z) for a standard normal Z."""
    z = np.clip(z, -40.0, 40.0)
    le = _log_erfc_pos(np.abs(z) / _SQRT2)
    out: Arr = np.where(z >= 0, math.log(0.5) + le, np.log1p(-0.5 * np.exp(le)))
    return out


def _phi(z: Arr) -> Arr:
    """P(Z <= z), vectorised."""
    z = np.clip(z, -40.0, 40.0)
    half = 0.5 * np.exp(_log_erfc_pos(np.abs(z) / _SQRT2))
    out: Arr = np.where(z >= 0, 1.0 - half, half)
    return out


def _log1mexp(d: Arr) -> Arr:
    """log(1 − e^d) for d <= 0."""
    d = np.minimum(d, -1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: Arr = np.where(d > -0.6931, np.log(-np.expm1(d)), np.log1p(-np.exp(np.minimum(d, -0.6931))))
    return out


def _log_interval(zl: Arr, zh: Arr) -> Arr:
    """log(Φ(zh) − Φ(zl)) for zl < zh, without cancellation in either tail."""
    lq_l, lq_h = _log_q(zl), _log_q(zh)
    lp_l, lp_h = _log_q(-zl), _log_q(-zh)
    upper = lq_l + _log1mexp(lq_h - lq_l)  # both above 0: Q(zl) − Q(zh)
    lower = lp_h + _log1mexp(lp_l - lp_h)  # both below 0: Φ(zh) − Φ(zl)
    with np.errstate(divide="ignore", invalid="ignore"):
        middle = np.log1p(-np.minimum(np.exp(lq_h) + np.exp(lp_l), 1.0))
    out: Arr = np.where(zl >= 0, upper, np.where(zh <= 0, lower, middle))
    return np.maximum(out, -700.0)


def _outlier_prob(lo: float, hi: float) -> float:
    """Probability of (lo, hi] under the broad log-uniform outlier distribution."""
    a = _OUT_LO if lo <= 0 else min(max(math.log(lo), _OUT_LO), _OUT_HI)
    b = _OUT_HI if math.isinf(hi) else min(max(math.log(hi), _OUT_LO), _OUT_HI)
    return max(b - a, 1e-9) / (_OUT_HI - _OUT_LO)


def _log_lik(lo: float, hi: float) -> Arr:
    """Log-likelihood over the grid of "done within (lo, hi]" (``hi = inf``: still running at ``lo``)."""
    g = _grid()
    zl = (math.log(lo) - g.mu) / g.sigma if lo > 0 else np.full(g.mu.shape, -40.0)
    if math.isinf(hi):
        ll = _log_q(zl)
    else:
        ll = _log_interval(zl, (math.log(hi) - g.mu) / g.sigma)
    out: Arr = np.logaddexp(math.log1p(-_OUTLIER) + ll, math.log(_OUTLIER * _outlier_prob(lo, hi)))
    return out


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
class _Fit:
    median: float  # posterior median of the service time (exp of the mean log median)
    sigma: float  # posterior mean sigma
    sd_mu: float  # posterior sd of the log median
    n: int  # finished tasks in the data
    pred_median: float  # median of the posterior predictive
    t: Arr  # scheduling grid (ages)
    F: Arr  # predictive CDF on the grid
    M: Arr  # predictive partial mean ∫_0^t s dF(s)
    W: Arr  # cost-to-go (unnormalised) after a not-done poll at t[i]
    lam: Arr  # the cost of a poll at t[i], in seconds of lag
    exp_lag: float  # expected lag of a fresh task under this plan
    exp_polls: float
    mu_k: Arr
    sg_k: Arr
    w_k: Arr


@dataclass
class _Obs:
    sub: float  # submit time (clock)
    tie: float  # random tie-break between tasks submitted at the same instant
    lo: float
    hi: float
    ll: Arr


@dataclass
class _TaskState:
    key: _Key
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


class _Key:
    """Observations, posterior and waiters of one req_key."""

    def __init__(self, req_key: str, window: int, catalog_weight: float = _CATALOG_WEIGHT) -> None:
        from ._catalog import get_capability

        g = _grid()
        self.req_key = req_key
        span = _MU_HI - _MU_LO
        dens = np.full(g.mu.shape, (1.0 - catalog_weight) / span)
        cap = get_capability(req_key)
        if cap is not None and catalog_weight > 0:
            m0 = math.log(max(cap.service_time[0], 0.05))
            dens = dens + catalog_weight * np.exp(-0.5 * ((g.mu - m0) / _CATALOG_SD) ** 2) / (
                _CATALOG_SD * math.sqrt(2 * math.pi))
        else:
            dens = np.full(g.mu.shape, 1.0 / span)
        self.prior: Arr = np.log(dens) + g.prior_sigma
        self.done: list[_Obs] = []  # finished tasks, by submit time
        self.n_done = 0  # finished tasks in the last fit's data
        self.window = window
        self.running: dict[int, tuple[float, float, float]] = {}  # id(state) -> (submit, tie, not-done age)
        self.inflight: dict[int, float] = {}  # id(state) -> clock() when its poll in flight started
        self.fit_cost = 0.0  # seconds a refit takes (moving average)
        self.refit_pending = False
        self.surv: dict[int, Arr] = {}  # log-age bin -> log survival over the grid
        self.dirty = True
        self.fit: _Fit | None = None
        self.fitted_at = -math.inf
        self.waiters: set[asyncio.Future[bool]] = set()
        self.lam_scale = 1.0
        self.latency = 0.0  # moving average of planned poll → its reply, seconds

    @property
    def cold(self) -> bool:
        """No task of this key seen done yet."""
        return not self.done

    def add_done(self, sub: float, lo: float, hi: float, tie: float | None = None) -> None:
        """A task submitted at ``sub`` was seen done within ``(lo, hi]`` seconds."""
        obs = _Obs(sub, random.random() if tie is None else tie, lo, hi, _log_lik(lo, hi))
        bisect.insort(self.done, obs, key=lambda o: (o.sub, o.tie))
        if len(self.done) > self.window:
            del self.done[0]  # only the ``window`` most recently submitted tasks can be used
        self.dirty = True

    def _survival(self, age: float) -> Arr:
        b = int(math.floor(math.log(age) / 0.01))
        row = self.surv.pop(b, None)
        if row is None:
            row = _log_lik(math.exp(b * 0.01), math.inf)
        self.surv[b] = row  # most recently used last
        while len(self.surv) > _SURV_CACHE:
            self.surv.pop(next(iter(self.surv)))
        return row

    def log_posterior(self) -> Arr:
        """Prior + the ``window`` most recently *submitted* tasks, finished or running.

        Windowing by submit time, not by finish, keeps the sample unbiased: the last tasks to finish of a
        batch are its slowest, and running tasks alone are the slow part of the tasks in flight.
        """
        order = [(o.sub, o.tie) for o in self.done] + [(sub, tie) for sub, tie, _ in self.running.values()]
        cutoff = (-math.inf, 0.0)
        if len(order) > self.window:
            cutoff = sorted(order)[-self.window]
        used = [o.ll for o in self.done if (o.sub, o.tie) >= cutoff]
        self.n_done = len(used)
        lp: Arr = self.prior + np.sum(used, axis=0) if used else self.prior.copy()
        for sub, tie, age in self.running.values():
            if age > 0 and (sub, tie) >= cutoff:
                lp = lp + self._survival(age)
        return lp


def _components(w: Arr, sd_mu: float) -> tuple[Arr, Arr, Arr]:
    """The posterior as a small mixture for the predictive: a broad posterior is coarsened along the
    median axis (blocks narrower than a quarter of its spread, each at its weighted mean), negligible
    cells are dropped. Unbiased, unlike keeping the heaviest cells of a nearly flat posterior."""
    g = _grid()
    n_sigma = len(_SIGMAS)
    W = w.reshape(-1, n_sigma)
    MU = g.mu.reshape(-1, n_sigma)
    stride = max(1, int(sd_mu / (4 * _MU_STEP)))
    while (W.shape[0] // stride) * n_sigma > _MAX_COMPONENTS and stride < W.shape[0]:
        stride += 1
    if stride > 1:
        n = -(-W.shape[0] // stride) * stride
        pad = n - W.shape[0]
        Wp = np.pad(W, ((0, pad), (0, 0))).reshape(-1, stride, n_sigma)
        MUp = np.pad(MU, ((0, pad), (0, 0)), mode="edge").reshape(-1, stride, n_sigma)
        Wb = Wp.sum(axis=1)
        MUb = (Wp * MUp).sum(axis=1) / np.maximum(Wb, 1e-300)
        W, MU = Wb, MUb
    SG = np.broadcast_to(_SIGMAS, W.shape)
    flat = W.ravel()
    keep = flat > flat.max() * 1e-5
    out_w = flat[keep]
    return MU.ravel()[keep].astype(np.float64), SG.ravel()[keep].astype(np.float64), out_w / out_w.sum()


def _lognormal_cdf_mean(t: Arr, mu: Arr, sg: Arr, w: Arr) -> tuple[Arr, Arr]:
    """Mixture CDF F(t) and partial mean ∫_0^t s dF(s) on ``t`` (components ``mu``, ``sg``, weights ``w``)."""
    z = (np.log(t)[:, None] - mu[None, :]) / sg[None, :]
    F: Arr = _phi(z) @ w
    M: Arr = _phi(z - sg[None, :]) @ (w * np.exp(mu + 0.5 * sg * sg))
    return F, M


def _dp(t: Arr, F: Arr, M: Arr, lam: Arr) -> tuple[Arr, Arr, Arr, npt.NDArray[np.intp]]:
    """Optimal polls on grid ``t``: after a not-done poll at ``t[i]`` poll next at ``t[nxt[i]]``.

    A poll at ``t[j]`` costs ``lam[j]`` and, after one at ``t[i]``, adds the lag ``∫_{t_i}^{t_j} (t_j − s) dF(s)``.
    ``W[i]`` is the expected cost (lag + λ·polls) still to come, times P(not done at t[i]); ``L[i]`` and ``P[i]``
    are its lag and poll parts.
    """
    G = len(t)
    S = 1.0 - F
    W = np.zeros(G)
    L = np.zeros(G)
    P = np.zeros(G)
    nxt = np.full(G, G - 1, dtype=np.intp)
    for i in range(G - 2, -1, -1):
        lag = t[i + 1:] * (F[i + 1:] - F[i]) - (M[i + 1:] - M[i])
        c = lam[i + 1:] * S[i] + lag + W[i + 1:]
        k = int(np.argmin(c))
        j = i + 1 + k
        W[i] = c[k]
        L[i] = lag[k] + L[j]
        P[i] = S[i] + P[j]
        nxt[i] = j
    return W, L, P, nxt


def _fresh(t: Arr, F: Arr, M: Arr, W: Arr, L: Arr, P: Arr, lam: Arr) -> tuple[float, float]:
    """Expected (lag, polls) of a fresh task under the plan."""
    lag = t * F - M
    j = int(np.argmin(lam + lag + W))
    return max(0.0, float(lag[j] + L[j])), 1.0 + float(P[j])


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
    * ``clock`` — must be the clock of ``task.submitted_monotonic`` (``time.monotonic``).
    """

    lag_fraction: float = 0.11
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
    clock: Callable[[], float] = time.monotonic
    _keys: dict[str, _Key] = field(default_factory=dict, init=False, repr=False)
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
            if key.cold:  # the others of a fresh batch wait for this answer: they should know at once
                self._refit(key, notify=False)
                _wake(key)
        elif status == "done":
            key.running.pop(id(st), None)
            was_cold = key.cold
            lo, hi = st.last_notdone, max(now_age, st.last_notdone + 1e-6)
            key.add_done(st.submitted, lo, hi, st.tie)
            if was_cold:
                self._refit(key, notify=True)
                _wake(key)
            elif len(key.done) <= 30:  # while learning, every finished task counts at once
                self._request_refit(key)
            task_id = getattr(task, "task_id", None)
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

    def _key(self, req_key: str) -> _Key:
        key = self._keys.get(req_key)
        if key is None:
            key = self._keys[req_key] = _Key(req_key, self.window, self.catalog_weight)
        return key

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
            known = sub is not None and getattr(task, "submitted_at", 0.0) is not None
            task_id = getattr(task, "task_id", None)
            st = _TaskState(key=self._key(task.req_key), task_id=task_id if isinstance(task_id, str) else None,
                            submitted=sub if sub is not None and known else self.clock(), known_age=known)
            try:
                st.ref = weakref.ref(task)
            except TypeError:  # not weak-referenceable: keep it until forget()
                st.ref = lambda task=task: task  # type: ignore[misc]
            self._tasks[id(task)] = st
        return st

    def _age(self, st: _TaskState) -> float:
        return max(0.0, self.clock() - st.submitted)

    def _current(self, key: _Key) -> _Fit:
        """The fit with every observation so far (introspection: no throttling)."""
        if key.fit is None or key.dirty:
            self._refit(key, notify=True)
        assert key.fit is not None
        return key.fit

    def _fit(self, key: _Key) -> _Fit:
        stale = key.dirty and self.clock() - key.fitted_at >= self._refit_interval(key)
        if key.fit is None or stale:
            self._refit(key, notify=key.fit is not None)
        assert key.fit is not None
        return key.fit

    def _refit_interval(self, key: _Key) -> float:
        m = key.fit.pred_median if key.fit is not None else 1.0
        return min(2.0, max(0.02, 0.02 * m, 4.0 * key.fit_cost))

    def _request_refit(self, key: _Key) -> None:
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

    def _deferred_refit(self, key: _Key) -> None:
        key.refit_pending = False
        if key.dirty:
            self._refit(key, notify=True)

    def _refit(self, key: _Key, *, notify: bool) -> None:
        old = key.fit
        started = time.perf_counter()
        key.fit = self._compute_fit(key)
        key.fit_cost = 0.7 * key.fit_cost + 0.3 * (time.perf_counter() - started)
        key.fitted_at = self.clock()
        key.dirty = False
        if notify and old is not None and _changed(old, key.fit):
            _wake(key)

    def _compute_fit(self, key: _Key) -> _Fit:
        g = _grid()
        lp = key.log_posterior()
        w = np.exp(lp - lp.max())
        w /= w.sum()
        mean_mu = float(w @ g.mu)
        sd_mu = math.sqrt(max(float(w @ (g.mu - mean_mu) ** 2), 0.0))
        sigma = float(w @ g.sigma)
        mu_k, sg_k, w_k = _components(w, sd_mu)
        main = w_k > w_k.max() * 1e-3
        t_lo = max(0.02, float(np.min(np.exp(mu_k[main] - 4.0 * sg_k[main]))))
        t_hi = min(6 * 3600.0, float(np.max(np.exp(mu_k[main] + 4.0 * sg_k[main]))))
        t_hi = max(t_hi, t_lo * 1.5)
        t = np.exp(np.linspace(math.log(t_lo), math.log(t_hi), _G))
        F, M = _lognormal_cdf_mean(t, mu_k, sg_k, w_k)
        F = np.maximum.accumulate(np.clip(F, 0.0, 1.0))
        pred_median = float(np.interp(0.5, F, t)) if F[-1] > 0.5 else float(t[-1])
        lam_median = float(self._lam(np.array([pred_median]), sigma)[0])
        if key.cold:
            # nothing seen done yet, the scale is unknown: price a poll at age t as if the median were t (at
            # most as at the current estimate), at a discount: what it teaches pays off for every later task
            lam = _COLD_PRICE * np.minimum(self._lam(t, sigma), lam_median)
        else:
            lam = np.full(_G, key.lam_scale * lam_median)
        W, L, P, _ = _dp(t, F, M, lam)
        lag, polls = _fresh(t, F, M, W, L, P, lam)
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
                W, L, P, _ = _dp(t, F, M, lam)
                lag, polls = _fresh(t, F, M, W, L, P, lam)
        return _Fit(median=math.exp(mean_mu), sigma=sigma, sd_mu=sd_mu, n=key.n_done, pred_median=pred_median,
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

    def _plan(self, fit: _Fit, a0: float, age: float) -> float | None:
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
        deadline = getattr(task, "deadline", None) or self.deadline
        if isinstance(deadline, (int, float)) and deadline > 0:
            final = deadline - min(1.0, 0.02 * deadline)
            if age < final < target:
                target = final
        return target

    def _jit(self) -> float:
        return 1.0 + self.rng.uniform(-self.jitter, self.jitter) if self.jitter > 0 else 1.0

    def _est_lag(self, key: _Key, lo: float, hi: float) -> float:
        fit = key.fit or self._fit(key)
        F, M = _lognormal_cdf_mean(np.array([max(lo, 1e-6), hi]), fit.mu_k, fit.sg_k, fit.w_k)
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
        key.waiters.add(fut)
        try:
            return await fut
        finally:
            handle.cancel()
            key.waiters.discard(fut)


def _changed(old: _Fit, new: _Fit) -> bool:
    if new.n != old.n and new.n <= 30:
        return True
    return (abs(math.log(new.pred_median / old.pred_median)) > 0.03 or abs(new.sigma - old.sigma) > 0.03
            or abs(new.sd_mu - old.sd_mu) > 0.05)


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)


def _wake(key: _Key) -> None:
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
