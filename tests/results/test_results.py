"""Result / SegmentationResult (volcnb._results) over payloads shaped like the 同步转异步 document's GetResult example."""

from __future__ import annotations

import base64
import io
import json
import pathlib
import pickle
from typing import Any

import numpy as np
import pytest
from PIL import Image

from volcnb._exceptions import ProtocolError
from volcnb.results import Result, SegmentationResult

RNG = np.random.default_rng(7)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def noisy(w: int, h: int, mode: str = "RGB") -> Image.Image:
    c = {"RGB": 3, "RGBA": 4}.get(mode, 1)
    arr = RNG.integers(0, 256, (h, w, c), dtype=np.uint8)
    return Image.fromarray(arr[:, :, 0] if c == 1 else arr)


W, H = 320, 240
RECT = (40, 30, 199, 149)  # x1, y1, x2, y2 inclusive corners of the subject


def rect_mask() -> np.ndarray:
    m = np.zeros((H, W), bool)
    x1, y1, x2, y2 = RECT
    m[y1:y2 + 1, x1:x2 + 1] = True
    return m


def seed_payload(**extra: Any) -> dict[str, Any]:
    """The 同步转异步 document's saliency example, scaled down, with one real mask picture after the empty entry."""
    x1, y1, x2, y2 = RECT
    mask_png = png_bytes(Image.fromarray(np.where(rect_mask(), 255, 0).astype(np.uint8)))
    data: dict[str, Any] = {
        "algorithm_base_resp": {"status_code": 0, "status_message": "Success"},
        "bbox": [[x1, y1, x2, y2]],
        "binary_data_base64": ["", b64(mask_png)],
        "contours_point": [[[[x1, y1], [x2, y1], [x2, y2], [x1, y2]]]],
        "ori_height": [H],
        "ori_width": [W],
        "seg_score": [0.005572378635406494],
        "shadow": [None],
        "shadow_pos": [None],
        "response_data": json.dumps({"note": "算法信息"}),
    }
    data.update(extra)
    return data


def saliency(**kw: Any) -> SegmentationResult:
    data = kw.pop("data", None) or seed_payload()
    res = Result.from_data(req_key="saliency_seg", task_id="7418049665255653414", data=data,
                           request_id="202408151152110AC5DB88EDFEDACF402A", time_elapsed="1.440610819s", **kw)
    assert isinstance(res, SegmentationResult)
    return res


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# --- Result ------------------------------------------------------------------------------------------


def test_empty_base64_entries_are_skipped() -> None:
    res = saliency()
    assert len(res.images) == 1
    img = res.images[0]
    assert img.size == (W, H) and img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img) > 0, rect_mask())
    assert res.images[0] is img  # decoded once
    assert res.response_data == {"note": "算法信息"}
    assert res.task_id == "7418049665255653414"
    assert res.request_id == "202408151152110AC5DB88EDFEDACF402A"
    assert res.time_elapsed == "1.440610819s"


def test_plain_result_for_other_req_keys() -> None:
    data = {"binary_data_base64": [b64(png_bytes(noisy(64, 32))), ""], "image_urls": [""]}
    res = Result.from_data(req_key="img2img_anime_accelerated_maintain_id", task_id="1", data=data)
    assert type(res) is Result
    assert [im.size for im in res.images] == [(64, 32)]
    assert res.image_urls == []
    assert res.response_data is None
    assert res.video_url is None


def test_images_from_downloaded_urls() -> None:
    pic = png_bytes(noisy(50, 40))
    url = "https://p.example/out/0.png?X-Tos-Signature=secretish"
    data = {"binary_data_base64": [], "image_urls": ["", url]}
    res = Result.from_data(req_key="jimeng_t2i_v30", task_id="9", data=data, downloads={url: pic})
    assert res.image_urls == [url]
    assert [im.size for im in res.images] == [(50, 40)]
    bare = Result.from_data(req_key="jimeng_t2i_v30", task_id="9", data=data)
    assert bare.images == []
    assert "1 URL not downloaded" in repr(bare)
    assert bare.preview_png() is None
    assert "not downloaded" in bare._repr_html_()


def test_base64_wins_over_urls() -> None:
    pic = noisy(30, 20)
    data = {"binary_data_base64": [b64(png_bytes(pic))], "image_urls": ["https://p.example/a.png"]}
    res = Result.from_data(req_key="x", task_id="1", data=data, downloads={"https://p.example/a.png": b"ignored"})
    assert [im.size for im in res.images] == [(30, 20)]


def test_corrupt_base64_names_the_index() -> None:
    data = {"binary_data_base64": ["", b64(png_bytes(noisy(8, 8))), "@@not base64@@"]}
    res = Result.from_data(req_key="x", task_id="42", data=data)
    with pytest.raises(ProtocolError, match=r"binary_data_base64\[2\] is not valid base64") as info:
        _ = res.images
    assert info.value.task_id == "42"
    assert "images undecodable" in repr(res)  # display never raises
    assert res.preview_png() is None
    assert "binary_data_base64[2]" in res._repr_html_()


def test_undecodable_picture_names_the_index() -> None:
    res = Result.from_data(req_key="x", task_id="1", data={"binary_data_base64": [b64(b"not a picture")]})
    with pytest.raises(ProtocolError, match=r"binary_data_base64\[0\] is not a decodable image"):
        _ = res.images


def test_unpadded_and_wrapped_base64_are_tolerated() -> None:
    text = b64(png_bytes(noisy(10, 10))).rstrip("=")
    wrapped = "\n".join(text[i:i + 76] for i in range(0, len(text), 76))
    res = Result.from_data(req_key="x", task_id="1", data={"binary_data_base64": [wrapped]})
    assert res.images[0].size == (10, 10)


def test_save_writes_files_and_sidecar(tmp_path: pathlib.Path) -> None:
    jpg = jpeg_bytes(noisy(64, 48))
    png = png_bytes(noisy(20, 10, "RGBA"))
    bmp_buf = io.BytesIO()
    noisy(16, 16).save(bmp_buf, "BMP")
    data = {"binary_data_base64": [b64(jpg), "", b64(png), b64(bmp_buf.getvalue())],
            "response_data": "{}", "image_urls": ["https://p.example/a.jpg"]}
    res = Result.from_data(req_key="saliency_seg", task_id="123", data=data, options={"return_url": True})
    out = tmp_path / "new" / "dir"
    paths = res.save(out)
    assert [p.name for p in paths] == ["saliency_seg_123_0.jpg", "saliency_seg_123_1.png", "saliency_seg_123_2.png"]
    assert paths[0].read_bytes() == jpg  # original JPEG bytes, not re-encoded
    assert paths[1].read_bytes() == png
    with Image.open(paths[2]) as im:
        assert im.format == "PNG" and im.size == (16, 16)
        np.testing.assert_array_equal(np.asarray(im), np.asarray(res.images[2].convert("RGB")))
    meta = json.loads((out / "saliency_seg_123.json").read_text("utf-8"))
    assert meta["task_id"] == "123" and meta["req_key"] == "saliency_seg"
    assert meta["images"] == [p.name for p in paths]
    assert meta["options"] == {"return_url": True}
    assert "binary_data_base64" not in meta["data"]
    assert meta["data"]["image_urls"] == ["https://p.example/a.jpg"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*(p.name for p in paths), "saliency_seg_123.json"])
    # saving again (a re-run) replaces the files; a prefix renames them
    assert res.save(out) == paths
    assert [p.name for p in res.save(out, prefix="cat/01")] == ["cat_01_0.jpg", "cat_01_1.png", "cat_01_2.png"]


def test_save_serialises_option_objects(tmp_path: pathlib.Path) -> None:
    from volcnb.protocol.wire import LogoInfo

    res = saliency(options={"logo_info": LogoInfo(position=2, language=1)})
    res.save(tmp_path)
    meta = json.loads(next(tmp_path.glob("*.json")).read_text("utf-8"))
    assert meta["options"]["logo_info"]["position"] == 2


def test_repr_html_has_thumbnails_and_ids() -> None:
    big = noisy(1000, 500)
    data = {"binary_data_base64": [b64(jpeg_bytes(big)), b64(png_bytes(noisy(100, 80, "RGBA")))]}
    res = Result.from_data(req_key="saliency_seg", task_id="T-1", data=data, request_id="<script>x</script>",
                           time_elapsed="2s")
    out = res._repr_html_()
    assert out.count("<img") == 2
    assert "T-1" in out and "2s" in out
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "1000×500" in out and "100×80" in out and "RGBA" in out
    assert "width='256' height='128'" in out  # thumbnails ≤ 256 px
    assert "data:image/jpeg;base64," in out and "data:image/png;base64," in out


def test_repr_png_and_text_repr() -> None:
    res = saliency()
    png = res.preview_png()
    assert png is not None and png.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(png)).size == (W, H)
    text = repr(res)
    assert text.startswith("<SegmentationResult saliency_seg task_id=7418049665255653414")
    assert "1 image 320×240 L" in text and "score=0.005572" in text and "bbox=(40, 30, 199, 149)" in text
    many = Result.from_data(req_key="x", task_id="2",
                            data={"binary_data_base64": [b64(png_bytes(noisy(300, 100))) for _ in range(5)]})
    grid = Image.open(io.BytesIO(many.preview_png() or b""))
    assert grid.width <= 4 * 256 + 3 * 4 and grid.height > 64  # two rows of thumbnails
    assert "5 images 300×100 RGB, 300×100 RGB, 300×100 RGB, … +2" in repr(many)


def test_pickle_round_trip() -> None:
    inp = noisy(W, H)
    res = saliency(input_images=[inp], options={"return_url": False})
    _ = res.images, res.mask  # fill the caches
    back = pickle.loads(pickle.dumps(res))
    assert isinstance(back, SegmentationResult)
    assert back._images_cache is None and back._mask_cache is None
    assert back.task_id == res.task_id and back.data == res.data and back.options == res.options
    np.testing.assert_array_equal(np.asarray(back.images[0]), np.asarray(res.images[0]))
    np.testing.assert_array_equal(back.mask, res.mask)
    np.testing.assert_array_equal(np.asarray(back.input_images[0]), np.asarray(inp))


# --- SegmentationResult --------------------------------------------------------------------------------


def test_mask_from_rectangle_contour() -> None:
    res = saliency()
    mask = res.mask
    assert mask.dtype == bool and mask.shape == (H, W)
    assert iou(mask, rect_mask()) > 0.999
    np.testing.assert_array_equal(mask, rect_mask())
    assert res.bbox == RECT
    assert res.bboxes == [RECT]
    assert res.score == pytest.approx(0.005572378635406494)
    assert res.contours == [[(40, 30), (199, 30), (199, 149), (40, 149)]]
    assert res.ori_size == (W, H)
    mask[:] = False  # a copy: the cached mask is untouched
    assert res.mask.any()


def test_mask_from_simulator_contours() -> None:
    """The simulator's contours (0.5 iso-lines of the mask) rasterise back to (almost) the same mask."""
    from volcnb.sim._segment import mask_contours

    yy, xx = np.mgrid[0:H, 0:W]
    blob = ((xx - 150) / 90.0) ** 2 + ((yy - 120) / 60.0) ** 2 <= 1.0
    blob |= (xx > 250) & (xx < 300) & (yy > 20) & (yy < 70)
    data = seed_payload(contours_point=[mask_contours(blob)], binary_data_base64=[""])
    res = saliency(data=data)
    assert len(res.contours) == 2
    assert iou(res.mask, blob) > 0.95


def test_mask_ignores_later_images_for_saliency() -> None:
    data = seed_payload(contours_point=[[[[0, 0], [9, 0], [9, 9], [0, 9]]], [[[100, 100], [120, 100], [120, 120]]]])
    assert saliency(data=data).mask.sum() == 100


def test_entity_seg_boxes_contours_scores() -> None:
    data = {
        "binary_data_base64": [],
        "bbox": [[10, 10, 50, 40], [100, 60, 140, 100]],
        "contours_point": [
            [[[10, 10], [49, 10], [49, 39], [10, 39]]],
            [[[100, 60], [139, 60], [139, 99], [100, 99]], [[200, 200], [210, 200], [210, 210], [200, 210]]],
        ],
        "seg_score": [0.9, 0.7],
        "ori_height": [H],
        "ori_width": [W],
    }
    res = Result.from_data(req_key="entity_seg", task_id="e1", data=data)
    assert isinstance(res, SegmentationResult) and res.is_entity
    assert res.bboxes == [(10, 10, 50, 40), (100, 60, 140, 100)]
    assert res.bbox == (10, 10, 50, 40)
    assert res.scores == [0.9, 0.7] and res.score == 0.9
    assert len(res.contours) == 3
    assert res.mask.sum() == 40 * 30 + 40 * 40 + 11 * 11
    masks = res.masks
    assert [int(m.sum()) for m in masks] == [1200, 1600 + 121]
    assert "entities=2" in repr(res)


def test_mask_falls_back_to_outputs_without_contours() -> None:
    # only_mask=1: the grey mask picture
    no_contours = seed_payload(contours_point=[[]])
    np.testing.assert_array_equal(saliency(data=no_contours).mask, rect_mask())
    # only_mask=3: the full-size cut-out's alpha
    rgba = noisy(W, H, "RGBA")
    alpha = np.where(rect_mask(), 255, 0).astype(np.uint8)
    rgba.putalpha(Image.fromarray(alpha))
    data = seed_payload(binary_data_base64=[b64(png_bytes(rgba))])
    del data["contours_point"]
    np.testing.assert_array_equal(saliency(data=data).mask, rect_mask())
    # only_mask=0: a cut-out cropped to the bbox (x2/y2 exclusive here)
    x1, y1, x2, y2 = RECT
    crop = rgba.crop((x1, y1, x2 + 1, y2 + 1))
    data = seed_payload(binary_data_base64=[b64(png_bytes(crop))], bbox=[[x1, y1, x2 + 1, y2 + 1]],
                        contours_point=[])
    np.testing.assert_array_equal(saliency(data=data).mask, rect_mask())
    # nothing to read a mask from
    data = seed_payload(binary_data_base64=[b64(png_bytes(noisy(50, 50)))], contours_point=[])
    with pytest.raises(ValueError, match="only_mask=1"):
        _ = saliency(data=data).mask


def test_malformed_contours_raise_protocol_error() -> None:
    res = saliency(data=seed_payload(contours_point=[[[[1, 2], "x", [3, 4]]]]))
    with pytest.raises(ProtocolError, match=r"contours_point\[0\]\[0\]\[1\]"):
        _ = res.contours
    assert "unreadable" in repr(res)


def test_cutout() -> None:
    inp = noisy(W, H)
    out = saliency(input_images=[inp]).cutout()
    assert out.mode == "RGBA" and out.size == (W, H)
    np.testing.assert_array_equal(np.asarray(out.getchannel("A")) > 0, rect_mask())
    np.testing.assert_array_equal(np.asarray(out)[..., :3], np.asarray(inp))
    with pytest.raises(ValueError, match="needs the input image"):
        saliency().cutout()
    with pytest.raises(ValueError, match="needs the input image"):
        saliency(input_images=[None]).cutout()
    np.testing.assert_array_equal(np.asarray(saliency().cutout(np.asarray(inp)).getchannel("A")) > 0, rect_mask())
    with pytest.raises(ValueError, match="100×100 px"):
        saliency().cutout(noisy(100, 100))


def test_overlay_uses_input_or_grey_canvas(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Image.Image, Any, Any, dict[str, Any]]] = []

    def overlay_contours(image: Image.Image, res: Any, *, ax: Any = None, **style: Any) -> str:
        calls.append((image, res, ax, style))
        return "artists"

    from volcnb.results import segmentation

    monkeypatch.setattr(segmentation, "_drawer", overlay_contours)
    inp = noisy(W, H)
    res = saliency(input_images=[inp])
    assert res.overlay(ax="AX", color="red") == "artists"
    assert calls[-1][0] is inp and calls[-1][1] is res and calls[-1][2] == "AX" and calls[-1][3] == {"color": "red"}
    saliency().overlay()
    canvas = calls[-1][0]
    assert canvas.size == (W, H) and canvas.getpixel((0, 0)) == (128, 128, 128)
