"""The background model and saliency at working resolution, and their binarisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
from PIL import Image, ImageFilter

from ._seg_ops import (
    _LOCALITY,
    _MIN_SIDE,
    _NOISE_K,
    _RING_THICK,
    _RING_THIN,
    _SAL_WEIGHT,
    F64,
    WORK_SIDE,
    BoolArray,
    _blur,
    _box_mean,
    _close,
    _dilate,
    _erode,
    _fill_holes,
    _kmeans,
    _label,
    _matmul,
    _min_dist,
    _nearest,
    _open,
    _otsu,
    _resize_float,
    _sq_dists,
    _srgb_to_lab,
    _subsample,
)

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
    return cast(BoolArray, ring)


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
    return cast(BoolArray, out)


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


