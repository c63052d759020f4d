"""Per-req_key state of the adaptive poller: finished and running tasks, the grid posterior over them,
and the persisted model a new process starts from (see :class:`volcnb.tasks.adaptive.AdaptivePoller`)."""

from __future__ import annotations

import asyncio
import bisect
import math
from dataclasses import dataclass

import numpy as np

from ..protocol.catalog import get_capability
from .lognormal import MU_HI, MU_LO, Arr, grid, log_lik

__all__ = ["Fit", "KeyState", "Obs"]

_CATALOG_SD = 1.0  # the catalog's median: a bump of ±×e
_SURV_CACHE = 512  # cached log-survival rows (running tasks' "not done by age a")

@dataclass
class Fit:
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
class Obs:
    sub: float  # submit time (clock)
    tie: float  # random tie-break between tasks submitted at the same instant
    lo: float
    hi: float
    ll: Arr



class KeyState:
    """Observations, posterior and waiters of one req_key."""

    def __init__(self, req_key: str, window: int, catalog_weight: float) -> None:
        g = grid()
        self.req_key = req_key
        span = MU_HI - MU_LO
        dens = np.full(g.mu.shape, (1.0 - catalog_weight) / span)
        cap = get_capability(req_key)
        if cap is not None and catalog_weight > 0:
            m0 = math.log(max(cap.service_time[0], 0.05))
            dens = dens + catalog_weight * np.exp(-0.5 * ((g.mu - m0) / _CATALOG_SD) ** 2) / (
                _CATALOG_SD * math.sqrt(2 * math.pi))
        else:
            dens = np.full(g.mu.shape, 1.0 / span)
        self.prior: Arr = np.log(dens) + g.prior_sigma
        self.done: list[Obs] = []  # finished tasks, by submit time
        self.n_done = 0  # finished tasks in the last fit's data
        self.window = window
        self.running: dict[int, tuple[float, float, float]] = {}  # id(state) -> (submit, tie, not-done age)
        self.inflight: dict[int, float] = {}  # id(state) -> clock() when its poll in flight started
        self.fit_cost = 0.0  # seconds a refit takes (moving average)
        self.refit_pending = False
        self.surv: dict[int, Arr] = {}  # log-age bin -> log survival over the grid
        self.dirty = True
        self.fit: Fit | None = None
        self.fitted_at = -math.inf
        self.waiters: dict[asyncio.Future[bool], None] = {}  # in wait order (a set would wake by address)
        self.warm: list[Arr] = []  # persisted finished tasks' log-likelihoods (× their weight), oldest first
        self.warm_obs: list[tuple[float, float]] = []
        self.warm_cdf: tuple[Arr, Arr] | None = None  # the persisted model's predictive (t, F)
        self.first_poll_logp: float | None = 0.0  # log P(every own task so far done at its 1st poll), warm
        self.lam_scale = 1.0
        self.latency = 0.0  # moving average of planned poll → its reply, seconds

    @property
    def cold(self) -> bool:
        """No task of this key seen done yet, and no persisted model."""
        return not self.done and not self.warm

    def add_done(self, sub: float, lo: float, hi: float, tie: float) -> None:
        """A task submitted at ``sub`` was seen done within ``(lo, hi]`` seconds."""
        obs = Obs(sub, tie, lo, hi, log_lik(lo, hi))
        bisect.insort(self.done, obs, key=lambda o: (o.sub, o.tie))
        if len(self.done) > self.window:
            del self.done[0]  # only the ``window`` most recently submitted tasks can be used
        self.dirty = True

    def _survival(self, age: float) -> Arr:
        b = int(math.floor(math.log(age) / 0.01))
        row = self.surv.pop(b, None)
        if row is None:
            row = log_lik(math.exp(b * 0.01), math.inf)
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
        used += self.warm[len(self.warm) - max(0, self.window - len(used)):]  # the newest persisted ones
        self.n_done = len(used)
        lp: Arr = self.prior + np.sum(used, axis=0) if used else self.prior.copy()
        for sub, tie, age in self.running.values():
            if age > 0 and (sub, tie) >= cutoff:
                lp = lp + self._survival(age)
        return lp


