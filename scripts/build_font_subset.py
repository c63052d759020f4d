#!/usr/bin/env python3
"""Build the CJK font subset shipped in ``volcnb/_fonts/`` (run by hand, not by CI).

Source
    Debian (bookworm) package ``fonts-noto-cjk`` 1:20220127+repack1-1::

        apt-get install fonts-noto-cjk
        /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc   (face index 2 = "Noto Sans CJK SC")

    Licence: SIL Open Font License 1.1 (``/usr/share/doc/fonts-noto-cjk/copyright``,
    "License: SIL-1.1"); copied into ``volcnb/_fonts/OFL.txt`` together with the font's own
    copyright notice (name ID 0) and the reserved font name ("Source", inherited from Source Han Sans).

What the script does
    1. Extracts the SC face from the collection (a .ttc cannot be loaded by matplotlib's ``addfont``).
    2. Subsets it with ``fontTools.subset`` to: printable ASCII, Latin-1 punctuation/symbols, general
       punctuation (quotes, dashes, ellipsis, bullets), CJK symbols & punctuation (U+3000–U+303F),
       half-/full-width forms (U+FF01–U+FF5E, U+FFE0–U+FFE6), the non-hanzi symbol rows of GB 2312 that
       are punctuation/number forms (rows 1–3), the 3,755 GB 2312 level-1 hanzi (bytes 0xB0A1–0xD7F9,
       the most common characters) and the 3,008 level-2 hanzi (0xD8A1–0xF7FE) — 6,763 in all, generated
       by decoding those byte ranges with Python's ``gb2312`` codec (no download).  Level 2 is included
       because it costs only ~1 MB and makes user-supplied watermark text far less likely to be refused.
       The ``.notdef`` outline is kept (``notdef_outline``) so a missing glyph is *visible* as a box
       rather than silently blank; ``volcnb._font.missing_glyphs`` lets callers refuse such text first.
    3. Converts the CFF (cubic) outlines to TrueType ``glyf`` (quadratic) outlines with ``fontTools.cu2qu``
       (max error 1 font unit at 1000 UPM), so every consumer — Pillow/FreeType, matplotlib's Agg *and*
       its PDF/PS (Type 42) backends — can use it.  Hinting is dropped (the CFF hints do not convert).
    4. Renames the family to "Volcnb Sans SC" (OFL: a Modified Version must not use a Reserved Font Name;
       "Noto" is also a Google trademark), so it never shadows a system-installed Noto CJK.

Usage::

    .venv/bin/python scripts/build_font_subset.py [--source PATH.ttc] [--face 2] [--out volcnb/_fonts]

The output is deterministic for a given source file and fontTools version (``head.modified`` and
``head.created`` are pinned).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import sys

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont, newTable

DEFAULT_SOURCE = pathlib.Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
DEFAULT_FACE = 2  # 0 JP, 1 KR, 2 SC, 3 TC, 4 HK in Debian's NotoSansCJK-Regular.ttc
DEBIAN_COPYRIGHT = pathlib.Path("/usr/share/doc/fonts-noto-cjk/copyright")
FAMILY = "Volcnb Sans SC"
PS_NAME = "VolcnbSansSC-Regular"
FILENAME = "VolcnbSansSC-Regular.ttf"
# 2022-01-27 00:00:00 UTC (the upstream release date) in seconds since 1904-01-01.
PINNED_TIMESTAMP = 3726000000


def gb2312_chars(rows: range, *, cols: range = range(0xA1, 0xFF)) -> str:
    """Decode every valid double-byte code in the given GB 2312 rows (lead bytes)."""
    out: list[str] = []
    for hi in rows:
        for lo in cols:
            try:
                out.append(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return "".join(out)


def wanted_text() -> str:
    """Return every character the subset must cover."""
    parts = [
        "".join(chr(c) for c in range(0x20, 0x7F)),  # printable ASCII
        "".join(chr(c) for c in range(0xA0, 0xC0)),  # Latin-1 punctuation & symbols (° ± × · « » …)
        "×÷",
        "".join(chr(c) for c in range(0x2010, 0x2028)),  # dashes, quotes, bullets, ellipsis
        "".join(chr(c) for c in range(0x2030, 0x203C)),  # per mille, primes, guillemets, ※
        "€™℃№←↑→↓√∞≈≠≤≥①②③④⑤⑥⑦⑧⑨⑩",
        "".join(chr(c) for c in range(0x3000, 0x3040)),  # CJK symbols & punctuation
        "".join(chr(c) for c in range(0xFF01, 0xFF5F)),  # full-width ASCII forms
        "".join(chr(c) for c in range(0xFFE0, 0xFFE7)),  # full-width signs
        gb2312_chars(range(0xA1, 0xA4)),  # GB 2312 rows 1-3: punctuation, number forms, full-width
        gb2312_chars(range(0xB0, 0xD8)),  # GB 2312 level-1 hanzi (3,755)
        gb2312_chars(range(0xD8, 0xF8)),  # GB 2312 level-2 hanzi (3,008)
    ]
    return "".join(dict.fromkeys("".join(parts)))


def cff_to_glyf(font: TTFont, max_err: float = 1.0) -> None:
    """Replace the CFF table with TrueType glyf/loca outlines (cubic → quadratic via cu2qu)."""
    glyph_order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = glyph_order
    glyf.glyphs = {}
    for name in glyph_order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, max_err, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf
    for tag in ("CFF ", "VORG"):
        if tag in font:
            del font[tag]
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for attr in (
        "maxZones",
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    maxp.maxComponentDepth = 0
    font["head"].glyphDataFormat = 0
    font["head"].indexToLocFormat = 0  # recalculated on save
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = glyph_order
    font.sfntVersion = "\x00\x01\x00\x00"


def rename(font: TTFont) -> None:
    """Give the Modified Version its own names (OFL §3) while keeping copyright/licence records."""
    name = font["name"]
    version = name.getDebugName(5) or ""
    m = re.search(r"Version\s+([\d.]+)", version)
    ver = m.group(1) if m else "1.0"
    records = {
        1: FAMILY,
        2: "Regular",
        3: f"{ver};volcnb;{PS_NAME}",
        4: f"{FAMILY} Regular",
        5: f"Version {ver}; subset of Noto Sans CJK SC by volcnb (scripts/build_font_subset.py)",
        6: PS_NAME,
        16: FAMILY,
        17: "Regular",
    }
    # Drop the old naming records (incl. the Noto trademark line, ID 7) but keep copyright (0),
    # manufacturer/designers (8-12) and the licence (13, 14).
    name.names = [n for n in name.names if n.nameID not in (*records, 7, 18, 21, 22, 25)]
    for nid, value in records.items():
        name.setName(value, nid, 3, 1, 0x409)


def write_licence(font: TTFont, out_dir: pathlib.Path) -> None:
    """Write OFL.txt: provenance + font copyright + the OFL text from Debian's copyright file."""
    copyright_notice = font["name"].getDebugName(0) or ""
    text = DEBIAN_COPYRIGHT.read_text(encoding="utf-8")
    m = re.search(r"^License: SIL-1\.1\n((?: .*\n?)+)", text, flags=re.MULTILINE)
    if not m:
        raise SystemExit(f"could not find the SIL-1.1 licence block in {DEBIAN_COPYRIGHT}")
    body_lines = []
    for line in m.group(1).splitlines():
        line = line[1:] if line.startswith(" ") else line
        body_lines.append("" if line == "." else line)
    body = "\n".join(body_lines).strip("\n")
    header = (
        f"{FILENAME} ({FAMILY}) is a Modified Version (subset, TrueType-outline conversion, renamed)\n"
        "of Noto Sans CJK SC Regular 2.004, as shipped in the Debian package fonts-noto-cjk\n"
        "1:20220127+repack1-1 (/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc).\n"
        "It was built with volcnb's scripts/build_font_subset.py.\n"
        "\n"
        f"Font copyright notice (name ID 0): {copyright_notice}\n"
        "Upstream notice: Copyright 2014-2021 Adobe (http://www.adobe.com/), with Reserved Font Name 'Source'.\n"
        "Noto is a trademark of Google Inc.\n"
        "\n"
        "This Font Software is licensed under the SIL Open Font License, Version 1.1.\n"
        "This license is copied below, and is also available with a FAQ at: https://openfontlicense.org\n"
        "\n"
    )
    (out_dir / "OFL.txt").write_text(header + body + "\n", encoding="utf-8")


def build(source: pathlib.Path, face: int, out_dir: pathlib.Path) -> pathlib.Path:
    """Build the subset and its licence file into ``out_dir``; return the font path."""
    collection = TTCollection(str(source), lazy=False)
    font = collection.fonts[face]
    family = font["name"].getDebugName(1)
    if family != "Noto Sans CJK SC":
        raise SystemExit(f"face {face} of {source} is {family!r}, expected 'Noto Sans CJK SC'")

    options = subset.Options()
    options.notdef_outline = True  # keep the box glyph so a missing char is visible, never blank
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.layout_features = ["kern", "ccmp"]
    options.drop_tables += ["vhea", "vmtx", "VORG", "BASE"]
    options.hinting = False
    options.desubroutinize = True
    options.glyph_names = False
    subsetter = subset.Subsetter(options=options)
    subsetter.populate(text=wanted_text())
    subsetter.subset(font)

    rename(font)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_licence(font, out_dir)
    cff_to_glyf(font)
    font["head"].created = PINNED_TIMESTAMP
    font["head"].modified = PINNED_TIMESTAMP
    font.recalcTimestamp = False

    out = out_dir / FILENAME
    font.save(str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=pathlib.Path, default=DEFAULT_SOURCE)
    parser.add_argument("--face", type=int, default=DEFAULT_FACE)
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path(__file__).resolve().parents[1] / "volcnb" / "_fonts",
    )
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"{args.source} not found: apt-get install fonts-noto-cjk", file=sys.stderr)
        return 1
    out = build(args.source, args.face, args.out)
    check = TTFont(str(out))
    cmap = check.getBestCmap()
    missing = [c for c in wanted_text() if ord(c) not in cmap and not c.isspace()]
    print(
        f"wrote {out} ({out.stat().st_size:,} bytes, {check['maxp'].numGlyphs} glyphs, "
        f"{len(cmap)} code points; {len(missing)} requested chars not in the source font, skipped: {''.join(missing)!r})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
