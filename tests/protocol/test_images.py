"""Input encoding and the documented limits (volcnb._images): real files, real Pillow decoding."""

from __future__ import annotations

import base64
import io
import pathlib
import warnings

import numpy as np
import pytest
from PIL import Image, features

from volcnb._exceptions import ValidationError
from volcnb.protocol.images import (
    DEFAULT_LIMITS,
    MB,
    EncodedImages,
    ImageLimits,
    encode_images,
    iva_payload,
    load_image,
)

RNG = np.random.default_rng(1234)


def noisy(w: int, h: int, mode: str = "RGB") -> Image.Image:
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = RNG.integers(0, 256, (h, w, channels), dtype=np.uint8)
    return Image.fromarray(arr[:, :, 0] if channels == 1 else arr)


def encoded(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def decode(b64: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    img.load()
    return img


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img)


# --- each input kind ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_pil_image_is_sent_as_lossless_png(mode: str) -> None:
    img = noisy(200, 150, mode)
    enc = encode_images(img)
    assert isinstance(enc, EncodedImages)
    assert enc.image_urls == []
    assert len(enc.binary_data_base64) == 1
    back = decode(enc.binary_data_base64[0])
    assert back.format == "PNG"
    assert back.mode == mode
    assert back.size == (200, 150)
    np.testing.assert_array_equal(pixels(back), pixels(img))
    # the original is kept for overlays, detached from the caller's object
    original = enc.originals[0]
    assert original is not None and original is not img
    np.testing.assert_array_equal(pixels(original), pixels(img))
    assert enc.params() == {"binary_data_base64": enc.binary_data_base64}


def test_pil_image_opened_from_jpeg_is_reencoded_as_jpeg(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "photo.jpg"
    noisy(300, 200).save(path, "JPEG", quality=90)
    with Image.open(path) as img:
        enc = encode_images(img)
    back = decode(enc.binary_data_base64[0])
    assert back.format == "JPEG"
    assert back.size == (300, 200)


def test_palette_and_bilevel_images_are_normalised() -> None:
    pal = noisy(130, 130).convert("P")
    bilevel = noisy(130, 130, "L").convert("1")
    enc = encode_images([pal, bilevel])
    a, b = (decode(s) for s in enc.binary_data_base64)
    assert a.mode == "RGB"
    np.testing.assert_array_equal(pixels(a), pixels(pal.convert("RGB")))
    assert b.mode == "L"
    np.testing.assert_array_equal(pixels(b), pixels(bilevel.convert("L")))


@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png"), ("BMP", "bmp")])
def test_file_bytes_are_sent_unchanged(tmp_path: pathlib.Path, fmt: str, ext: str) -> None:
    data = encoded(noisy(256, 128), fmt)
    path = tmp_path / f"in.{ext}"
    path.write_bytes(data)
    for given in (path, str(path)):
        enc = encode_images(given)
        assert base64.b64decode(enc.binary_data_base64[0]) == data
        assert enc.originals[0] is not None
        assert enc.originals[0].format == fmt
        assert enc.originals[0].size == (256, 128)


def test_jpeg_file_keeps_exif_and_exact_bytes(tmp_path: pathlib.Path) -> None:
    img = noisy(640, 480)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: would change if we re-encoded or transposed
    data = encoded(img, "JPEG", quality=77, exif=exif)
    path = tmp_path / "exif.jpeg"
    path.write_bytes(data)
    assert base64.b64decode(encode_images(path).binary_data_base64[0]) == data


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_bytes_are_sent_unchanged(kind: type) -> None:
    data = encoded(noisy(128, 4096, "L"), "PNG")
    enc = encode_images(kind(data))
    assert base64.b64decode(enc.binary_data_base64[0]) == data
    np.testing.assert_array_equal(pixels(decode(enc.binary_data_base64[0])), pixels(Image.open(io.BytesIO(data))))


def test_numpy_uint8_arrays() -> None:
    rgb = RNG.integers(0, 256, (150, 200, 3), dtype=np.uint8)
    grey = RNG.integers(0, 256, (150, 200), dtype=np.uint8)
    rgba = RNG.integers(0, 256, (150, 200, 4), dtype=np.uint8)
    single = grey[:, :, None]
    enc = encode_images([rgb, grey, rgba, single])
    modes = [decode(s).mode for s in enc.binary_data_base64]
    assert modes == ["RGB", "L", "RGBA", "L"]
    for arr, s in zip([rgb, grey, rgba, grey], enc.binary_data_base64, strict=True):
        np.testing.assert_array_equal(pixels(decode(s)), arr)


def test_numpy_float_and_bool_arrays() -> None:
    f = RNG.random((140, 130, 3))
    enc = encode_images(f)
    np.testing.assert_array_equal(pixels(decode(enc.binary_data_base64[0])), np.rint(f * 255).astype(np.uint8))
    f32 = RNG.random((140, 130)).astype(np.float32)
    np.testing.assert_array_equal(pixels(decode(encode_images(f32).binary_data_base64[0])),
                                  np.rint(f32 * 255).astype(np.uint8))
    b = RNG.random((140, 130)) > 0.5
    back = pixels(decode(encode_images(b).binary_data_base64[0]))
    np.testing.assert_array_equal(back, np.where(b, 255, 0))
    small_ints = RNG.integers(0, 256, (140, 130), dtype=np.int64)
    np.testing.assert_array_equal(pixels(decode(encode_images(small_ints).binary_data_base64[0])), small_ints)


def test_urls_are_passed_through() -> None:
    urls = ["https://example.com/a.jpg", "HTTP://example.com/b.png?x=1"]
    enc = encode_images(urls)
    assert enc.image_urls == urls
    assert enc.binary_data_base64 == []
    assert enc.originals == [None, None]
    assert enc.params() == {"image_urls": urls}
    assert encode_images(urls[0]).image_urls == [urls[0]]


def test_several_local_images_in_order(tmp_path: pathlib.Path) -> None:
    a = encoded(noisy(128, 128), "PNG")
    p = tmp_path / "b.bmp"
    p.write_bytes(encoded(noisy(129, 130), "BMP"))
    enc = encode_images((a, p, noisy(131, 132)))
    assert [decode(s).size for s in enc.binary_data_base64] == [(128, 128), (129, 130), (131, 132)]
    assert [o.size for o in enc.originals if o is not None] == [(128, 128), (129, 130), (131, 132)]


def test_generator_input() -> None:
    enc = encode_images(noisy(128, 128) for _ in range(2))
    assert len(enc.binary_data_base64) == 2


def test_big_smooth_array_falls_back_to_jpeg_with_a_warning() -> None:
    n = 1500
    y, x = np.mgrid[0:n, 0:n]
    arr = np.stack([x * 255 / n, y * 255 / n, (x + y) * 127 / n], -1) + RNG.normal(0, 6, (n, n, 3))
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    with pytest.warns(UserWarning, match=r"image\[0\].*JPEG quality 95"):
        enc = encode_images(arr)
    back = decode(enc.binary_data_base64[0])
    assert back.format == "JPEG"
    assert len(enc.binary_data_base64[0]) <= DEFAULT_LIMITS.max_base64_chars
    assert np.abs(pixels(back).astype(int) - arr).mean() < 5  # the added noise is what JPEG drops


def test_small_pil_image_gives_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode_images(noisy(300, 300))


# --- documented limits -------------------------------------------------------------------------------


def raises(obj: object, expected_field: str, *words: str, **kw: object) -> ValidationError:
    """encode_images(obj) fails with a ValidationError naming the field, a limit and every word."""
    with pytest.raises(ValidationError) as info:
        encode_images(obj, **kw)  # type: ignore[arg-type]
    err = info.value
    field = expected_field
    assert err.field == field
    assert err.limit
    msg = str(err)
    assert field in msg
    for w in words:
        assert w in msg, (w, msg)
    assert isinstance(err, ValueError)
    return err


@pytest.mark.parametrize("size", [(127, 300), (300, 127), (127, 127)])
def test_side_below_128_px(size: tuple[int, int]) -> None:
    w, h = size
    raises(noisy(w, h), "image[0]", f"{w}×{h} px", "128–4096 px")
    raises(encoded(noisy(w, h), "PNG"), "image[0]", f"{w}×{h} px", "128–4096 px")
    raises(np.zeros((h, w, 3), np.uint8), "image[0]", f"{w}×{h} px")


def test_side_above_4096_px(tmp_path: pathlib.Path) -> None:
    big = Image.new("L", (4097, 200), 7)
    path = tmp_path / "wide.png"
    big.save(path)
    raises(path, "image[0]", "4097×200 px", "128–4096 px", str(path))
    raises(big, "image[0]", "4097×200 px")
    raises([noisy(128, 128), Image.new("RGB", (128, 4097))], "image[1]", "128×4097 px")


def test_exact_bounds_are_accepted() -> None:
    enc = encode_images([Image.new("L", (128, 4096), 3), Image.new("RGB", (4096, 128))])
    assert [decode(s).size for s in enc.binary_data_base64] == [(128, 4096), (4096, 128)]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "TIFF"])
def test_unsupported_formats(tmp_path: pathlib.Path, fmt: str) -> None:
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    path = tmp_path / f"in.{fmt.lower()}"
    noisy(200, 200).save(path, fmt)
    err = raises(path, "image[0]", f"a {fmt} image", "JPEG, PNG or BMP")
    assert "PIL.Image.open" in str(err)  # the message says how to get it sent anyway
    raises([encoded(noisy(200, 200), "PNG"), path.read_bytes()], "image[1]", fmt)
    # the same picture opened with Pillow is accepted (re-encoded as PNG)
    with Image.open(path) as img:
        assert decode(encode_images(img).binary_data_base64[0]).format == "PNG"


def test_corrupt_bytes() -> None:
    raises(b"definitely not an image", "image[0]", "not a decodable image")
    raises([encoded(noisy(128, 128), "PNG"), b"\x89PNG\r\n\x1a\nxxxx"], "image[1]", "not a decodable image")


def test_truncated_file_is_caught(tmp_path: pathlib.Path) -> None:
    data = encoded(noisy(300, 300), "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    raises(path, "image[0]", "corrupt PNG")
    data = encoded(noisy(300, 300), "JPEG")
    raises(data[: len(data) // 3], "image[0]", "corrupt JPEG")


def test_empty_bytes() -> None:
    raises(b"", "image[0]", "empty")


def test_base64_over_4_7_mb(tmp_path: pathlib.Path) -> None:
    # 1400×1400 RGB noise: PNG cannot compress it, ~5.6 MB of file, ~7.5 MB of base64; sides are fine.
    path = tmp_path / "noise.png"
    noisy(1400, 1400).save(path)
    chars = len(base64.b64encode(path.read_bytes()))
    assert chars > int(4.7 * MB)
    err = raises(path, "image[0]", f"{chars:,} characters", "4.7 MB", "4,928,307 characters")
    assert err.limit is not None and "4.7 MB" in err.limit
    # an alpha picture is never silently flattened to JPEG: it is refused
    raises(noisy(1300, 1300, "RGBA"), "image[0]", "4.7 MB")


def test_two_images_over_8_mb_together() -> None:
    # each ≈ 4.2 MB of base64 (under 4.7), together ≈ 8.4 MB (over 8 = 8,388,608 characters)
    imgs = [encoded(noisy(1100, 1000), "PNG", compress_level=0) for _ in range(2)]
    lengths = [len(base64.b64encode(b)) for b in imgs]
    assert all(n <= DEFAULT_LIMITS.max_base64_chars for n in lengths)
    assert sum(lengths) > 8 * MB
    raises(imgs, "image", "8 MB", f"{sum(lengths):,} characters", "8,388,608")
    # a single image needs no total check; each alone is fine
    assert len(encode_images(imgs[0]).binary_data_base64) == 1


def test_mixing_urls_and_local_images() -> None:
    err = raises(["https://example.com/a.jpg", noisy(128, 128)], "image", "binary_data_base64", "image_urls")
    assert "[0]" in str(err) and "[1]" in str(err)


def test_missing_path_and_directory(tmp_path: pathlib.Path) -> None:
    raises(str(tmp_path / "nope.jpg"), "image[0]", "nope.jpg", "neither an existing file nor an http(s) URL")
    raises(tmp_path / "nope.jpg", "image[0]", "nope.jpg")
    raises(tmp_path, "image[0]", "directory")
    raises("ftp://example.com/a.jpg", "image[0]", "http(s) URL")


def test_bad_url() -> None:
    raises("https:///nohost.jpg", "image[0]", "not a valid http(s) URL")


def test_other_bad_inputs() -> None:
    raises([], "image", "no images")
    raises(12, "image", "int")
    raises([noisy(128, 128), 3.5], "image[1]", "float")
    raises(np.zeros((2, 130, 130, 3), np.uint8), "image[0]", "(2, 130, 130, 3)", "list(array)")
    raises(np.zeros((130, 130, 2), np.uint8), "image[0]", "(130, 130, 2)")
    raises(np.full((130, 130), 2.0), "image[0]", "0..1", "0..2")
    raises(np.full((130, 130), np.nan), "image[0]", "NaN")
    raises(np.full((130, 130), 300, np.int32), "image[0]", "0..255", "300")
    raises(np.zeros((130, 130), np.complex64), "image[0]", "complex64")


def test_field_name_is_used() -> None:
    raises(noisy(10, 10), "face[0]", "face[0] is 10×10 px", field="face")


def test_custom_limits() -> None:
    limits = ImageLimits(min_side=16, max_side=64, formats=("PNG",))
    assert len(encode_images(noisy(16, 64), limits=limits).binary_data_base64) == 1
    raises(noisy(65, 20), "image[0]", "16–64 px", limits=limits)
    raises(encoded(noisy(20, 20), "JPEG"), "image[0]", "only PNG", limits=limits)


# --- load_image --------------------------------------------------------------------------------------


def test_load_image_kinds(tmp_path: pathlib.Path) -> None:
    img = noisy(50, 40)  # no size limits here: this is for display
    path = tmp_path / "x.gif"
    img.save(path)
    assert load_image(img) is img
    assert load_image(path).size == (50, 40)
    assert load_image(encoded(img, "PNG")).size == (50, 40)
    assert load_image(np.zeros((4, 5), np.uint8)).size == (5, 4)
    with pytest.raises(ValidationError, match="URL"):
        load_image("https://example.com/a.png")
    with pytest.raises(ValidationError, match="not a decodable image"):
        load_image(b"junk")


# --- IVA uploads ---------------------------------------------------------------------------------------


def test_iva_url() -> None:
    assert iva_payload("https://h.example/dir/a%20b.jpg?sig=1", None, kind="image") == (
        "a b.jpg", "https://h.example/dir/a%20b.jpg?sig=1", None)
    assert iva_payload("https://h.example/", None, kind="video") == ("video.mp4", "https://h.example/", None)
    assert iva_payload("https://h.example/x.mp4", "clip", kind="video")[0] == "clip"


def test_iva_path_bytes_and_pil(tmp_path: pathlib.Path) -> None:
    data = encoded(noisy(64, 64), "PNG")
    path = tmp_path / "pic.png"
    path.write_bytes(data)
    # a path stays a path: the upload streams it from disk
    assert iva_payload(path, None, kind="image") == ("pic.png", None, ("pic.png", path, "image/png"))
    assert iva_payload(str(path), "named", kind="image") == ("named", None, ("pic.png", path, "image/png"))
    jpg = encoded(noisy(64, 64), "JPEG")
    name, url, file = iva_payload(jpg, None, kind="image")
    assert (name, url) == ("image.jpg", None)
    assert file == ("image.jpg", jpg, "image/jpeg")
    name, _, file = iva_payload(data, None, kind="image")
    assert name == "image.png" and file is not None and file[2] == "image/png"
    name, _, file = iva_payload(noisy(64, 64, "RGBA"), None, kind="image")
    assert name == "image.png" and file is not None
    assert Image.open(io.BytesIO(file[1])).mode == "RGBA"


def test_iva_video(tmp_path: pathlib.Path) -> None:
    mp4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100
    assert iva_payload(mp4, None, kind="video") == ("video.mp4", None, ("video.mp4", mp4, "video/mp4"))
    path = tmp_path / "clip.mov"
    path.write_bytes(mp4)
    name, _, file = iva_payload(path, None, kind="video")
    assert name == "clip.mov" and file == ("clip.mov", path, "video/quicktime")
    with pytest.raises(ValidationError) as info:
        iva_payload(noisy(64, 64), None, kind="video")
    assert info.value.field == "VideoFile"
    # a video must be a video, whatever its name says: sniffed from its first bytes
    fake = tmp_path / "notes.mp4"
    fake.write_bytes(b"just some text, not a video")
    with pytest.raises(ValidationError, match="VideoFile is not a video") as info:
        iva_payload(fake, None, kind="video")
    assert info.value.field == "VideoFile" and info.value.limit == "a video container"
    for head, mime in ((b"\x1aE\xdf\xa3" + b"\x00" * 20 + b"webm", "video/webm"), (b"RIFF\0\0\0\0AVI LIST", "video/x-msvideo"),
                       (b"FLV\x01\x05", "video/x-flv"), (b"\x00\x00\x01\xba" + b"\0" * 8, "video/mpeg")):
        assert iva_payload(head, None, kind="video")[2][2] == mime  # type: ignore[index]


def test_iva_image_limit_50_mb(tmp_path: pathlib.Path) -> None:
    blob = b"\xff\xd8\xff" + b"\x00" * (50 * MB - 2)
    with pytest.raises(ValidationError) as info:
        iva_payload(blob, None, kind="image")
    assert info.value.field == "ImageFile"
    assert "50 MB" in str(info.value) and f"{len(blob):,} bytes" in str(info.value)
    path = tmp_path / "big.jpg"
    with path.open("wb") as fh:  # a sparse file: refused from its size, before it is read
        fh.seek(50 * MB)
        fh.write(b"\0")
    with pytest.raises(ValidationError, match="50 MB"):
        iva_payload(path, None, kind="image")
    # exactly 50 MB is allowed, and videos have no documented limit
    assert iva_payload(blob[:-1], None, kind="image")[2] is not None
    video = b"\x00\x00\x00\x18ftypmp42" + blob  # videos have no documented limit
    assert iva_payload(video, None, kind="video")[2] is not None
    with pytest.raises(ValidationError, match="not a video"):  # ... but a JPEG is no video
        iva_payload(blob, None, kind="video")


def test_iva_bad_inputs(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValidationError, match="neither an existing file"):
        iva_payload(tmp_path / "missing.jpg", None, kind="image")
    with pytest.raises(ValidationError, match="empty"):
        iva_payload(b"", None, kind="image")
    with pytest.raises(ValidationError, match="int"):
        iva_payload(5, None, kind="image")
