"""The CJK font shipped with volcnb (Pillow; :func:`volcnb.display.figures.cjk_family` registers it with matplotlib).

volcnb ships ``_fonts/VolcnbSansSC-Regular.ttf``: a subset of Noto Sans CJK SC Regular (SIL Open Font
License 1.1, see ``_fonts/OFL.txt``) with TrueType outlines, covering printable ASCII, common Latin-1 and
general punctuation, CJK symbols and punctuation, full-width forms and all 6,763 GB 2312 hanzi (the
3,755 level-1 "most common" characters plus the 3,008 level-2 ones).  So Chinese renders as real glyphs
on a plain ``pip install``, with no system font assumed.  ``scripts/build_font_subset.py`` rebuilds it.

Missing characters
    A character outside the subset (emoji, kana, hangul, rare hanzi, ...) would be drawn as the font's
    ``.notdef`` box ("tofu").  Nothing here substitutes silently: callers check first and decide —

    * :func:`missing_glyphs` / :func:`has_glyphs` tell which characters the font cannot draw (a cmap
      check; whitespace is ignored).  The simulator uses them to *reject* a ``logo_text_content`` it
      could not render, and :func:`volcnb.sim._watermark.apply_logo` raises ``ValueError`` for such text.
    * :func:`replace_missing` is the explicit fallback for free text that must be drawn anyway (e.g. a
      prompt printed on a simulated picture): each missing character becomes ``"?"`` (or a replacement
      of your choice), visibly and honestly, instead of a box.
"""

from __future__ import annotations

import functools
import pathlib
import threading

from PIL import ImageFont

__all__ = [
    "FAMILY",
    "font_path",
    "has_glyphs",
    "load_font",
    "missing_glyphs",
    "replace_missing",
]

FONT_FILE = "VolcnbSansSC-Regular.ttf"
"""File name of the shipped subset inside ``volcnb/_fonts``."""

FAMILY = "Volcnb Sans SC"
"""Family name of the shipped font (what matplotlib and font dialogs call it)."""

_tls = threading.local()


def font_path() -> pathlib.Path:
    """Return the path of the shipped CJK subset font (a TrueType ``.ttf``)."""
    return pathlib.Path(__file__).resolve().parent / "_fonts" / FONT_FILE


def load_font(size: int) -> ImageFont.FreeTypeFont:
    """Return the shipped font at ``size`` pixels as a Pillow font, cached per size (and per thread).

    The font uses Pillow's BASIC layout engine on purpose: it is available on every install (libraqm is
    optional) so rendered pixels are the same everywhere.  The cache is per thread because a FreeType
    face must not be used by two threads at once (Pillow only guards this itself from 12.2 on, and only
    matters without the GIL); within a thread the same object is returned for the same size, so do not
    mutate it (e.g. with ``set_variation_*``).

    Raises:
        ValueError: if ``size`` is not a positive integer.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"font size must be a positive int, got {size!r}")
    cache: dict[int, ImageFont.FreeTypeFont] | None = getattr(_tls, "fonts", None)
    if cache is None:
        cache = _tls.fonts = {}
    font = cache.get(size)
    if font is None:
        if len(cache) >= 64:  # bounded: drop the oldest size
            del cache[next(iter(cache))]
        font = cache[size] = ImageFont.truetype(str(font_path()), size, layout_engine=ImageFont.Layout.BASIC)
    return font


@functools.cache
def _codepoints() -> frozenset[int]:
    """The code points the shipped font maps to a glyph (read once from its cmap)."""
    from fontTools.ttLib import TTFont  # type: ignore[import-untyped, unused-ignore]  # via matplotlib

    font = TTFont(str(font_path()), lazy=True)
    try:
        cmap = font.getBestCmap()
        return frozenset(cmap) if cmap else frozenset()
    finally:
        font.close()


def missing_glyphs(text: str) -> list[str]:
    """Return the characters of ``text`` the shipped font has no glyph for.

    Each missing character appears once, in order of first occurrence.  Whitespace (spaces, tabs,
    newlines, ideographic space, ...) is never reported: it needs no glyph.
    """
    have = _codepoints()
    out: dict[str, None] = {}
    for ch in text:
        if not ch.isspace() and ord(ch) not in have:
            out.setdefault(ch, None)
    return list(out)


def has_glyphs(text: str) -> bool:
    """Return True if every non-whitespace character of ``text`` has a glyph in the shipped font."""
    return not missing_glyphs(text)


def replace_missing(text: str, replacement: str = "?") -> str:
    """Return ``text`` with every character the font cannot draw replaced by ``replacement``.

    The explicit fallback for free text that must be drawn anyway; ``replacement`` itself should be
    drawable (the default ``"?"`` is).  Whitespace is kept as is.
    """
    have = _codepoints()
    return "".join(ch if ch.isspace() or ord(ch) in have else replacement for ch in text)
