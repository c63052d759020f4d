"""Log-normal service times, interval-censored: the grid posterior, the predictive mixture and the
dynamic programme that places polls (the mathematics of :class:`volcnb.tasks.adaptive.AdaptivePoller`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Arr = npt.NDArray[np.float64]

# --- the parameter grid ------------------------------------------------------------------------------

MU_LO, MU_HI, MU_STEP = math.log(0.2), math.log(1800.0), 0.035  # log-uniform median 0.2 s – 30 min
SIGMAS = np.exp(np.linspace(math.log(0.04), math.log(1.6), 24))
SIGMA_PRIOR = (math.log(0.35), 0.6)  # log sigma ~ N(log 0.35, 0.6): "±35 %, give or take ×2"
OUTLIER = 0.01  # likelihood mixture weight of a broad log-uniform outlier (0.05 s – 4 h)
OUT_LO, OUT_HI = math.log(0.05), math.log(4 * 3600.0)
MAX_COMPONENTS = 300  # at most this many mixture components for the predictive (broad posteriors are coarsened)
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class Grid:
    mu: Arr
    sigma: Arr
    prior_sigma: Arr

    @staticmethod
    def build() -> Grid:
        mus = np.arange(MU_LO, MU_HI + MU_STEP / 2, MU_STEP)
        mu, sg = np.meshgrid(mus, SIGMAS, indexing="ij")
        ls = np.log(sg.ravel())
        prior_sigma = -0.5 * ((ls - SIGMA_PRIOR[0]) / SIGMA_PRIOR[1]) ** 2
        return Grid(mu.ravel().astype(np.float64), sg.ravel().astype(np.float64), prior_sigma)


_GRID_CACHE: Grid | None = None


def grid() -> Grid:
    global _GRID_CACHE
    if _GRID_CACHE is None:
        _GRID_CACHE = Grid.build()
    return _GRID_CACHE


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


def phi(z: Arr) -> Arr:
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
    a = OUT_LO if lo <= 0 else min(max(math.log(lo), OUT_LO), OUT_HI)
    b = OUT_HI if math.isinf(hi) else min(max(math.log(hi), OUT_LO), OUT_HI)
    return max(b - a, 1e-9) / (OUT_HI - OUT_LO)


def log_lik(lo: float, hi: float) -> Arr:
    """Log-likelihood over the grid of "done within (lo, hi]" (``hi = inf``: still running at ``lo``)."""
    g = grid()
    zl = (math.log(lo) - g.mu) / g.sigma if lo > 0 else np.full(g.mu.shape, -40.0)
    if math.isinf(hi):
        ll = _log_q(zl)
    else:
        ll = _log_interval(zl, (math.log(hi) - g.mu) / g.sigma)
    out: Arr = np.logaddexp(math.log1p(-OUTLIER) + ll, math.log(OUTLIER * _outlier_prob(lo, hi)))
    return out


def components(w: Arr, sd_mu: float) -> tuple[Arr, Arr, Arr]:
    """The posterior as a small mixture for the predictive: a broad posterior is coarsened along the
    median axis (blocks narrower than a quarter of its spread, each at its weighted mean), negligible
    cells are dropped. Unbiased, unlike keeping the heaviest cells of a nearly flat posterior."""
    g = grid()
    n_sigma = len(SIGMAS)
    W = w.reshape(-1, n_sigma)
    MU = g.mu.reshape(-1, n_sigma)
    stride = max(1, int(sd_mu / (4 * MU_STEP)))
    while (W.shape[0] // stride) * n_sigma > MAX_COMPONENTS and stride < W.shape[0]:
        stride += 1
    if stride > 1:
        n = -(-W.shape[0] // stride) * stride
        pad = n - W.shape[0]
        Wp = np.pad(W, ((0, pad), (0, 0))).reshape(-1, stride, n_sigma)
        MUp = np.pad(MU, ((0, pad), (0, 0)), mode="edge").reshape(-1, stride, n_sigma)
        Wb = Wp.sum(axis=1)
        MUb = (Wp * MUp).sum(axis=1) / np.maximum(Wb, 1e-300)
        W, MU = Wb, MUb
    SG = np.broadcast_to(SIGMAS, W.shape)
    flat = W.ravel()
    keep = flat > flat.max() * 1e-5
    out_w = flat[keep]
    return MU.ravel()[keep].astype(np.float64), SG.ravel()[keep].astype(np.float64), out_w / out_w.sum()


def lognormal_cdf_mean(t: Arr, mu: Arr, sg: Arr, w: Arr) -> tuple[Arr, Arr]:
    """Mixture CDF F(t) and partial mean ∫_0^t s dF(s) on ``t`` (components ``mu``, ``sg``, weights ``w``)."""
    z = (np.log(t)[:, None] - mu[None, :]) / sg[None, :]
    F: Arr = phi(z) @ w
    M: Arr = phi(z - sg[None, :]) @ (w * np.exp(mu + 0.5 * sg * sg))
    return F, M


def dp(t: Arr, F: Arr, M: Arr, lam: Arr) -> tuple[Arr, Arr, Arr, npt.NDArray[np.intp]]:
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


def fresh(t: Arr, F: Arr, M: Arr, W: Arr, L: Arr, P: Arr, lam: Arr) -> tuple[float, float]:
    """Expected (lag, polls) of a fresh task under the plan."""
    lag = t * F - M
    j = int(np.argmin(lam + lag + W))
    return max(0.0, float(lag[j] + L[j])), 1.0 + float(P[j])


