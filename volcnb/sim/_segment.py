"""Salient-subject and entity segmentation for the simulator (pure functions, no I/O).

This is the *real* algorithm behind the simulated ``saliency_seg`` (主体分割) and
``entity_seg`` (智能分割) capabilities: a classical, training-free pipeline on numpy
and Pillow (plus contourpy for the contours).  It is deterministic.

1. **Working copy.**  The image is converted to RGB and box-downscaled so that its
   longest side is :data:`WORK_SIDE` pixels (tiny images are upscaled to at least
   16 pixels a side), lightly blurred and converted to CIE Lab.
2. **Background ring** (boundary prior).  On a thin outer ring, a whole side whose
   colours the other three sides do not explain is dropped (a subject touching that
   side).  The top and the upper 60 % of the left/right sides form the *anchor*; if
   the bottom edge is mostly unexplained by the anchor (a subject cut by the bottom
   edge, like a portrait's torso), the bottom is left out, and so are the pixels of
   the lower sides that have the dominant colours of the bottom's middle part.  The
   kept ring is then thickened where the thicker strip has the same colours.
3. **Background distance** of every pixel, the minimum of

   * the distance to the colour palette of the ring, preferring *nearby* ring
     segments (16 segments with 8 k-means colours each, plus a penalty growing with
     how much farther a segment is than the nearest one): explains flat, noisy,
     striped and checkered backgrounds and linear gradients;
   * the residual against a robust quadratic colour model ``Lab(x, y)`` fitted to the
     ring: explains smooth gradients whose centre colour never reaches the border;
   * when the ring itself is smooth (a studio-like backdrop): the geodesic distance
     from the ring, where a step costs only the colour change above the ring's own
     noise: explains radial / irregular gradients and vignetting;

   divided by the noise level measured on the ring.
4. **Saliency** ``1 - exp(-d**2 / 2)``, mildly modulated by a centre prior and by the
   spectral residual (Hou & Zhang 2007) of the lightness.
5. **Binarisation.**  Otsu threshold, morphological open/close, hole filling, small
   component removal; then one GrabCut-like colour step without the graph cut:
   foreground (confident, upper Otsu class) and background colour histograms give a
   per-pixel log-likelihood ratio, combined with the saliency and smoothed by a few
   mean-field iterations.
6. **Upsampling.**  Along the edge, a sub-pixel alpha is estimated on the working
   grid with a local linear colour-mixing model; the matte is upsampled bilinearly.
   ``refine_mask`` 1/2 then snap it to the full-resolution image edges with a (fast)
   guided filter, grey or colour guided.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

__all__ = [
    "WORK_SIDE",
    "entity_colour",
    "Segmentation",
    "mask_bbox",
    "mask_contours",
    "render_entity_outputs",
    "render_saliency_outputs",
    "segment_entities",
    "segment_saliency",
]

#: Longest side (pixels) of the working copy the saliency analysis runs on.
WORK_SIDE = 256

_MIN_SIDE = 16  # the working copy is at least this big on both sides
_RING_THIN = 0.012  # ring widths, as fractions of the working copy's shorter side
_RING_THICK = 0.04
_LOCALITY = 35.0  # Lab units of penalty for a ring segment one image diagonal farther away
_SAL_WEIGHT = 4.0  # weight of the saliency against the colour likelihood ratio
_NOISE_K = 2.0  # background distances are divided by this many ring noise levels
_DOMINANT = 0.15  # saliency_seg keeps components with at least this share of the largest one's area

F64 = NDArray[np.float64]
FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int32]


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
        return x.copy()
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
        return x.copy()
    r = max(1, round((np.sqrt(1 + 4 * sigma * sigma) - 1) / 2))  # 3 boxes: var = r(r+1)
    for _ in range(3):
        x = _box_mean(x, r)
    return x


def _dilate(m: BoolArray, r: int) -> BoolArray:
    if r <= 0:
        return m.copy()
    out: BoolArray = _box_mean(m, r) > 1e-9
    return out


def _erode(m: BoolArray, r: int) -> BoolArray:
    if r <= 0:
        return m.copy()
    out: BoolArray = _box_mean(m, r) > 1 - 1e-9
    return out


def _open(m: BoolArray, r: int) -> BoolArray:
    return _dilate(_erode(m, r), r)


def _close(m: BoolArray, r: int) -> BoolArray:
    if r <= 0:
        return m.copy()
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
        return m.copy()
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


# ----------------------------------------------------------------------------
# background model and saliency at working resolution
# ----------------------------------------------------------------------------


def _ring_parts(h: int, w: int, b: int) -> dict[str, BoolArray]:
    """A ``b``-pixel border ring split into top, bottom and upper/lower left and right sides."""
    split = round(0.6 * h)
    parts = {name: np.zeros((h, w), dtype=bool) for name in ("T", "B", "Lu", "Ll", "Ru", "Rl")}
    parts["T"][:b, :] = True
    parts["B"][h - b :, :] = True
    parts["Lu"][:split, :b] = True
    parts["Ll"][split:, :b] = True
    parts["Ru"][:split, w - b :] = True
    parts["Rl"][split:, w - b :] = True
    parts["Lu"] &= ~parts["T"]
    parts["Ru"] &= ~parts["T"]
    parts["Ll"] &= ~parts["B"]
    parts["Rl"] &= ~parts["B"]
    return parts


def _thin_ring(lab: F64, b: int) -> BoolArray:
    """Select the parts of a ``b``-pixel border ring that look like background.

    1. A whole side whose colours are not found on the other three sides is dropped.
    2. The top and the upper parts of the kept left/right sides form the anchor.  If
       most of the bottom edge is unexplained by the anchor's colours (a subject cut
       by the bottom edge), the bottom is dropped, and so are the pixels of the lower
       left/right parts that have the dominant colours of the middle 70 % of the
       bottom edge and are unexplained by the anchor (the subject usually reaches the
       lower corners too).  Otherwise
       a lower part is kept when the anchor explains most of it.
    """
    h, w, _ = lab.shape
    parts = _ring_parts(h, w, b)
    sides = {"T": parts["T"], "B": parts["B"], "L": parts["Lu"] | parts["Ll"], "R": parts["Ru"] | parts["Rl"]}
    samples = {k: _subsample(lab[v], 600) for k, v in sides.items()}
    div: dict[str, float] = {}
    for k in sides:
        others = np.concatenate([samples[j] for j in sides if j != k])
        div[k] = float(np.median(_nearest(samples[k], _kmeans(others, 24, iters=4))))
    ref = float(np.median(list(div.values())))
    kept = [k for k in sides if div[k] <= max(10.0, 2.5 * ref)]
    if len(kept) < 2:
        kept = sorted(sides, key=lambda k: div[k])[:2]

    anchor = np.zeros((h, w), dtype=bool)
    for k, name in (("T", "T"), ("L", "Lu"), ("R", "Ru")):
        if k in kept:
            anchor |= parts[name]
    if anchor.sum() < 0.2 * sum(int(sides[k].sum()) for k in kept):
        ring = np.zeros((h, w), dtype=bool)
        for k in kept:
            ring |= sides[k]
        return ring

    apts = _subsample(lab[anchor], 3000)
    cent = _kmeans(apts, 32)
    limit = max(7.0, 1.5 * float(np.percentile(_nearest(apts, cent), 90)))
    d_anchor = _min_dist(lab, cent)
    ring = anchor.copy()
    unexplained_bottom = parts["B"] & (d_anchor > limit)
    cut: F64 | None = None
    middle = np.zeros((h, w), dtype=bool)
    middle[:, round(0.15 * w) : round(0.85 * w)] = True  # the subject's colours, not the corners'
    if unexplained_bottom.sum() > 0.3 * parts["B"].sum() and (unexplained_bottom & middle).sum() >= 8:
        bp = _subsample(lab[unexplained_bottom & middle], 1500)
        bc = _kmeans(bp, 8)
        share = np.bincount(np.argmin(_sq_dists(bp, bc), axis=1), minlength=len(bc)) / len(bp)
        cut = bc[share >= 0.08]
    d_cut = _min_dist(lab, cut) if cut is not None else None
    for k, name in (("L", "Ll"), ("R", "Rl"), ("B", "B")):
        if k not in kept:
            continue
        part = parts[name]
        if d_cut is None:
            if float(np.median(d_anchor[part])) <= limit:
                ring |= part
        elif name != "B":
            ring |= part & ~((d_anchor > limit) & (d_cut <= limit))
    return ring


def _background_ring(lab: F64) -> BoolArray:
    """The background part of the border ring, selected thin and then thickened.

    The selection (:func:`_thin_ring`) runs on a thin outer ring so that a subject
    nearly filling the frame is not taken for background.  Each kept part is then
    widened to the thick ring: entirely when the thicker strip has the same colours
    (80 % explained), otherwise only by its explained pixels.
    """
    h, w, _ = lab.shape
    b_thin = max(2, round(_RING_THIN * min(h, w)))
    b_thick = max(b_thin, round(_RING_THICK * min(h, w)))
    thin = _thin_ring(lab, b_thin)
    if b_thick <= b_thin or thin.sum() < 8:
        return thin
    pts = _subsample(lab[thin], 3000)
    cent = _kmeans(pts, 32)
    limit = max(6.0, float(np.percentile(_nearest(pts, cent), 90)))
    d = _min_dist(lab, cent)
    out = thin.copy()
    thin_parts = _ring_parts(h, w, b_thin)
    for name, thick_part in _ring_parts(h, w, b_thick).items():
        if (thin & thin_parts[name]).sum() < 0.5 * thin_parts[name].sum():
            continue
        extra = thick_part & ~thin_parts[name]
        if not extra.any():
            continue
        if float(np.percentile(d[extra], 80)) <= 1.5 * limit:
            out |= extra
        else:
            out |= extra & (d <= limit)
    return out


def _local_palette_distance(lab: F64, ring: BoolArray) -> F64:
    """Distance to the ring's colours, preferring the colours of nearby ring segments.

    The ring is cut into 16 segments (4 per side, each half of the frame deep) with an
    8-colour palette each; a pixel's distance via segment ``s`` is its colour distance
    to that palette plus :data:`_LOCALITY` times how much farther (in image diagonals)
    ``s`` is than the pixel's nearest segment.
    """
    h, w, _ = lab.shape
    diag = float(np.hypot(h, w))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dists: list[F64] = []
    spatial: list[F64] = []
    for side in range(4):
        for j in range(4):
            seg = np.zeros((h, w), dtype=bool)
            if side < 2:
                xs = slice((j * w) // 4, ((j + 1) * w) // 4)
                seg[(slice(0, h // 2) if side == 0 else slice(h // 2, h)), xs] = True
            else:
                ys = slice((j * h) // 4, ((j + 1) * h) // 4)
                seg[ys, (slice(0, w // 2) if side == 2 else slice(w // 2, w))] = True
            seg &= ring
            if seg.sum() < 8:
                continue
            dists.append(_min_dist(lab, _kmeans(_subsample(lab[seg], 400), 8, iters=5)))
            sy, sx = np.nonzero(seg)
            spatial.append(np.hypot(xx - sx.mean(), yy - sy.mean()) / diag)
    if not dists:
        return _min_dist(lab, _kmeans(_subsample(lab[ring], 3000), 32))
    sp = np.stack(spatial)
    sp -= sp.min(axis=0, keepdims=True)
    out: F64 = (np.stack(dists) + _LOCALITY * sp).min(axis=0)
    return out


def _geodesic(lab: F64, seeds: BoolArray, tau: float, rounds: int = 2) -> F64:
    """Geodesic distance from ``seeds``; a 4-neighbour step costs ``max(0, |dLab| - tau)``.

    Computed by alternating raster sweeps (rows down/up, columns right/left).
    """
    h, w, _ = lab.shape
    dv = np.maximum(np.sqrt(((lab[1:] - lab[:-1]) ** 2).sum(-1)) - tau, 0.0)
    dht = np.ascontiguousarray(np.maximum(np.sqrt(((lab[:, 1:] - lab[:, :-1]) ** 2).sum(-1)) - tau, 0.0).T)
    d = np.where(seeds, 0.0, 1e9)
    for _ in range(rounds):
        for y in range(1, h):
            np.minimum(d[y], d[y - 1] + dv[y - 1], out=d[y])
        for y in range(h - 2, -1, -1):
            np.minimum(d[y], d[y + 1] + dv[y], out=d[y])
        dt = np.ascontiguousarray(d.T)
        for x in range(1, w):
            np.minimum(dt[x], dt[x - 1] + dht[x - 1], out=dt[x])
        for x in range(w - 2, -1, -1):
            np.minimum(dt[x], dt[x + 1] + dht[x], out=dt[x])
        d = np.ascontiguousarray(dt.T)
    return d


def _background_distance(lab: F64) -> F64:
    """Residual of each pixel against the background model, in units of the ring's noise."""
    h, w, _ = lab.shape
    ring = _background_ring(lab)
    d = _local_palette_distance(lab, ring)

    # robust (Cauchy-weighted) quadratic colour model of the background
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    xn = xx / max(w - 1, 1) * 2 - 1
    yn = yy / max(h - 1, 1) * 2 - 1
    terms = np.stack([np.ones_like(xn), xn, yn, xn * xn, xn * yn, yn * yn], axis=-1)
    a_mat = _subsample(terms[ring], 3000)
    pts = _subsample(lab[ring], 3000)
    wts = np.ones(len(a_mat))
    coef = np.zeros((6, 3))
    for _ in range(3):
        aw = a_mat * wts[:, None]  # weighted normal equations (einsum: no threaded BLAS)
        coef = np.linalg.solve(np.einsum("ni,nj->ij", aw, a_mat) + 1e-9 * np.eye(6), np.einsum("ni,nj->ij", aw, pts))
        res = np.sqrt(((_matmul(a_mat, coef) - pts) ** 2).sum(1))
        scale = max(float(np.median(res)) * 1.5, 1.0)
        wts = 1.0 / (1.0 + (res / (2 * scale)) ** 2)
    d = np.minimum(d, np.sqrt(((lab - _matmul(terms, coef)) ** 2).sum(-1)))
    noise = float(np.percentile(d[ring], 90))

    # smooth backdrops: what the ring reaches without crossing an edge is background
    diffs = np.concatenate(
        [
            np.sqrt(((lab[1:] - lab[:-1]) ** 2).sum(-1))[ring[1:] & ring[:-1]],
            np.sqrt(((lab[:, 1:] - lab[:, :-1]) ** 2).sum(-1))[ring[:, 1:] & ring[:, :-1]],
        ]
    )
    if len(diffs) and float(np.percentile(diffs, 90)) < 3.0:
        seeds = ring & (d < max(2.0 * noise, 3.0))
        if seeds.any():
            d = np.minimum(d, _geodesic(lab, seeds, max(1.0, 1.5 * float(np.percentile(diffs, 75)))))

    out: F64 = d / max(noise * _NOISE_K, 6.0)
    return out


def _spectral_residual(lab: F64) -> F64:
    """Spectral-residual saliency (Hou & Zhang 2007) of the lightness channel, in ``[0, 1]``."""
    h, w, _ = lab.shape
    side = 64
    sw, sh = (side, max(8, round(side * h / w))) if w >= h else (max(8, round(side * w / h)), side)
    small = _resize_float(lab[..., 0], (sw, sh)).astype(np.float64)
    f = np.fft.fft2(small)
    log_amp = np.log(np.abs(f) + 1e-9)
    resid = log_amp - _box_mean(log_amp, 1)
    sal = _blur(np.abs(np.fft.ifft2(np.exp(resid + 1j * np.angle(f)))) ** 2, 2.5)
    sal = _resize_float(sal, (w, h)).astype(np.float64)
    sal -= sal.min()
    mx = float(sal.max())
    out: F64 = sal / mx if mx > 0 else sal
    return out


@dataclass(frozen=True)
class _Analysis:
    rgb: F64  # working-size RGB in [0, 1] (not blurred)
    lab: F64  # blurred Lab at working size
    contrast: F64  # background contrast in [0, 1]
    sal: F64  # saliency in [0, 1]
    mask: BoolArray  # cleaned binary mask (all salient components)


def _analyse(image: Image.Image) -> _Analysis:
    rgb_im = image.convert("RGB")
    w0, h0 = rgb_im.size
    scale = min(1.0, WORK_SIDE / max(w0, h0))
    ws, hs = max(_MIN_SIDE, round(w0 * scale)), max(_MIN_SIDE, round(h0 * scale))
    if (ws, hs) != (w0, h0):
        small = rgb_im.resize((ws, hs), Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR)
    else:
        small = rgb_im
    rgb_sharp = np.asarray(small, dtype=np.float64) / 255.0
    lab = _srgb_to_lab(np.asarray(small.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float64) / 255.0)
    h, w, _ = lab.shape

    bg = _background_distance(lab)
    contrast = 1.0 - np.exp(-(bg**2) / 2.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    centre = np.exp(-(((xx - (w - 1) / 2) / (0.6 * w)) ** 2 + ((yy - (h - 1) / 2) / (0.6 * h)) ** 2))
    sal = _blur(contrast * (0.75 + 0.25 * centre) * (0.85 + 0.15 * _spectral_residual(lab)), 1.0)
    sal = np.clip(sal / max(float(sal.max()), 0.5), 0.0, 1.0)
    return _Analysis(rgb=rgb_sharp, lab=lab, contrast=contrast, sal=sal, mask=_binarise(sal, lab))


# ----------------------------------------------------------------------------
# binarisation
# ----------------------------------------------------------------------------


def _clean(m: BoolArray, min_frac: float = 0.002) -> BoolArray:
    """Open and close, drop components under ``min_frac`` of the frame, fill holes."""
    h, w = m.shape
    r = max(1, round(min(h, w) / 128))
    m = _close(_open(m, r), r)
    labels, n = _label(m)
    if n == 0:
        return m
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    keep = areas >= max(min_frac * h * w, 4)
    keep[0] = False
    return _fill_holes(keep[labels])


def _blur3(hist: F64) -> F64:
    """[1, 2, 1] smoothing of a 3-D histogram along each axis."""
    out = hist
    for ax in range(3):
        p = np.pad(out, [(1, 1) if a == ax else (0, 0) for a in range(3)], mode="edge")
        lo = tuple(slice(0, -2) if a == ax else slice(None) for a in range(3))
        mid = tuple(slice(1, -1) if a == ax else slice(None) for a in range(3))
        hi = tuple(slice(2, None) if a == ax else slice(None) for a in range(3))
        out = (p[lo] + 2 * p[mid] + p[hi]) / 4
    return out


def _colour_refine(m: BoolArray, sal: F64, lab: F64, t: float, fg_seed: BoolArray | None) -> BoolArray:
    """GrabCut-like step without the graph cut.

    Foreground (the eroded mask, restricted to ``fg_seed`` when given) and background
    (outside the dilated mask) Lab histograms give each pixel a log-likelihood ratio;
    the unary term adds the saliency relative to the threshold ``t``; a few mean-field
    iterations over a box neighbourhood supply the spatial smoothness.
    """
    h, w = m.shape
    if m.sum() < 16 or (~m).sum() < 16:
        return m
    r = max(1, round(min(h, w) / 64))
    fg = _erode(m, r)
    if fg_seed is not None and (fg & fg_seed).sum() >= 64:
        fg &= fg_seed
    if fg.sum() < 16:
        fg = m
    bg = ~_dilate(m, r)
    if bg.sum() < 16:
        bg = ~m
    nb = 16
    lo = np.array([0.0, -100.0, -110.0])
    hi = np.array([100.0, 100.0, 100.0])
    q = np.clip(((lab - lo) / (hi - lo) * nb).astype(np.int64), 0, nb - 1)
    idx = (q[..., 0] * nb + q[..., 1]) * nb + q[..., 2]
    hf = _blur3(np.bincount(idx[fg], minlength=nb**3).astype(np.float64).reshape(nb, nb, nb))
    hb = _blur3(np.bincount(idx[bg], minlength=nb**3).astype(np.float64).reshape(nb, nb, nb))
    llr = np.log(hf / hf.sum() + 1e-5) - np.log(hb / hb.sum() + 1e-5)
    unary = 0.5 * np.clip(llr.ravel()[idx], -4.0, 4.0) + _SAL_WEIGHT * (sal - t)
    rs = max(1, round(min(h, w) / 100))
    prob = 1.0 / (1.0 + np.exp(-np.clip(unary, -30, 30)))
    for _ in range(4):
        field = unary + 3.0 * (2.0 * _box_mean(prob, rs) - 1.0)
        prob = 1.0 / (1.0 + np.exp(-np.clip(field, -30, 30)))
    return _clean(prob > 0.5)


def _binarise(sal: F64, lab: F64) -> BoolArray:
    t = max(_otsu(sal), 0.2)
    m = _clean(sal > t)
    fg_seed = sal > _otsu(sal[m]) if m.sum() > 64 else None
    return _colour_refine(m, sal, lab, t, fg_seed)


# ----------------------------------------------------------------------------
# matte, upsampling and edge refinement
# ----------------------------------------------------------------------------


def _local_alpha(m: BoolArray, rgb: F64) -> F64:
    """Sub-pixel alpha along the mask edge at working resolution.

    In a 2-pixel band around the edge each pixel's colour is projected on the line
    between the local mean foreground and background colours (taken from the pure
    regions on either side of the band): the linear colour-mixing model of an edge.
    """
    out = m.astype(np.float64)
    band = _dilate(m, 2) & ~_erode(m, 2)
    if not band.any():
        return out
    fg = _erode(m, 2)
    bg = ~_dilate(m, 2)
    nf = _box_mean(fg, 5)
    nb = _box_mean(bg, 5)
    mf = _box_mean(rgb * fg[..., None], 5) / np.maximum(nf, 1e-9)[..., None]
    mb = _box_mean(rgb * bg[..., None], 5) / np.maximum(nb, 1e-9)[..., None]
    diff = mf - mb
    den = (diff * diff).sum(-1)
    ok = band & (nf > 0.02) & (nb > 0.02) & (den > 3 * 0.06**2)
    alpha = np.clip(((rgb - mb) * diff).sum(-1) / np.maximum(den, 1e-9), 0.0, 1.0)
    out[ok] = alpha[ok]
    smooth = _blur(out, 0.7)
    out[band] = smooth[band]
    return out


def _guided_coeffs(guide: F64, p: F64, r: int, eps: float) -> tuple[F64, F64]:
    """Box-averaged linear coefficients ``(a, b)`` of the guided filter (He et al. 2010).

    ``guide`` is ``(H, W)`` (grey) or ``(H, W, 3)`` (colour; the 3 x 3 covariance is
    inverted per pixel in closed form); the filter output is ``sum(a * guide) + b``.
    """
    mean_p = _box_mean(p, r)
    if guide.ndim == 2:
        mean_i = _box_mean(guide, r)
        var_i = _box_mean(guide * guide, r) - mean_i * mean_i
        a = (_box_mean(guide * p, r) - mean_i * mean_p) / (var_i + eps)
        return _box_mean(a, r), _box_mean(mean_p - a * mean_i, r)
    mean_c = _box_mean(guide, r)
    cov = _box_mean(guide * p[..., None], r) - mean_c * mean_p[..., None]

    def var(i: int, j: int) -> F64:
        v: F64 = _box_mean(guide[..., i] * guide[..., j], r) - mean_c[..., i] * mean_c[..., j]
        return v + eps if i == j else v

    s00, s01, s02, s11, s12, s22 = var(0, 0), var(0, 1), var(0, 2), var(1, 1), var(1, 2), var(2, 2)
    i00 = s11 * s22 - s12 * s12
    i01 = s02 * s12 - s01 * s22
    i02 = s01 * s12 - s02 * s11
    i11 = s00 * s22 - s02 * s02
    i12 = s01 * s02 - s00 * s12
    i22 = s00 * s11 - s01 * s01
    det = s00 * i00 + s01 * i01 + s02 * i02
    c0, c1, c2 = cov[..., 0], cov[..., 1], cov[..., 2]
    a3 = np.stack([i00 * c0 + i01 * c1 + i02 * c2, i01 * c0 + i11 * c1 + i12 * c2, i02 * c0 + i12 * c1 + i22 * c2], -1)
    a3 /= det[..., None]
    return _box_mean(a3, r), _box_mean(mean_p - (a3 * mean_c).sum(-1), r)


def _sample_bilinear(grid: F64, xs: F64, ys: F64) -> F64:
    """Bilinear samples of a 2-D/3-D ``grid`` at fractional pixel-centre coordinates."""
    gh, gw = grid.shape[:2]
    x = np.clip(xs, 0, gw - 1)
    y = np.clip(ys, 0, gh - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), max(gw - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.int64), max(gh - 2, 0))
    x1 = np.minimum(x0 + 1, gw - 1)
    y1 = np.minimum(y0 + 1, gh - 1)
    fx = x - x0
    fy = y - y0
    if grid.ndim == 3:
        fx = fx[:, None]
        fy = fy[:, None]
    top = grid[y0, x0] * (1 - fx) + grid[y0, x1] * fx
    bot = grid[y1, x0] * (1 - fx) + grid[y1, x1] * fx
    out: F64 = top * (1 - fy) + bot * fy
    return out


def _refine_edges(soft: FloatArray, soft_small: F64, image: Image.Image, refine_mask: int) -> None:
    """Snap the matte to the image's edges with a fast guided filter (in place).

    The filter coefficients are computed on a grid at most twice the working
    resolution and evaluated at full resolution, only in the uncertainty band of the
    upsampled matte (``0.02 < soft < 0.98``); outside it the matte is unchanged.
    Level 1 uses the grey image as the guide, level 2 the colour image with a larger
    window and a sharper output.
    """
    h0, w0 = soft.shape
    ys, xs = np.nonzero((soft > 0.02) & (soft < 0.98))
    if len(ys) == 0:
        return
    hs, ws = soft_small.shape
    gw, gh = min(w0, 2 * ws), min(h0, 2 * hs)
    sub = w0 / gw
    rgb_im = image.convert("RGB")
    guide_grid = np.asarray(rgb_im.resize((gw, gh), Image.Resampling.BOX), dtype=np.float64) / 255.0
    p_grid = _resize_float(soft_small, (gw, gh)).astype(np.float64)
    scale = max(w0 / ws, h0 / hs, 1.0)
    r = max(1, round(scale * (1.0 if refine_mask == 1 else 1.6) / sub))
    full = np.asarray(rgb_im, dtype=np.uint8)[ys, xs].astype(np.float64) / 255.0
    gx = (xs + 0.5) * gw / w0 - 0.5
    gy = (ys + 0.5) * gh / h0 - 0.5
    if refine_mask == 1:
        luma = np.array([0.299, 0.587, 0.114])
        a, b = _guided_coeffs((guide_grid * luma).sum(-1), p_grid, r, 1e-3)
        q = _sample_bilinear(a, gx, gy) * (full * luma).sum(-1) + _sample_bilinear(b, gx, gy)
        gain = 1.5
    else:
        a, b = _guided_coeffs(guide_grid, p_grid, r, 1e-4)
        q = (_sample_bilinear(a, gx, gy) * full).sum(-1) + _sample_bilinear(b, gx, gy)
        gain = 2.0
    soft[ys, xs] = np.clip((q - 0.5) * gain + 0.5, 0.0, 1.0)


def _upsample_mask(m_small: BoolArray, rgb_small: F64, image: Image.Image, refine_mask: int) -> tuple[BoolArray, FloatArray]:
    """Sub-pixel matte on the working grid, bilinear upsampling, optional edge refinement."""
    w0, h0 = image.size
    soft_small = _local_alpha(m_small, rgb_small)
    soft = np.clip(_resize_float(soft_small, (w0, h0)), 0.0, 1.0)
    if refine_mask > 0 and m_small.any():
        _refine_edges(soft, soft_small, image, refine_mask)
    # saturate the last few percent at either end (solid interior, clean background);
    # the 0.5 level, i.e. the mask, is unchanged
    soft = np.clip((soft - 0.5) * (1.0 / 0.92) + 0.5, 0.0, 1.0).astype(np.float32)
    mask: BoolArray = soft >= 0.5
    return mask, soft


# ----------------------------------------------------------------------------
# geometry
# ----------------------------------------------------------------------------


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box ``(x1, y1, x2, y2)`` of the ``True`` pixels of a 2-D mask.

    ``x1``/``y1`` are inclusive and ``x2``/``y2`` exclusive (so the box is
    ``mask[y1:y2, x1:x2]``); ``(0, 0, 0, 0)`` for an empty mask.
    """
    m = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    if len(rows) == 0:
        return (0, 0, 0, 0)
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _simplify(points: F64, tol: float) -> F64:
    """Ramer-Douglas-Peucker simplification of a closed polygon (first point == last)."""
    n = len(points)
    if n <= 4:
        return points
    far = int(np.argmax(((points - points[0]) ** 2).sum(1)))  # split the ring there
    keep = np.zeros(n, dtype=bool)
    keep[[0, far, n - 1]] = True
    stack = [(0, far), (far, n - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        seg = points[i + 1 : j]
        a, ab = points[i], points[j] - points[i]
        norm = float(np.hypot(ab[0], ab[1]))
        if norm < 1e-12:
            dist = np.hypot(seg[:, 0] - a[0], seg[:, 1] - a[1])
        else:
            dist = np.abs(ab[0] * (seg[:, 1] - a[1]) - ab[1] * (seg[:, 0] - a[0])) / norm
        k = int(np.argmax(dist))
        if dist[k] > tol:
            keep[i + 1 + k] = True
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    out: F64 = points[keep]
    return out


def mask_contours(mask: np.ndarray, *, max_points: int = 300, min_area: float = 4.0) -> list[list[list[int]]]:
    """Outer boundary polygons of the connected components of a 2-D mask, largest first.

    The boundaries are the 0.5 iso-lines of the mask (contourpy, on a zero-padded
    copy so that every polygon closes), i.e. they pass half-way between subject and
    background pixel centres.  Hole boundaries are dropped, as are polygons enclosing
    less than ``min_area`` square pixels.  Each polygon is simplified with
    Ramer-Douglas-Peucker (0.75 px tolerance, raised until it has at most
    ``max_points`` points), rounded to integer ``[x, y]`` pixel coordinates clipped to
    the image, and not explicitly closed (the last point does not repeat the first).
    """
    import contourpy  # local import: only needed here

    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any():
        return []
    h, w = m.shape
    gen = contourpy.contour_generator(z=np.pad(m.astype(np.float64), 1), line_type=contourpy.LineType.Separate)
    polys: list[tuple[float, list[list[int]]]] = []
    for line in gen.lines(0.5):
        pts = np.asarray(line, dtype=np.float64) - 1.0
        if len(pts) < 4:
            continue
        x, y = pts[:, 0], pts[:, 1]
        area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
        if area < min_area:  # holes run the other way round: negative area
            continue
        tol = 0.75
        simp = _simplify(pts, tol)
        while len(simp) - 1 > max_points:
            tol *= 1.5
            simp = _simplify(pts, tol)
        ipts = np.rint(simp[:-1] if np.allclose(simp[0], simp[-1]) else simp).astype(int)
        ipts[:, 0] = np.clip(ipts[:, 0], 0, w - 1)
        ipts[:, 1] = np.clip(ipts[:, 1], 0, h - 1)
        poly: list[list[int]] = []
        for px, py in ipts.tolist():
            if not poly or poly[-1] != [px, py]:
                poly.append([px, py])
        if len(poly) > 1 and poly[-1] == poly[0]:
            poly.pop()
        if len(poly) >= 3:
            polys.append((area, poly))
    polys.sort(key=lambda t: -t[0])
    return [p for _, p in polys]


# ----------------------------------------------------------------------------
# public segmentation entry points
# ----------------------------------------------------------------------------


def _make_seg(m_small: BoolArray, an: _Analysis, image: Image.Image, refine_mask: int) -> Segmentation:
    mask, soft = _upsample_mask(m_small, an.rgb, image, refine_mask)
    if m_small.any() and (~m_small).any():
        inside = float(an.contrast[m_small].mean())
        outside = float(an.contrast[~an.mask].mean()) if (~an.mask).any() else 1.0
        score = float(np.clip(inside - 0.5 * outside, 0.0, 1.0))
    elif m_small.any():
        score = 0.1
    else:
        score = 0.0
    return Segmentation(mask=mask, soft=soft, bbox=mask_bbox(mask), contours=mask_contours(mask), score=round(score, 4))


def _check_refine(refine_mask: int) -> int:
    if refine_mask not in (0, 1, 2):
        raise ValueError(f"refine_mask must be 0, 1 or 2, got {refine_mask!r}")
    return int(refine_mask)


def _empty_seg(image: Image.Image) -> Segmentation:
    w, h = image.size
    return Segmentation(
        mask=np.zeros((h, w), dtype=bool), soft=np.zeros((h, w), dtype=np.float32), bbox=(0, 0, 0, 0), contours=[], score=0.0
    )


def segment_saliency(image: Image.Image, *, refine_mask: int = 0) -> Segmentation:
    """Segment the salient subject of ``image`` (主体分割, ``saliency_seg``).

    Any Pillow mode is accepted (converted to RGB; transparency is ignored).  The
    dominant object(s) are kept: every connected salient component whose area is at
    least 15 % of the largest one's.  ``refine_mask`` selects the edge refinement:
    0 = sub-pixel matte on the working grid, upsampled bilinearly; 1 = plus a grey
    guided filter at full resolution; 2 = plus a colour guided filter with a larger
    window (follows colour edges more closely, a little slower).  An image without a
    salient subject gives an empty mask, ``bbox == (0, 0, 0, 0)``, no contours and
    ``score == 0``.
    """
    refine = _check_refine(refine_mask)
    if image.width < 1 or image.height < 1:
        raise ValueError("empty image")
    an = _analyse(image)
    labels, n = _label(an.mask)
    if n == 0:
        return _empty_seg(image)
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    areas[0] = 0
    keep = areas >= _DOMINANT * areas.max()
    keep[0] = False
    return _make_seg(keep[labels], an, image, refine)


def segment_entities(image: Image.Image, *, max_entity: int = 20, refine_mask: int = 0) -> list[Segmentation]:
    """Segment the separate salient objects of ``image`` (智能分割, ``entity_seg``).

    Each connected component of the salient mask is one entity (objects that touch
    are one entity); entities are returned largest first, at most ``max_entity`` of
    them (``[]`` when ``max_entity < 1`` or nothing is salient).  ``refine_mask`` has
    the meaning documented in :func:`segment_saliency`.
    """
    refine = _check_refine(refine_mask)
    if max_entity < 1:
        return []
    if image.width < 1 or image.height < 1:
        raise ValueError("empty image")
    an = _analyse(image)
    labels, n = _label(an.mask)
    if n == 0:
        return []
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    order = [int(i) for i in np.argsort(-areas[1:], kind="stable") + 1][:max_entity]
    return [_make_seg(labels == i, an, image, refine) for i in order]


# ----------------------------------------------------------------------------
# output rendering
# ----------------------------------------------------------------------------


def _is_transparent(rgb: tuple[int, int, int]) -> bool:
    return tuple(int(c) for c in rgb) == (-1, -1, -1)


def _bg_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    if _is_transparent(rgb):
        return (255, 255, 255)
    r, g, b = (int(np.clip(int(c), 0, 255)) for c in rgb)
    return (r, g, b)


def _alpha_u8(soft: FloatArray) -> NDArray[np.uint8]:
    out: NDArray[np.uint8] = np.rint(np.clip(soft, 0.0, 1.0) * 255).astype(np.uint8)
    return out


def _rgba_cutout(image: Image.Image, soft: FloatArray, rgb: tuple[int, int, int]) -> Image.Image:
    """Full-size RGBA: the matte as alpha, or blended onto ``rgb`` (alpha 255) if it is a colour."""
    base = np.asarray(image.convert("RGB"), dtype=np.uint8)
    alpha = _alpha_u8(soft)
    if _is_transparent(rgb):
        return Image.fromarray(np.dstack([base, alpha]), mode="RGBA")
    a = alpha.astype(np.float32)[..., None] / 255.0
    comp = np.rint(base * a + np.array(_bg_colour(rgb), dtype=np.float32) * (1 - a)).astype(np.uint8)
    return Image.fromarray(np.dstack([comp, np.full(alpha.shape, 255, dtype=np.uint8)]), mode="RGBA")


def _mask_image(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8), mode="L")


def render_saliency_outputs(
    image: Image.Image,
    seg: Segmentation,
    *,
    only_mask: int,
    rgb: tuple[int, int, int] = (-1, -1, -1),
) -> list[Image.Image]:
    """Render the images the ``saliency_seg`` service returns for an ``only_mask`` mode.

    * ``0``: the subject cut out and cropped to ``seg.bbox``, one RGBA image with the
      matte as alpha (the service documents "BGRA" because it is OpenCV based; RGBA
      is the same picture once encoded as PNG).
    * ``1``: the mask only, one full-size ``"L"`` image with values 0 / 255.
    * ``2``: the subject composited through the matte, centred, onto a square ``"RGB"``
      canvas of side ``max(bbox width, bbox height)`` filled with ``rgb`` (white when
      ``rgb == (-1, -1, -1)``).
    * ``3``: the full-size RGBA image, background transparent.
    * ``4``: two images, the full-size RGBA of mode 3 and then the mask of mode 1.

    The service documents that the transparent modes (0, 3, 4) need
    ``rgb = [-1, -1, -1]``.  If a real colour is given there, the background is
    *filled* with that colour instead (the matte blended onto it, alpha 255
    everywhere), still as RGBA.  With an empty mask the cropped outputs of modes 0 and
    2 are 1 x 1 pixels (transparent or background-coloured).
    """
    if only_mask not in (0, 1, 2, 3, 4):
        raise ValueError(f"only_mask must be 0..4, got {only_mask!r}")
    if only_mask == 1:
        return [_mask_image(seg.mask)]
    if only_mask in (3, 4):
        full = _rgba_cutout(image, seg.soft, rgb)
        return [full] if only_mask == 3 else [full, _mask_image(seg.mask)]
    x1, y1, x2, y2 = seg.bbox
    empty = x2 <= x1 or y2 <= y1
    if only_mask == 0:
        if empty:
            fill = (0, 0, 0, 0) if _is_transparent(rgb) else (*_bg_colour(rgb), 255)
            return [Image.new("RGBA", (1, 1), fill)]
        return [_rgba_cutout(image, seg.soft, rgb).crop((x1, y1, x2, y2))]
    colour = _bg_colour(rgb)  # only_mask == 2
    if empty:
        return [Image.new("RGB", (1, 1), colour)]
    bw, bh = x2 - x1, y2 - y1
    side = max(bw, bh)
    canvas = Image.new("RGB", (side, side), colour)
    alpha = Image.fromarray(_alpha_u8(seg.soft[y1:y2, x1:x2]), mode="L")
    canvas.paste(image.convert("RGB").crop((x1, y1, x2, y2)), ((side - bw) // 2, (side - bh) // 2), alpha)
    return [canvas]


def entity_colour(i: int) -> tuple[int, int, int]:
    """The preview colour of entity ``i`` (golden-angle hues, deterministic)."""
    r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.85, 0.95)
    return (round(r * 255), round(g * 255), round(b * 255))


def render_entity_outputs(image: Image.Image, segs: list[Segmentation], *, return_format: int) -> list[Image.Image]:
    """Render the images the ``entity_seg`` service returns for a ``return_format``.

    ``segs`` is the list from :func:`segment_entities` (largest first); "entity ``i``"
    below is ``segs[i]``, 0-based.

    * ``0``: one full-size ``"L"`` mask (0 / 255) per entity.
    * ``1``: one full-size ``"L"`` label map: 0 = background, ``i + 1`` = entity ``i``
      (capped at 255; where entities overlap, the larger one wins).
    * ``2``: one RGBA cut-out per entity, cropped to its bbox, background transparent.
    * ``3``: one ``"RGB"`` preview: the image with each entity tinted 50 % in
      :func:`entity_colour` ``(i)`` and outlined by its contours in that colour.
    * ``4``: the masks of format 0 followed by the cut-outs of format 2
      (``2 * len(segs)`` images).

    With no entities, formats 0, 2 and 4 give ``[]``, format 1 an all-zero label map
    and format 3 the unmodified image.
    """
    if return_format not in (0, 1, 2, 3, 4):
        raise ValueError(f"return_format must be 0..4, got {return_format!r}")
    w, h = image.size
    if return_format == 0:
        return [_mask_image(s.mask) for s in segs]
    if return_format == 1:
        labels = np.zeros((h, w), dtype=np.uint8)
        for i in range(len(segs) - 1, -1, -1):
            labels[segs[i].mask] = min(i + 1, 255)
        return [Image.fromarray(labels, mode="L")]
    if return_format == 2:
        return [render_saliency_outputs(image, s, only_mask=0)[0] for s in segs]
    if return_format == 3:
        base = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
        for i in range(len(segs) - 1, -1, -1):
            m = segs[i].mask
            base[m] = base[m] * 0.5 + np.array(entity_colour(i), dtype=np.float32) * 0.5
        out = Image.fromarray(np.rint(base).astype(np.uint8), mode="RGB")
        draw = ImageDraw.Draw(out)
        lw = max(1, round(max(w, h) / 400))
        for i, s in enumerate(segs):
            for poly in s.contours:
                pts = [(p[0], p[1]) for p in poly]
                draw.line([*pts, pts[0]], fill=entity_colour(i), width=lw)
        return [out]
    return [_mask_image(s.mask) for s in segs] + [render_saliency_outputs(image, s, only_mask=0)[0] for s in segs]
