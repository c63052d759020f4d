"""What each simulated capability computes from its inputs (runs in a worker thread, never on the loop).

Every output is computed: segmentation by a real saliency algorithm (:mod:`._segment`), portraits by a
stylisation of the face image, text-to-image by a deterministic procedural picture marked as simulated
(:mod:`._generate`). Content-risk answers are triggered as documented in :data:`RISK_TRIGGERS`.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from .._pictures import png as _png
from ..protocol.catalog import URI_RE
from ._model import Reject

#: Documented triggers for the simulated moderation (the real service's rules are not public).
#: Text triggers are matched case-insensitively in ``prompt`` / ``positive_prompt``.
RISK_TRIGGERS: dict[str, tuple[int, str]] = {
    "违禁词": (50412, "Text Risk Not Pass"),             # input text moderation
    "sim:text-risk": (50412, "Text Risk Not Pass"),
    "sim:ip-block": (50413, "Post Text Risk Not Pass"),  # NER / IP / blocklist on the input text
    "米老鼠": (50413, "Post Text Risk Not Pass"),
    "sim:post-risk": (50511, "Post Img Risk Not Pass"),  # output moderation: the task runs, then fails
}
#: An input image whose top-left 16×16 block is pure magenta (255, 0, 255) fails input-image moderation.
RISK_IMAGE_COLOR = (255, 0, 255)


@dataclass
class Outcome:
    """A computed task outcome."""

    code: int = 10000
    message: str = "Success"
    result: dict[str, Any] = field(default_factory=dict)
    outputs: list[bytes] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def png(img: Image.Image) -> bytes:
    """PNG bytes of an output (light compression: the simulator encodes many)."""
    return _png(img, fast=True)


def text_risk(body: dict[str, Any]) -> tuple[int, str] | None:
    """The pre-submit text moderation verdict (50412/50413) or ``None``."""
    for key in ("prompt", "positive_prompt"):
        text = body.get(key)
        if isinstance(text, str):
            low = text.lower()
            for trigger, verdict in RISK_TRIGGERS.items():
                if trigger in low and verdict[0] != 50511:
                    return verdict
    return None


def post_risk(body: dict[str, Any]) -> tuple[int, str] | None:
    """The post-generation moderation verdict (50511) or ``None``."""
    for key in ("prompt", "positive_prompt"):
        text = body.get(key)
        if isinstance(text, str) and "sim:post-risk" in text.lower():
            return RISK_TRIGGERS["sim:post-risk"]
    return None


def image_risk(images: list[Image.Image]) -> bool:
    """Whether an input image carries the documented input-moderation trigger."""
    for img in images:
        if img.width < 16 or img.height < 16:
            continue
        block = img.convert("RGB").crop((0, 0, 16, 16))
        colors = block.getcolors(4)
        if colors and len(colors) == 1 and colors[0][1] == RISK_IMAGE_COLOR:
            return True
    return False


def _uri(body: dict[str, Any], name: str) -> int | None:
    v = body.get(name)
    if isinstance(v, str):
        m = URI_RE.match(v)
        if m:
            return int(m.group(1))
    return None


def compute(req_key: str, body: dict[str, Any], images: list[Image.Image], notes: list[str], *, task_id: str = ""
            ) -> Outcome:
    """Run a capability. ``notes`` are carried into ``response_data`` (e.g. the documents' contradictions).

    A ``seed`` of -1 (random) is derived from the task id: different per task, reproducible per task.
    """
    seed = _seed(body, task_id)
    verdict = post_risk(body)
    if req_key in ("saliency_seg", "entity_seg"):
        out = _segmentation(req_key, body, images[0])
    elif req_key.startswith("img2img_anime_accelerated_maintain_id"):
        out = _portrait(body, images, seed)
    elif req_key.startswith("jimeng_t2i_"):
        out = _t2i(req_key, body, seed)
    else:  # pragma: no cover - the app only schedules known keys
        raise ValueError(req_key)
    out.notes = list(notes)
    if out.notes:
        out.result["response_data"] = json.dumps({"notes": out.notes}, ensure_ascii=False)
    if verdict is not None:
        return Outcome(code=verdict[0], message=verdict[1], notes=out.notes)
    return out


def compute_safely(req_key: str, body: dict[str, Any], images: list[Image.Image], notes: list[str],
                   task_id: str) -> Outcome:
    """:func:`compute`, with every failure as an :class:`Outcome` (picklable: also runs in a worker process).

    A bug in a capability must not lose the task: it fails visibly, as the service's internal error.
    """
    try:
        return compute(req_key, body, images, notes, task_id=task_id)
    except Exception as exc:
        return failure(exc)


def failure(exc: Exception) -> Outcome:
    """The outcome of a task whose computation raised: its business code, or the internal error."""
    if isinstance(exc, Reject):
        return Outcome(code=exc.code if isinstance(exc.code, int) else 50500, message=exc.message)
    return Outcome(code=50501, message=f"Internal RPC Error: {type(exc).__name__}: {exc}")


def _seed(body: dict[str, Any], task_id: str) -> int:
    seed = body.get("seed", -1)
    if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
        return seed
    return zlib.crc32(task_id.encode()) & 0x7FFFFFFF


def _segmentation(req_key: str, body: dict[str, Any], image: Image.Image) -> Outcome:
    from ._segment import render_entity_outputs, render_saliency_outputs, segment_entities, segment_saliency

    refine = int(body.get("refine_mask", 0) or 0)
    w, h = image.size
    if req_key == "saliency_seg":
        seg = segment_saliency(image, refine_mask=refine)
        rgb_raw = body.get("rgb") or [-1, -1, -1]
        rgb = (int(rgb_raw[0]), int(rgb_raw[1]), int(rgb_raw[2]))
        imgs = render_saliency_outputs(image, seg, only_mask=int(body.get("only_mask", 0) or 0), rgb=rgb)
        result: dict[str, Any] = {
            "algorithm_base_resp": {"status_code": 0, "status_message": "Success"},
            "bbox": [list(seg.bbox)],
            "contours_point": [seg.contours],
            "ori_height": [h],
            "ori_width": [w],
            "seg_score": [round(float(seg.score), 6)],
            "shadow": [None],
            "shadow_pos": [None],
        }
    else:
        segs = segment_entities(image, max_entity=int(body.get("max_entity", 20) or 20), refine_mask=refine)
        imgs = render_entity_outputs(image, segs, return_format=int(body.get("return_format", 0) or 0))
        result = {
            "algorithm_base_resp": {"status_code": 0, "status_message": "Success"},
            "bbox": [list(s.bbox) for s in segs],
            "contours_point": [s.contours for s in segs],
            "ori_height": [h],
            "ori_width": [w],
            "seg_score": [round(float(s.score), 6) for s in segs],
            "entity_count": len(segs),
        }
    return Outcome(result=result, outputs=[png(i) for i in imgs])


def _portrait(body: dict[str, Any], images: list[Image.Image], seed: int) -> Outcome:
    from ._generate import stylize_portrait

    face_idx = _uri(body, "face_image")
    style_idx = _uri(body, "style_image")
    face = images[face_idx if face_idx is not None else 0]
    style = images[style_idx] if style_idx is not None and body.get("style_switch") else None
    width, height = int(body.get("width", 1000)), int(body.get("height", 1000))
    strength = 1.0 if (body.get("face_switch") or body.get("facestyle_switch")) else 0.6
    img = stylize_portrait(face, width=width, height=height, seed=seed, style=style,
                           prompt=str(body.get("positive_prompt", "")), strength=strength)
    result: dict[str, Any] = {
        "algorithm_base_resp": {"status_code": 0, "status_message": "Success"},
        "image_urls": [""],
        "request_id": "",
    }
    return Outcome(result=result, outputs=[png(img)])


def _t2i(req_key: str, body: dict[str, Any], seed: int) -> Outcome:
    from ._generate import text_to_image

    if req_key == "jimeng_t2i_v40":
        if "width" in body and "height" in body:
            w, h = int(body["width"]), int(body["height"])
        else:
            side = int(int(body.get("size", 2048 * 2048)) ** 0.5)
            w = h = side
    else:
        w, h = int(body.get("width", 1328)), int(body.get("height", 1328))
    img = text_to_image(str(body["prompt"]), width=w, height=h, seed=seed)
    result: dict[str, Any] = {
        "algorithm_base_resp": {"status_code": 0, "status_message": "Success"},
        "image_urls": [""],
    }
    return Outcome(result=result, outputs=[png(img)])
