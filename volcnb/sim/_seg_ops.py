"""Small numpy image-processing helpers of the segmentation: box filters, blur, morphology, labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

F64 = NDArray[np.float64]
FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int32]


#: Longest side (pixels) of the working copy the saliency analysis runs on.
WORK_SIDE = 256

_MIN_SIDE = 16  # the working copy is at least this big on both sides
_RING_THIN = 0.012  # ring widths, as fractions of the working copy's shorter side
_RING_THICK = 0.04
_LOCALITY = 35.0  # Lab units of penalty for a ring segment one image diagonal farther away
_SAL_WEIGHT = 4.0  # weight of the saliency against the colour likelihood ratio
_NOISE_K = 2.0  # background distances are divided by this many ring noise levels
_DOMINANT = 0.15  # saliency_seg keeps components with at least this share of the largest one's area



@dataclass(frozen=True)
class Segmentation:
    """One segmented subject (or entity) at the original image resolution.

    Attributes:
        mask: ``bool`` array ``(H, W)``; ``True`` marks subject pixels.
        soft: ``float32`` array ``(H, W)`` in ``[0, 1]``, the alpha matte for cut-outs;
            ``soft >= 0.5`` is exactly ``mask``.
        bbox: ``(x1, y1, x2, y2)`` in original pixels; ``x1``/``y1`` inclusive,
            ``x2``/``y2`` **exclusive** (``x2 - x1`` is the width).  ``(0, 0, 0, 0)``
            when the mask is empty.
        contours: outer boundary polygons (see :func:`mask_contours`), each a list of
            ``[x, y]`` integer points in original pixel coordinates.
        score: confidence in ``[0, 1]`` (the service's ``seg_score``): how clearly the
            subject stands out from the background model.
    """

    mask: BoolArray
    soft: FloatArray
    bbox: tuple[int, int, int, int]
    contours: list[list[list[int]]]
    score: float



# ----------------------------------------------------------------------------
# small numpy image-processing helpers
# ----------------------------------------------------------------------------


def _box_sum_axis(a: F64, r: int, axis: int) -> F64:
    """Sum over the window ``[i - r, i + r]`` (clipped to the array) along ``axis``.

    With ``C`` the cumulative sum padded by a leading zero, the window sum is
    ``C[min(i + r + 1, n)] - C[max(i - r, 0)]``; both terms are contiguous slices.
    """
    n = a.shape[axis]

    def sl(start: int, stop: int) -> tuple[slice, ...]:
        return (slice(None),) * axis + (slice(start, stop),)

    shape = list(a.shape)
    shape[axis] = n + 1
    c = np.empty(shape, dtype=np.float64)
    c[sl(0, 1)] = 0.0
    np.cumsum(a, axis=axis, out=c[sl(1, n + 1)])
    out = np.empty(a.shape, dtype=np.float64)
    k1 = max(0, n - r - 1)
    out[sl(0, k1)] = c[sl(r + 1, n)]
    out[sl(k1, n)] = c[sl(n, n + 1)]
    k2 = min(r, n)
    out[sl(k2, n)] -= c[sl(0, n - k2)]
    return out


def _box_mean(a: NDArray[np.floating] | BoolArray, r: int) -> F64:
    """Mean over a ``(2r+1)``-square window (clipped at the borders) of a 2-D or 3-D array."""
    x = np.asarray(a, dtype=np.float64)
    if r <= 0:
        result: F64 = x.copy()
        return result
    h, w = x.shape[:2]
    s = _box_sum_axis(_box_sum_axis(x, r, 0), r, 1)
    rows = np.minimum(np.arange(h) + r + 1, h) - np.maximum(np.arange(h) - r, 0)
    cols = np.minimum(np.arange(w) + r + 1, w) - np.maximum(np.arange(w) - r, 0)
    cnt = np.outer(rows, cols).astype(np.float64)
    out: F64 = s / (cnt[:, :, None] if x.ndim == 3 else cnt)
    return out


def _blur(a: NDArray[np.floating], sigma: float) -> F64:
    """Approximate Gaussian blur: three box passes with the variance of ``sigma**2``."""
    x = np.asarray(a, dtype=np.float64)
    if sigma <= 0.3:
        result: F64 = x.copy()
        return result
    r = max(1, round((np.sqrt(1 + 4 * sigma * sigma) - 1) / 2))  # 3 boxes: var = r(r+1)
    for _ in range(3):
        x = _box_mean(x, r)
    return x


def _dilate(m: BoolArray, r: int) -> BoolArray:
    if r <= 0:
        result: BoolArray = m.copy()
        return result
    out: BoolArray = _box_mean(m, r) > 1e-9
    return out


def _erode(m: BoolArray, r: int) -> BoolArray:
    if r <= 0:
        result: BoolArray = m.copy()
        return result
    out: BoolArray = _box_mean(m, r) > 1 - 1e-9
    return out


def _open(m: BoolArray, r: int) -> BoolArray:
    return _dilate(_erode(m, r), r)


def _close(m: BoolArray, r: int) -> BoolArray:
    if r <= 0:
        result: BoolArray = m.copy()
        return result
    p = np.pad(m, r, mode="edge")  # so that closing does not erode at the image border
    out: BoolArray = _erode(_dilate(p, r), r)[r:-r, r:-r]
    return out


def _label(mask: BoolArray, *, eight: bool = True) -> tuple[IntArray, int]:
    """Connected-component labelling by run-length union-find.

    Returns ``(labels, n)``: ``labels`` is 0 off the mask and ``1..n`` on its components.
    """
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    if not mask.any():
        return labels, 0
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    sr, sc = np.nonzero(d == 1)  # run starts (row-major order)
    _, ec = np.nonzero(d == -1)  # run ends, exclusive
    n_runs = len(sr)
    parent = list(range(n_runs))

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    rs = np.searchsorted(sr, np.arange(h + 1)).tolist()
    starts = sc.tolist()
    ends = ec.tolist()
    slack = 1 if eight else 0
    for y in range(1, h):
        i, i_end = rs[y - 1], rs[y]
        j, j_end = rs[y], rs[y + 1]
        while i < i_end and j < j_end:
            if starts[i] < ends[j] + slack and starts[j] < ends[i] + slack:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
            if ends[i] < ends[j]:
                i += 1
            else:
                j += 1
    roots = np.array([find(i) for i in range(n_runs)], dtype=np.int64)
    uniq, run_label = np.unique(roots, return_inverse=True)
    lengths = ec - sc
    offs = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    labels[np.repeat(sr, lengths), np.repeat(sc, lengths) + offs] = np.repeat(run_label.astype(np.int32) + 1, lengths)
    return labels, len(uniq)


def _fill_holes(m: BoolArray) -> BoolArray:
    """Fill the background regions (4-connected) that do not touch the image border."""
    lab, n = _label(~m, eight=False)
    if n == 0 or not m.any():
        result: BoolArray = m.copy()
        return result
    outside = np.zeros(n + 1, dtype=bool)
    outside[np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])] = True
    outside[0] = False  # label 0 is the mask itself
    out: BoolArray = ~outside[lab]
    return out


def _otsu(values: NDArray[np.floating]) -> float:
    """Otsu's threshold of a set of values (256-bin histogram)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return 0.0
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-12:
        return hi
    hist, edges = np.histogram(v, bins=256, range=(lo, hi))
    p = hist.astype(np.float64) / hist.sum()
    omega = np.cumsum(p)
    mu = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)
    denom = omega * (1 - omega)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.where(denom > 1e-12, (mu[-1] * omega - mu) ** 2 / denom, 0.0)
    return float(edges[int(np.argmax(between)) + 1])


def _matmul(x: F64, m: F64) -> F64:
    """``x @ m`` over the last axis of ``x`` for a small ``m``, without BLAS.

    Multi-threaded BLAS is slow for these tall-and-thin products on a busy machine
    (its threads spin); a few element-wise passes are fast and predictable.
    """
    out: F64 = x[..., 0, None] * m[0]
    for i in range(1, m.shape[0]):
        out = out + x[..., i, None] * m[i]
    return out


def _srgb_to_lab(rgb: NDArray[np.floating]) -> F64:
    """sRGB in ``[0, 1]`` -> CIE Lab (D65)."""
    c = np.asarray(rgb, dtype=np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = _matmul(lin, m.T) / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    lab: F64 = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


def _resize_float(a: NDArray[np.floating], size: tuple[int, int]) -> FloatArray:
    """Bilinear resize of a 2-D float array to ``size = (width, height)``."""
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
    out: FloatArray = np.asarray(im.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    return out


def _sq_dists(x: F64, c: F64) -> F64:
    """Squared Euclidean distances between the rows of ``x`` (N, 3) and ``c`` (K, 3) -> (N, K)."""
    d = (x * x).sum(1)[:, None] - 2.0 * _matmul(x, c.T) + (c * c).sum(1)[None, :]
    out: F64 = np.maximum(d, 0.0)
    return out


def _nearest(x: F64, c: F64) -> F64:
    """Distance from each row of ``x`` to its nearest row of ``c``."""
    out: F64 = np.sqrt(_sq_dists(x, c).min(1))
    return out


def _min_dist(lab: F64, centres: F64) -> F64:
    """Per-pixel distance from an ``(H, W, 3)`` image to its nearest centre.

    One centre at a time with preallocated float32 buffers: much faster than an
    ``(N, K)`` distance matrix for images.
    """
    ch = [np.ascontiguousarray(lab[..., i], dtype=np.float32) for i in range(3)]
    best = np.full(ch[0].shape, np.inf, dtype=np.float32)
    t1 = np.empty_like(best)
    t2 = np.empty_like(best)
    for c in np.asarray(centres, dtype=np.float32):
        np.subtract(ch[0], c[0], out=t1)
        np.multiply(t1, t1, out=t1)
        for i in (1, 2):
            np.subtract(ch[i], c[i], out=t2)
            np.multiply(t2, t2, out=t2)
            np.add(t1, t2, out=t1)
        np.minimum(best, t1, out=best)
    out: F64 = np.sqrt(best).astype(np.float64)
    return out


def _kmeans(x: F64, k: int, iters: int = 8) -> F64:
    """Deterministic k-means (initial centres spread along the lightness ordering)."""
    n = len(x)
    k = min(k, n)
    order = np.argsort(x[:, 0] * 1e4 + x[:, 1] * 10 + x[:, 2], kind="stable")
    centres: F64 = x[order[np.linspace(0, n - 1, k).astype(int)]].copy()
    for _ in range(iters):
        a = np.argmin(_sq_dists(x, centres), axis=1)
        cnt = np.bincount(a, minlength=k).astype(np.float64)
        ok = cnt > 0
        for ch in range(3):
            centres[ok, ch] = np.bincount(a, weights=x[:, ch], minlength=k)[ok] / cnt[ok]
    return centres


def _subsample(pts: F64, n: int) -> F64:
    """Every k-th row so that about ``n`` remain (deterministic)."""
    out: F64 = pts[:: max(1, len(pts) // n)]
    return out


