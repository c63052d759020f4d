"""Salient-subject and entity segmentation for the simulator (pure functions, no I/O).

This is the *real* algorithm behind the simulated ``saliency_seg`` (主体分割) and
``entity_seg`` (智能分割) capabilities.  It is a classical, training-free pipeline
that runs on numpy + Pillow (+ contourpy for contour extraction):

1. The image is converted to RGB and downscaled so that its longest side is
   :data:`WORK_SIDE` pixels, lightly blurred and converted to CIE Lab.
2. **Background model from the border ring** (boundary prior).  The ring is split
   into its four sides; a side whose colours are not found on the other sides is
   treated as "cut by the subject" (e.g. the torso of a portrait touching the bottom
   edge) and left out.  From the remaining ring pixels two background models are
   built:

   * a k-means palette of border colours (explains flat, striped, checkered and
     noisy backgrounds, and linear gradients, whose colours all appear on the ring);
   * a robust quadratic polynomial colour model ``Lab(x, y)`` fitted to the ring
     (explains smooth linear/radial gradients whose centre colour never reaches the
     border).

   A pixel's *background distance* is the smaller of the two residuals, normalised
   by the noise level measured on the ring itself.
3. A local colour-contrast / spectral-residual term (Hou & Zhang 2007) and a mild
   centre prior modulate the map.
4. Otsu threshold, morphological open/close, hole filling, removal of small
   components; then two rounds of *colour-model refinement* (foreground/background
   colour histograms from the current mask, combined with the spatial prior, a
   GrabCut-like step without the graph cut).
5. The low-resolution mask is smoothed and upsampled (bilinear) to the original
   size; ``refine_mask`` optionally runs an edge-aware guided filter (He et al.)
   at full resolution guided by the image itself.

All functions are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

__all__ = [
    "WORK_SIDE",
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
_SAL_W = 4.0
_PASSES = 1
_K = 32
_LOCAL = 35.0
_SEGK = 8
_RING = 0.012
_RING_THICK = 0.04
_COLOUR = "hist"
_LLR_CLIP = 6.0
_TRIMAP = True

FloatArray = NDArray[np.float32]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int32]


@dataclass(frozen=True)
class Segmentation:
    """One segmented subject (or entity) at the original image resolution.

    Attributes:
        mask: ``bool`` array ``(H, W)``; ``True`` marks subject pixels.
        soft: ``float32`` array ``(H, W)`` in ``[0, 1]``: the alpha matte used for
            cut-outs.  ``soft >= 0.5`` is exactly ``mask``.
        bbox: ``(x1, y1, x2, y2)`` in original pixels, ``x1``/``y1`` inclusive and
            ``x2``/``y2`` **exclusive** (so ``x2 - x1`` is the width).  ``(0, 0, 0, 0)``
            when the mask is empty.
        contours: outer boundary polygons, each a list of ``[x, y]`` integer points
            in original pixel coordinates (pixel centres at integer coordinates).
        score: confidence in ``[0, 1]`` (the service's ``seg_score``).
    """

    mask: BoolArray
    soft: FloatArray
    bbox: tuple[int, int, int, int]
    contours: list[list[list[int]]]
    score: float


# ----------------------------------------------------------------------------
# small numpy image-processing helpers
# ----------------------------------------------------------------------------


def _box_sum_axis(a: NDArray[np.float64], r: int, axis: int) -> NDArray[np.float64]:
    n = a.shape[axis]
    c = np.cumsum(a, axis=axis)
    zero_shape = list(a.shape)
    zero_shape[axis] = 1
    c = np.concatenate([np.zeros(zero_shape, dtype=np.float64), c], axis=axis)
    idx = np.arange(n)
    hi = np.minimum(idx + r + 1, n)
    lo = np.maximum(idx - r, 0)
    return np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)


def _box_mean(a: NDArray[np.floating] | NDArray[np.bool_], r: int) -> NDArray[np.float64]:
    """Mean over a ``(2r+1)``-square window (clipped at the borders) of a 2-D or 3-D array."""
    x = np.asarray(a, dtype=np.float64)
    if r <= 0:
        return x.copy()
    h, w = x.shape[:2]
    s = _box_sum_axis(_box_sum_axis(x, r, 0), r, 1)
    rows = np.minimum(np.arange(h) + r + 1, h) - np.maximum(np.arange(h) - r, 0)
    cols = np.minimum(np.arange(w) + r + 1, w) - np.maximum(np.arange(w) - r, 0)
    cnt = np.outer(rows, cols).astype(np.float64)
    if x.ndim == 3:
        cnt = cnt[:, :, None]
    out: NDArray[np.float64] = s / cnt
    return out


def _blur(a: NDArray[np.floating], sigma: float) -> NDArray[np.float64]:
    """Approximate Gaussian blur: three box passes whose variance matches ``sigma**2``."""
    x = np.asarray(a, dtype=np.float64)
    if sigma <= 0.3:
        return x.copy()
    # a box of radius r has variance r(r+1)/3; three passes -> r(r+1)
    r = max(1, round((np.sqrt(1 + 4 * sigma * sigma) - 1) / 2))
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
    # pad so that closing does not erode at the image border
    p = np.pad(m, r, mode="edge")
    c = _erode(_dilate(p, r), r)
    out: BoolArray = c[r:-r, r:-r] if r > 0 else c
    return out


def _label(mask: BoolArray, *, eight: bool = True) -> tuple[IntArray, int]:
    """Connected-component labelling by run-length union-find.

    Returns ``(labels, n)``: ``labels`` is 0 for background and ``1..n`` for components.
    """
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    if not mask.any():
        return labels, 0
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    sr, sc = np.nonzero(d == 1)
    _er, ec = np.nonzero(d == -1)
    n_runs = len(sr)
    parent = list(range(n_runs))

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    row_start = np.searchsorted(sr, np.arange(h + 1))
    starts = sc.tolist()
    ends = ec.tolist()
    slack = 1 if eight else 0
    rs = row_start.tolist()
    for y in range(1, h):
        a0, a1 = rs[y - 1], rs[y]
        b0, b1 = rs[y], rs[y + 1]
        i, j = a0, b0
        while i < a1 and j < b1:
            # overlap (4-conn) or diagonal touch (8-conn)
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
    run_label = run_label.astype(np.int32) + 1
    lengths = ec - sc
    pix_rows = np.repeat(sr, lengths)
    offs = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    pix_cols = np.repeat(sc, lengths) + offs
    labels[pix_rows, pix_cols] = np.repeat(run_label, lengths)
    return labels, len(uniq)


def _fill_holes(m: BoolArray) -> BoolArray:
    """Fill background regions (4-connected) that do not touch the image border."""
    if not m.any():
        return m.copy()
    lab, n = _label(~m, eight=False)
    if n == 0:
        return m.copy()
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    keep_bg = np.zeros(n + 1, dtype=bool)
    keep_bg[border] = True
    keep_bg[0] = False
    out: BoolArray = ~keep_bg[lab]
    out |= m
    # label 0 (the mask itself) must stay foreground; enclosed bg comps become fg
    out[lab == 0] = True
    return out


def _otsu(values: NDArray[np.floating]) -> float:
    v = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-12:
        return hi
    hist, edges = np.histogram(v, bins=256, range=(lo, hi))
    p = hist.astype(np.float64) / hist.sum()
    omega = np.cumsum(p)
    mu = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)
    mu_t = mu[-1]
    denom = omega * (1 - omega)
    with np.errstate(divide="ignore", invalid="ignore"):
        sb = np.where(denom > 1e-12, (mu_t * omega - mu) ** 2 / denom, 0.0)
    k = int(np.argmax(sb))
    return float(edges[k + 1])


def _srgb_to_lab(rgb: NDArray[np.floating]) -> NDArray[np.float64]:
    """sRGB in ``[0, 1]`` -> CIE Lab (D65)."""
    c = np.asarray(rgb, dtype=np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
    )
    xyz = lin @ m.T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    eps = 216 / 24389
    kappa = 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


def _resize_float(a: NDArray[np.floating], size: tuple[int, int]) -> FloatArray:
    """Bilinear resize of a 2-D float array to ``size = (width, height)``."""
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), mode="F")
    out: FloatArray = np.asarray(im.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    return out


# ----------------------------------------------------------------------------
# the saliency analysis at working resolution
# ----------------------------------------------------------------------------


def _kmeans(x: NDArray[np.float64], k: int, iters: int = 8) -> NDArray[np.float64]:
    """Deterministic k-means (init: points spread along the lightness ordering)."""
    n = len(x)
    k = min(k, n)
    order = np.argsort(x[:, 0] * 1e4 + x[:, 1] * 10 + x[:, 2], kind="stable")
    centres = x[order[np.linspace(0, n - 1, k).astype(int)]].copy()
    for _ in range(iters):
        d = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
        a = np.argmin(d, axis=1)
        for j in range(k):
            sel = a == j
            if sel.any():
                centres[j] = x[sel].mean(0)
    return centres


def _min_dist(lab: NDArray[np.float64], centres: NDArray[np.float64]) -> NDArray[np.float64]:
    h, w, _ = lab.shape
    flat = lab.reshape(-1, 3)
    best = np.full(len(flat), np.inf)
    for c in centres:
        d = ((flat - c) ** 2).sum(1)
        np.minimum(best, d, out=best)
    out: NDArray[np.float64] = np.sqrt(best).reshape(h, w)
    return out


def _poly_terms(xn: NDArray[np.float64], yn: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.stack([np.ones_like(xn), xn, yn, xn * xn, xn * yn, yn * yn], axis=-1)


@dataclass(frozen=True)
class _Analysis:
    rgb: NDArray[np.float64]  # working-size RGB in [0, 1] (not smoothed)
    lab: NDArray[np.float64]  # smoothed Lab image at working size
    sal: NDArray[np.float64]  # saliency in [0, 1]
    mask: BoolArray  # cleaned binary subject mask (all kept components)


def _geodesic(lab: NDArray[np.float64], seeds: BoolArray, tau: float, rounds: int = 2) -> NDArray[np.float64]:
    """Geodesic distance from ``seeds``; a step costs ``max(0, |dLab| - tau)`` (raster sweeps)."""
    h, w, _ = lab.shape
    dv = np.maximum(np.sqrt(((lab[1:] - lab[:-1]) ** 2).sum(-1)) - tau, 0.0)
    dh = np.maximum(np.sqrt(((lab[:, 1:] - lab[:, :-1]) ** 2).sum(-1)) - tau, 0.0)
    d = np.where(seeds, 0.0, np.inf)
    dt = np.ascontiguousarray(d.T)
    dht = np.ascontiguousarray(dh.T)
    for _ in range(rounds):
        for y in range(1, h):
            np.minimum(d[y], d[y - 1] + dv[y - 1], out=d[y])
        for y in range(h - 2, -1, -1):
            np.minimum(d[y], d[y + 1] + dv[y], out=d[y])
        dt[:] = d.T
        for x in range(1, w):
            np.minimum(dt[x], dt[x - 1] + dht[x - 1], out=dt[x])
        for x in range(w - 2, -1, -1):
            np.minimum(dt[x], dt[x + 1] + dht[x], out=dt[x])
        d[:] = dt.T
    out: NDArray[np.float64] = np.minimum(d, 1e6)
    return out


def _ring_parts(h: int, w: int, b: int) -> dict[str, BoolArray]:
    """The border ring split into top, bottom and the upper / lower parts of the left and right sides."""
    split = round(0.6 * h)
    parts: dict[str, BoolArray] = {}
    for name in ("T", "B", "Lu", "Ll", "Ru", "Rl"):
        parts[name] = np.zeros((h, w), dtype=bool)
    parts["T"][:b, :] = True
    parts["B"][h - b :, :] = True
    parts["Lu"][:split, :b] = True
    parts["Ll"][split:, :b] = True
    parts["Ru"][:split, w - b :] = True
    parts["Rl"][split:, w - b :] = True
    return parts


def _subsample(pts: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    step = max(1, len(pts) // n)
    out: NDArray[np.float64] = pts[::step]
    return out


def _background_ring(lab: NDArray[np.float64]) -> BoolArray:
    """The background part of the border ring (see :func:`_thin_ring`), thickened.

    The selection runs on a thin outer ring (so that a subject nearly filling the
    frame is not mistaken for background); pixels of a thicker ring next to the kept
    parts are then added where the thin ring's colours explain them.
    """
    h, w, _ = lab.shape
    b_thin = max(2, round(_RING * min(h, w)))
    b_thick = max(b_thin, round(_RING_THICK * min(h, w)))
    thin = _thin_ring(lab, b_thin)
    if b_thick <= b_thin or not thin.any():
        return thin
    pts = _subsample(lab[thin], 3000)
    cent = _kmeans(pts, 32)
    own = np.sqrt(((pts[:, None, :] - cent[None]) ** 2).sum(-1).min(1))
    limit = max(6.0, float(np.percentile(own, 90)))
    d = _min_dist(lab, cent)
    out = thin.copy()
    thin_parts = _ring_parts(h, w, b_thin)
    for name, thick_part in _ring_parts(h, w, b_thick).items():
        kept_thin = thin & thin_parts[name]
        if kept_thin.sum() < 0.5 * thin_parts[name].sum():
            continue
        extra = thick_part & ~thin_parts[name]
        if not extra.any():
            continue
        if float(np.percentile(d[extra], 80)) <= 1.5 * limit:
            out |= extra  # the thicker strip is the same background: take all its shades
        else:
            out |= extra & (d <= limit)
    return out


def _thin_ring(lab: NDArray[np.float64], b: int) -> BoolArray:
    """Select the parts of the border ring (``b`` pixels wide) that look like background.

    1. A whole side whose colours are not found on the other three sides is dropped
       (a subject touching / cut by that side).
    2. The top and the upper 60 % of the remaining left/right sides form the anchor;
       the bottom and the lower parts of the sides are kept only if the anchor's
       colours explain them (a subject cut by the bottom edge, e.g. a portrait's torso,
       often reaches the lower parts of the sides as well).
    """
    h, w, _ = lab.shape
    parts = _ring_parts(h, w, b)
    sides = {"T": parts["T"], "B": parts["B"], "L": parts["Lu"] | parts["Ll"], "R": parts["Ru"] | parts["Rl"]}
    names = list(sides)
    samples = {k: _subsample(lab[sides[k]], 600) for k in names}
    div: dict[str, float] = {}
    for k in names:
        others = np.concatenate([samples[j] for j in names if j != k])
        cent = _kmeans(others, 24, iters=4)
        d = np.sqrt(((samples[k][:, None, :] - cent[None]) ** 2).sum(-1).min(1))
        div[k] = float(np.median(d))
    ref = float(np.median(list(div.values())))
    kept = [k for k in names if div[k] <= max(10.0, 2.5 * ref)]
    if len(kept) < 2:
        kept = sorted(names, key=lambda k: div[k])[:2]
    anchor = np.zeros((h, w), dtype=bool)
    if "T" in kept:
        anchor |= parts["T"]
    if "L" in kept:
        anchor |= parts["Lu"]
    if "R" in kept:
        anchor |= parts["Ru"]
    ring = anchor.copy()
    if anchor.sum() < 0.2 * sum(int(sides[k].sum()) for k in kept):
        for k in kept:
            ring |= sides[k]
        return ring
    apts = _subsample(lab[anchor], 3000)
    cent = _kmeans(apts, 32)
    own = np.sqrt(((apts[:, None, :] - cent[None]) ** 2).sum(-1).min(1))
    limit = max(7.0, 1.5 * float(np.percentile(own, 90)))
    d_anchor = _min_dist(lab, cent)
    # the dominant colours of the bottom edge that the anchor does not explain: a subject
    # cut by the bottom edge; its colours are removed from the lower parts of the sides
    bottom_unexpl = parts["B"] & (d_anchor > limit)
    cut_centres: NDArray[np.float64] | None = None
    if bottom_unexpl.sum() > 0.3 * parts["B"].sum():
        bp = _subsample(lab[bottom_unexpl], 1500)
        bc = _kmeans(bp, 8)
        share = np.bincount(
            np.argmin(((bp[:, None, :] - bc[None]) ** 2).sum(-1), axis=1), minlength=len(bc)
        ) / len(bp)
        cut_centres = bc[share >= 0.08]
    for k, pname in (("L", "Ll"), ("R", "Rl"), ("B", "B")):
        if k not in kept:
            continue
        part = parts[pname]
        if pname == "B":
            if cut_centres is None:
                ring |= part
            continue
        if cut_centres is None:
            # keep the lower part unless most of it is unexplained by the anchor
            if float(np.median(d_anchor[part])) <= limit:
                ring |= part
            continue
        d_cut = _min_dist(lab, cut_centres)
        ring |= part & ~((d_anchor > limit) & (d_cut <= limit))
    return ring


def _local_palette_distance(lab: NDArray[np.float64], ring: BoolArray, lam: float) -> NDArray[np.float64]:
    """Distance to the border palette, preferring the colours of nearby ring segments.

    The ring is cut into 16 segments (4 per side) with an 8-colour palette each; a
    pixel's distance to segment ``s`` is its colour distance to that palette plus
    ``lam`` times how much farther (as a fraction of the image diagonal) the segment
    is than the pixel's nearest segment.  Locally varying backgrounds are thus judged
    against the local background, not against colours from the other end of the frame.
    """
    h, w, _ = lab.shape
    diag = float(np.hypot(h, w))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    n_cut = 4
    pieces: list[BoolArray] = []
    for side in range(4):
        for j in range(n_cut):
            seg = np.zeros((h, w), dtype=bool)
            if side < 2:
                x0, x1 = (j * w) // n_cut, ((j + 1) * w) // n_cut
                if side == 0:
                    seg[: h // 2, x0:x1] = True
                else:
                    seg[h // 2 :, x0:x1] = True
            else:
                y0, y1 = (j * h) // n_cut, ((j + 1) * h) // n_cut
                if side == 2:
                    seg[y0:y1, : w // 2] = True
                else:
                    seg[y0:y1, w // 2 :] = True
            pieces.append(seg & ring)
    dists: list[NDArray[np.float64]] = []
    spatial: list[NDArray[np.float64]] = []
    for seg in pieces:
        if seg.sum() < 8:
            continue
        cent = _kmeans(_subsample(lab[seg], 400), _SEGK, iters=5)
        dists.append(_min_dist(lab, cent))
        ys, xs = np.nonzero(seg)
        spatial.append(np.hypot(xx - xs.mean(), yy - ys.mean()) / diag)
    sp = np.stack(spatial)
    sp -= sp.min(axis=0, keepdims=True)
    out: NDArray[np.float64] = (np.stack(dists) + lam * sp).min(axis=0)
    return out


def _background_distance(lab: NDArray[np.float64]) -> NDArray[np.float64]:
    """Residual of each pixel against the border-ring background model, in noise units."""
    h, w, _ = lab.shape
    ring = _background_ring(lab)
    pts = _subsample(lab[ring], 3000)

    # (a) palette of border colours
    if _LOCAL > 0:
        d_pal = _local_palette_distance(lab, ring, _LOCAL)
    else:
        centres = _kmeans(pts, _K)
        d_pal = _min_dist(lab, centres)

    # (b) robust quadratic colour model of the background
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    xn = xx / max(w - 1, 1) * 2 - 1
    yn = yy / max(h - 1, 1) * 2 - 1
    terms = _poly_terms(xn, yn)
    a_mat = _subsample(terms[ring], 3000)
    wts = np.ones(len(a_mat))
    coef = np.zeros((6, 3))
    for _ in range(3):
        sw = np.sqrt(wts)[:, None]
        coef = np.linalg.lstsq(a_mat * sw, pts * sw, rcond=None)[0]
        res = np.sqrt(((a_mat @ coef - pts) ** 2).sum(1))
        scale = max(float(np.median(res)) * 1.5, 1.0)
        wts = 1.0 / (1.0 + (res / (2 * scale)) ** 2)
    d_poly = np.sqrt(((lab - terms @ coef) ** 2).sum(-1))
    d = np.minimum(d_pal, d_poly)
    noise = float(np.percentile(d[ring], 90))

    # (c) smooth backdrops: a pixel reachable from the ring without crossing an edge
    #     is background (handles radial / irregular gradients and vignetting)
    diffs = np.concatenate(
        [
            np.sqrt(((lab[1:] - lab[:-1]) ** 2).sum(-1))[ring[1:] & ring[:-1]],
            np.sqrt(((lab[:, 1:] - lab[:, :-1]) ** 2).sum(-1))[ring[:, 1:] & ring[:, :-1]],
        ]
    )
    if len(diffs) and float(np.percentile(diffs, 90)) < 3.0:
        tau = max(1.0, 1.5 * float(np.percentile(diffs, 75)))
        seeds = ring & (d < max(2.0 * noise, 3.0))
        if seeds.any():
            d = np.minimum(d, _geodesic(lab, seeds, tau))

    out: NDArray[np.float64] = d / max(noise * 2.0, 6.0)
    return out


def _spectral_residual(lab: NDArray[np.float64]) -> NDArray[np.float64]:
    """Spectral-residual saliency (Hou & Zhang 2007) of the lightness channel, in [0, 1]."""
    h, w, _ = lab.shape
    side = 64
    sw, sh = (side, max(8, round(side * h / w))) if w >= h else (max(8, round(side * w / h)), side)
    small = _resize_float(lab[..., 0].astype(np.float32), (sw, sh)).astype(np.float64)
    f = np.fft.fft2(small)
    log_amp = np.log(np.abs(f) + 1e-9)
    phase = np.angle(f)
    resid = log_amp - _box_mean(log_amp, 1)
    sal = np.abs(np.fft.ifft2(np.exp(resid + 1j * phase))) ** 2
    sal = _blur(sal, 2.5)
    sal = _resize_float(sal.astype(np.float32), (w, h)).astype(np.float64)
    sal -= sal.min()
    mx = sal.max()
    if mx > 0:
        sal /= mx
    return sal


def _analyse(image: Image.Image) -> _Analysis:
    rgb_im = image.convert("RGB")
    w0, h0 = rgb_im.size
    scale = WORK_SIDE / max(w0, h0)
    if scale < 1:
        ws, hs = max(8, round(w0 * scale)), max(8, round(h0 * scale))
        small_im = rgb_im.resize((ws, hs), Image.Resampling.BOX)
    else:
        small_im = rgb_im
    rgb_sharp = np.asarray(small_im, dtype=np.float64) / 255.0
    rgb = np.asarray(small_im.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float64) / 255.0
    lab = _srgb_to_lab(rgb)
    h, w, _ = lab.shape

    bg = _background_distance(lab)
    contrast = 1.0 - np.exp(-(bg**2) / 2.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    centre = np.exp(-(((xx - cx) / (0.6 * w)) ** 2 + ((yy - cy) / (0.6 * h)) ** 2))
    sr = _spectral_residual(lab)
    sal = contrast * (0.75 + 0.25 * centre) * (0.85 + 0.15 * sr)
    sal = _blur(sal, 1.0)
    sal = np.clip(sal / max(float(sal.max()), 1e-9), 0.0, 1.0)

    mask = _binarise(sal, lab)
    return _Analysis(rgb=rgb_sharp, lab=lab, sal=sal, mask=mask)


def _clean(m: BoolArray, min_frac: float = 0.002) -> BoolArray:
    h, w = m.shape
    r = max(1, round(min(h, w) / 128))
    m = _open(m, r)
    m = _close(m, r)
    lab, n = _label(m)
    if n == 0:
        return m
    areas = np.bincount(lab.ravel(), minlength=n + 1)
    areas[0] = 0
    keep = areas >= max(min_frac * h * w, 4)
    keep[0] = False
    out = keep[lab]
    filled: BoolArray = _fill_holes(out)
    return filled


def _colour_refine(
    m: BoolArray,
    sal: NDArray[np.float64],
    lab: NDArray[np.float64],
    t: float,
    fg_seed: BoolArray | None = None,
) -> BoolArray:
    """GrabCut-like step without the graph cut.

    Foreground / background colour histograms are taken from the (eroded / dilated)
    current mask; each pixel's unary term is the histogram log-likelihood ratio plus
    its saliency relative to the threshold ``t``; a few mean-field iterations with a
    box neighbourhood supply the spatial smoothness.
    """
    h, w = m.shape
    if m.sum() < 16 or (~m).sum() < 16:
        return m
    r = max(1, round(min(h, w) / 64))
    fg_core = _erode(m, r)
    if fg_seed is not None and (fg_core & fg_seed).sum() >= 64:
        fg_core &= fg_seed
    bg_core = ~_dilate(m, r)
    if fg_core.sum() < 16:
        fg_core = m
    if bg_core.sum() < 16:
        bg_core = ~m
    if _COLOUR == "gmm":
        llr_pix = _gmm_loglik(_subsample(lab[fg_core], 4000), lab) - _gmm_loglik(_subsample(lab[bg_core], 4000), lab)
        llr_pix = np.clip(llr_pix, -_LLR_CLIP, _LLR_CLIP)
    else:
        nb = 16
        lo = np.array([0.0, -100.0, -110.0])
        hi = np.array([100.0, 100.0, 100.0])
        q = np.clip(((lab - lo) / (hi - lo) * nb).astype(np.int64), 0, nb - 1)
        idx = (q[..., 0] * nb + q[..., 1]) * nb + q[..., 2]
        hf = np.bincount(idx[fg_core], minlength=nb**3).astype(np.float64).reshape(nb, nb, nb)
        hb = np.bincount(idx[bg_core], minlength=nb**3).astype(np.float64).reshape(nb, nb, nb)
        hf = _blur3(hf)
        hb = _blur3(hb)
        hf /= hf.sum()
        hb /= hb.sum()
        eps = 1e-5
        llr = np.log(hf + eps) - np.log(hb + eps)
        llr_pix = np.clip(llr.ravel()[idx], -4.0, 4.0)
    unary = 0.5 * llr_pix + _SAL_W * (sal - t)
    rs = max(1, round(min(h, w) / 100))
    prob = 1.0 / (1.0 + np.exp(-np.clip(unary, -30, 30)))
    for _ in range(4):
        field = unary + 3.0 * (2.0 * _box_mean(prob, rs) - 1.0)
        prob = 1.0 / (1.0 + np.exp(-np.clip(field, -30, 30)))
    return _clean(prob > 0.5)


def _gmm_loglik(samples: NDArray[np.float64], lab: NDArray[np.float64], k: int = 12) -> NDArray[np.float64]:
    """Log-likelihood of every pixel under an isotropic Gaussian mixture fitted to ``samples``."""
    cent = _kmeans(samples, k, iters=6)
    k = len(cent)
    d2 = ((samples[:, None, :] - cent[None]) ** 2).sum(-1)
    a = np.argmin(d2, axis=1)
    n = np.bincount(a, minlength=k).astype(np.float64)
    var = np.bincount(a, weights=d2[np.arange(len(a)), a], minlength=k) / np.maximum(n, 1.0) / 3.0
    var = np.maximum(var, 4.0)
    logw = np.log(np.maximum(n, 0.5) / n.sum())
    flat = lab.reshape(-1, 3)
    best = np.full(len(flat), -np.inf)
    terms = []
    for j in range(k):
        dj = ((flat - cent[j]) ** 2).sum(1)
        tj = logw[j] - 1.5 * np.log(2 * np.pi * var[j]) - dj / (2 * var[j])
        terms.append(tj)
        np.maximum(best, tj, out=best)
    acc = np.zeros(len(flat))
    for tj in terms:
        acc += np.exp(tj - best)
    out: NDArray[np.float64] = (best + np.log(acc)).reshape(lab.shape[:2])
    return out


def _blur3(hist: NDArray[np.float64]) -> NDArray[np.float64]:
    """[1, 2, 1] smoothing of a 3-D histogram along each axis."""
    out = hist
    for ax in range(3):
        p = np.pad(out, [(1, 1) if a == ax else (0, 0) for a in range(3)], mode="edge")
        sl_lo = tuple(slice(0, -2) if a == ax else slice(None) for a in range(3))
        sl_mid = tuple(slice(1, -1) if a == ax else slice(None) for a in range(3))
        sl_hi = tuple(slice(2, None) if a == ax else slice(None) for a in range(3))
        out = (p[sl_lo] + 2 * p[sl_mid] + p[sl_hi]) / 4
    return out


def _binarise(sal: NDArray[np.float64], lab: NDArray[np.float64]) -> BoolArray:
    t = _otsu(sal)
    t = max(t, 0.2)
    m = _clean(sal > t)
    fg_seed: BoolArray | None = None
    if _TRIMAP:
        upper = sal[m]
        if upper.size > 64:
            fg_seed = sal > _otsu(upper)
    for _ in range(_PASSES):
        m = _colour_refine(m, sal, lab, t, fg_seed)
    return m


# ----------------------------------------------------------------------------
# upsampling, refinement and geometry
# ----------------------------------------------------------------------------


def _guided_filter_gray(guide: NDArray[np.float64], p: NDArray[np.float64], r: int, eps: float) -> NDArray[np.float64]:
    mean_i = _box_mean(guide, r)
    mean_p = _box_mean(p, r)
    corr_ip = _box_mean(guide * p, r)
    var_i = _box_mean(guide * guide, r) - mean_i * mean_i
    a = (corr_ip - mean_i * mean_p) / (var_i + eps)
    b = mean_p - a * mean_i
    out: NDArray[np.float64] = _box_mean(a, r) * guide + _box_mean(b, r)
    return out


def _guided_filter_color(guide: NDArray[np.float64], p: NDArray[np.float64], r: int, eps: float) -> NDArray[np.float64]:
    h, w, _ = guide.shape
    mean_i = _box_mean(guide, r)  # (h, w, 3)
    mean_p = _box_mean(p, r)
    cov_ip = _box_mean(guide * p[..., None], r) - mean_i * mean_p[..., None]
    sigma = np.empty((h, w, 3, 3))
    for i in range(3):
        for j in range(i, 3):
            v = _box_mean(guide[..., i] * guide[..., j], r) - mean_i[..., i] * mean_i[..., j]
            sigma[..., i, j] = v
            sigma[..., j, i] = v
    sigma += eps * np.eye(3)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(-1)
    out: NDArray[np.float64] = (_box_mean(a, r) * guide).sum(-1) + _box_mean(b, r)
    return out


def _local_alpha(m: BoolArray, rgb: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sub-pixel alpha along the mask edge at working resolution.

    In a 2-pixel band around the edge each pixel's colour is projected onto the line
    between the local mean foreground and background colours (taken from the pure
    regions either side of the band), the usual linear-mixing model of an edge.
    """
    band = _dilate(m, 2) & ~_erode(m, 2)
    out = m.astype(np.float64)
    if not band.any():
        return out
    fg = _erode(m, 2)
    bg = ~_dilate(m, 2)
    r = 5
    nf = _box_mean(fg, r)
    nb = _box_mean(bg, r)
    mf = _box_mean(rgb * fg[..., None], r) / np.maximum(nf, 1e-9)[..., None]
    mb = _box_mean(rgb * bg[..., None], r) / np.maximum(nb, 1e-9)[..., None]
    diff = mf - mb
    den = (diff * diff).sum(-1)
    ok = band & (nf > 0.02) & (nb > 0.02) & (den > 0.06**2 * 3)
    alpha = ((rgb - mb) * diff).sum(-1) / np.maximum(den, 1e-9)
    alpha = np.clip(alpha, 0.0, 1.0)
    out[ok] = alpha[ok]
    # a light smoothing of the band only (textured backgrounds make alpha noisy)
    sm = _blur(out, 0.7)
    out[band] = sm[band]
    return out


def _upsample_mask(
    m_small: BoolArray, rgb_small: NDArray[np.float64], image: Image.Image, refine_mask: int
) -> tuple[BoolArray, FloatArray]:
    """Sub-pixel alpha + bilinear upsampling of a working-size mask; optional guided-filter refinement."""
    w0, h0 = image.size
    hs, ws = m_small.shape
    soft_small = _local_alpha(m_small, rgb_small)
    soft = _resize_float(soft_small, (w0, h0)).astype(np.float64)
    if refine_mask > 0 and m_small.any():
        scale = max(w0 / ws, h0 / hs, 1.0)
        # only process a band around the edge, inside the bounding box of interest
        band = (soft > 0.02) & (soft < 0.98)
        if band.any():
            ys, xs = np.nonzero(band)
            pad = int(4 * scale) + 8
            y1, y2 = max(0, int(ys.min()) - pad), min(h0, int(ys.max()) + pad + 1)
            x1, x2 = max(0, int(xs.min()) - pad), min(w0, int(xs.max()) + pad + 1)
            crop = image.convert("RGB").crop((x1, y1, x2, y2))
            guide = np.asarray(crop, dtype=np.float64) / 255.0
            p = soft[y1:y2, x1:x2]
            r = max(2, round(scale * (1.0 if refine_mask == 1 else 1.6)))
            if refine_mask == 1:
                q = _guided_filter_gray(guide @ np.array([0.299, 0.587, 0.114]), p, r, 1e-3)
                gain = 1.5
            else:
                q = _guided_filter_color(guide, p, r, 1e-4)
                gain = 2.0
            q = np.clip((q - 0.5) * gain + 0.5, 0.0, 1.0)
            # do not move the edge by more than the uncertainty band
            sub = soft[y1:y2, x1:x2]
            q = np.where(sub >= 0.98, np.maximum(q, sub * 0 + 1.0), q)
            q = np.where(sub <= 0.02, 0.0, q)
            soft[y1:y2, x1:x2] = q
    soft32 = np.clip(soft, 0.0, 1.0).astype(np.float32)
    mask: BoolArray = soft32 >= 0.5
    soft32[mask & (soft32 < 0.5)] = 0.5
    return mask, soft32


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box ``(x1, y1, x2, y2)`` of the ``True`` pixels of a 2-D mask.

    ``x1``/``y1`` are inclusive and ``x2``/``y2`` exclusive; ``(0, 0, 0, 0)`` for an
    empty mask.
    """
    m = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    if len(rows) == 0:
        return (0, 0, 0, 0)
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def _simplify(points: NDArray[np.float64], tol: float) -> NDArray[np.float64]:
    """Ramer-Douglas-Peucker on a closed polygon (first point == last point allowed)."""
    n = len(points)
    if n <= 4:
        return points
    # split the closed ring at the point farthest from the first one
    d0 = ((points - points[0]) ** 2).sum(1)
    far = int(np.argmax(d0))
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[far] = keep[-1] = True
    stack = [(0, far), (far, n - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        seg = points[i + 1 : j]
        a, b = points[i], points[j]
        ab = b - a
        norm = float(np.hypot(ab[0], ab[1]))
        if norm < 1e-12:
            dist = np.hypot(seg[:, 0] - a[0], seg[:, 1] - a[1])
        else:
            dist = np.abs(ab[0] * (seg[:, 1] - a[1]) - ab[1] * (seg[:, 0] - a[0])) / norm
        k = int(np.argmax(dist))
        if dist[k] > tol:
            m = i + 1 + k
            keep[m] = True
            stack.append((i, m))
            stack.append((m, j))
    out: NDArray[np.float64] = points[keep]
    return out


def mask_contours(mask: np.ndarray, *, max_points: int = 300, min_area: float = 4.0) -> list[list[list[int]]]:
    """Outer boundary polygons of each connected component of a 2-D mask.

    The boundaries are the 0.5 iso-lines of the mask (computed with contourpy on a
    zero-padded copy, so every polygon is closed), i.e. they run half a pixel
    outside the ``True`` pixel centres.  Hole boundaries are dropped.  Each polygon
    is simplified with Ramer-Douglas-Peucker (tolerance 0.75 px, increased if needed)
    to at most ``max_points`` points, rounded to integer ``[x, y]`` pixel
    coordinates, and the closing point (a repeat of the first) is omitted.  Polygons
    enclosing less than ``min_area`` square pixels are skipped.  Largest first.
    """
    import contourpy  # local import: only needed here

    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any():
        return []
    z = np.pad(m.astype(np.float64), 1)
    gen = contourpy.contour_generator(z=z, line_type=contourpy.LineType.Separate)
    lines = gen.lines(0.5)
    polys: list[tuple[float, list[list[int]]]] = []
    for line in lines:
        pts = np.asarray(line, dtype=np.float64) - 1.0
        if len(pts) < 3:
            continue
        x, y = pts[:, 0], pts[:, 1]
        area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
        if area < min_area:  # holes have negative signed area
            continue
        tol = 0.75
        simp = _simplify(pts, tol)
        while len(simp) - 1 > max_points:
            tol *= 1.5
            simp = _simplify(pts, tol)
        if len(simp) > 1 and np.allclose(simp[0], simp[-1]):
            simp = simp[:-1]
        ipts = np.rint(simp).astype(int)
        poly: list[list[int]] = []
        for px, py in ipts.tolist():
            if not poly or poly[-1] != [px, py]:
                poly.append([px, py])
        if len(poly) >= 3:
            polys.append((area, poly))
    polys.sort(key=lambda t: -t[0])
    return [p for _, p in polys]


def _make_seg(m_small: BoolArray, an: _Analysis, image: Image.Image, refine_mask: int) -> Segmentation:
    sal = an.sal
    mask, soft = _upsample_mask(m_small, an.rgb, image, refine_mask)
    if m_small.any() and (~m_small).any():
        inside = float(sal[m_small].mean())
        outside = float(sal[~m_small].mean())
        score = float(np.clip(0.5 + 0.5 * (inside - outside) / max(inside, 1e-6), 0.0, 1.0))
        score = min(score, inside + 0.2)
    elif m_small.any():
        score = 0.3
    else:
        score = 0.0
    return Segmentation(
        mask=mask,
        soft=soft,
        bbox=mask_bbox(mask),
        contours=mask_contours(mask),
        score=round(float(np.clip(score, 0.0, 1.0)), 4),
    )


def _check_refine(refine_mask: int) -> int:
    if refine_mask not in (0, 1, 2):
        raise ValueError(f"refine_mask must be 0, 1 or 2, got {refine_mask!r}")
    return int(refine_mask)


def segment_saliency(image: Image.Image, *, refine_mask: int = 0) -> Segmentation:
    """Segment the salient subject of ``image`` (主体分割, ``saliency_seg``).

    The dominant object(s) are kept: every connected salient component whose area is
    at least 15 % of the largest one's.  ``refine_mask`` selects the edge refinement:
    0 = smooth bilinear upsampling of the working-resolution mask only, 1 = grey-level
    guided filter at full resolution, 2 = colour guided filter with a larger window
    (sharper, follows colour edges more closely; slower).  An image with no salient
    content gives an empty mask, ``bbox == (0, 0, 0, 0)`` and ``score == 0``.
    """
    refine = _check_refine(refine_mask)
    an = _analyse(image)
    lab, n = _label(an.mask)
    m = an.mask
    if n > 1:
        areas = np.bincount(lab.ravel(), minlength=n + 1)
        areas[0] = 0
        keep = areas >= 0.15 * areas.max()
        keep[0] = False
        m = keep[lab]
    return _make_seg(m, an, image, refine)


def segment_entities(image: Image.Image, *, max_entity: int = 20, refine_mask: int = 0) -> list[Segmentation]:
    """Segment the separate salient objects of ``image`` (智能分割, ``entity_seg``).

    Each connected component of the salient mask is one entity; they are returned
    largest first, at most ``max_entity`` of them (``max_entity < 1`` gives ``[]``).
    ``refine_mask`` has the meaning documented in :func:`segment_saliency`.
    """
    refine = _check_refine(refine_mask)
    if max_entity < 1:
        return []
    an = _analyse(image)
    lab, n = _label(an.mask)
    if n == 0:
        return []
    areas = np.bincount(lab.ravel(), minlength=n + 1)
    areas[0] = 0
    order = [int(i) for i in np.argsort(-areas, kind="stable") if i != 0 and areas[i] > 0][:max_entity]
    return [_make_seg(lab == i, an, image, refine) for i in order]


# ----------------------------------------------------------------------------
# output rendering
# ----------------------------------------------------------------------------


def _is_transparent(rgb: tuple[int, int, int]) -> bool:
    return tuple(rgb) == (-1, -1, -1)


def _bg_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    if _is_transparent(rgb):
        return (255, 255, 255)
    r, g, b = (int(np.clip(c, 0, 255)) for c in rgb)
    return (r, g, b)


def _rgba_cutout(image: Image.Image, soft: FloatArray, rgb: tuple[int, int, int]) -> Image.Image:
    base = np.asarray(image.convert("RGB"), dtype=np.uint8)
    alpha = np.rint(np.clip(soft, 0.0, 1.0) * 255).astype(np.uint8)
    if _is_transparent(rgb):
        return Image.fromarray(np.dstack([base, alpha]), mode="RGBA")
    colour = np.array(_bg_colour(rgb), dtype=np.float32)
    a = alpha.astype(np.float32)[..., None] / 255.0
    comp = np.rint(base.astype(np.float32) * a + colour * (1 - a)).astype(np.uint8)
    full = np.full(alpha.shape, 255, dtype=np.uint8)
    return Image.fromarray(np.dstack([comp, full]), mode="RGBA")


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

    * ``0`` - the subject cut out and cropped to ``seg.bbox``: one RGBA image (the
      service documents "BGRA"; RGBA is the same picture once encoded as PNG).
    * ``1`` - the mask only: one full-size ``"L"`` image, 0 / 255.
    * ``2`` - the subject composited (through the soft matte) onto a square ``"RGB"``
      canvas whose side is ``max(bbox width, bbox height)``, the subject centred;
      the canvas colour is ``rgb``, white when ``rgb == (-1, -1, -1)``.
    * ``3`` - full-size RGBA, background transparent.
    * ``4`` - two images: the full-size RGBA of mode 3, then the mask of mode 1.

    The transparent modes (0, 3, 4) are documented to require ``rgb = [-1, -1, -1]``;
    if a real colour is given there, the background is *filled* with that colour
    (alpha 255 everywhere, the matte blended against the colour) instead of being
    made transparent.  With an empty mask the cropped outputs (0, 2) are 1 x 1 pixels.
    """
    if only_mask not in (0, 1, 2, 3, 4):
        raise ValueError(f"only_mask must be 0..4, got {only_mask!r}")
    x1, y1, x2, y2 = seg.bbox
    empty = x2 <= x1 or y2 <= y1
    if only_mask == 1:
        return [_mask_image(seg.mask)]
    if only_mask in (3, 4):
        full = _rgba_cutout(image, seg.soft, rgb)
        return [full] if only_mask == 3 else [full, _mask_image(seg.mask)]
    if only_mask == 0:
        if empty:
            fill = (0, 0, 0, 0) if _is_transparent(rgb) else (*_bg_colour(rgb), 255)
            return [Image.new("RGBA", (1, 1), fill)]
        return [_rgba_cutout(image, seg.soft, rgb).crop((x1, y1, x2, y2))]
    # only_mask == 2
    colour = _bg_colour(rgb)
    if empty:
        return [Image.new("RGB", (1, 1), colour)]
    bw, bh = x2 - x1, y2 - y1
    side = max(bw, bh)
    canvas = Image.new("RGB", (side, side), colour)
    crop = image.convert("RGB").crop((x1, y1, x2, y2))
    alpha = Image.fromarray(np.rint(np.clip(seg.soft[y1:y2, x1:x2], 0, 1) * 255).astype(np.uint8), mode="L")
    canvas.paste(crop, ((side - bw) // 2, (side - bh) // 2), alpha)
    return [canvas]


def _palette(i: int) -> tuple[int, int, int]:
    """A deterministic, well-separated colour for entity ``i`` (golden-angle hues)."""
    import colorsys

    h = (i * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.95)
    return (round(r * 255), round(g * 255), round(b * 255))


def render_entity_outputs(
    image: Image.Image, segs: list[Segmentation], *, return_format: int
) -> list[Image.Image]:
    """Render the images the ``entity_seg`` service returns for a ``return_format``.

    ``segs`` is the list from :func:`segment_entities` (largest first); entity ``i``
    (0-based) below means ``segs[i]``.

    * ``0`` - one full-size ``"L"`` mask (0 / 255) per entity.
    * ``1`` - a single full-size ``"L"`` label map: 0 = background, ``i + 1`` = entity
      ``i`` (where entities overlap, the earlier, larger one wins).
    * ``2`` - one RGBA cut-out per entity, cropped to its bbox, background transparent.
    * ``3`` - a single ``"RGB"`` preview: the image with each entity tinted in its own
      colour (50 % blend) and outlined by its contours.
    * ``4`` - the masks of format 0 followed by the cut-outs of format 2
      (``2 * len(segs)`` images).

    No entities gives ``[]`` for formats 0, 2 and 4, an all-zero label map for 1 and
    the unmodified image for 3.
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
        from PIL import ImageDraw

        base = np.asarray(image.convert("RGB"), dtype=np.float32).copy()
        for i in range(len(segs) - 1, -1, -1):
            col = np.array(_palette(i), dtype=np.float32)
            m = segs[i].mask
            base[m] = base[m] * 0.5 + col * 0.5
        out = Image.fromarray(np.rint(base).astype(np.uint8), mode="RGB")
        draw = ImageDraw.Draw(out)
        lw = max(1, round(max(w, h) / 400))
        for i, s in enumerate(segs):
            for poly in s.contours:
                pts = [(p[0], p[1]) for p in poly]
                draw.line([*pts, pts[0]], fill=_palette(i), width=lw)
        return [out]
    masks = [_mask_image(s.mask) for s in segs]
    cuts = [render_saliency_outputs(image, s, only_mask=0)[0] for s in segs]
    return masks + cuts
