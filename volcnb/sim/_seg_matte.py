"""The alpha matte: sub-pixel edges, upsampling to the original size, guided edge refinement."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ._seg_ops import F64, BoolArray, FloatArray, _blur, _box_mean, _dilate, _erode, _resize_float

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


