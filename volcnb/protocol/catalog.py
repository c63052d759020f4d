"""The capability catalog: one declarative entry per req_key, shared by the client and the simulator.

Each :class:`Capability` lists its parameters (type, default, range), how many images it takes, the
rules between parameters, and what its result holds. The client checks a request against it before
sending (errors raise :class:`ValidationError`, doubts warn); the simulator checks every request
against the same entries independently (it never trusts a client, the official SDK included) and
answers the documented error codes.

Where a document contradicts itself we warn instead of refusing: the 人像保持 document's own example turns
``hyper_switch`` on together with ``face_switch``/``facestyle_switch``, which its parameter table forbids.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Capability", "Param", "get_capability", "CAPABILITIES"]

ParamType = Literal["int", "float", "bool", "str", "rgb", "str_list"]
Severity = Literal["error", "warning"]

#: Fields every CV capability may carry (images and the fetch options).
COMMON_FIELDS = frozenset({"req_key", "binary_data_base64", "image_urls", "return_url", "logo_info", "aigc_meta"})
#: ``uri://binary_data?index=N`` references (the 人像保持 document).
URI_RE = re.compile(r"^uri://binary_data\?index=(\d+)$")


@dataclass(frozen=True)
class Issue:
    """One problem with a request: ``field``, a message naming the limit, and how bad it is."""

    field: str
    message: str
    severity: Severity = "error"
    code: int = 50200
    limit: str | None = None


@dataclass(frozen=True)
class Param:
    """One documented parameter."""

    name: str
    type: ParamType
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    required: bool = False
    max_length: int | None = None
    doc: str = ""

    def check(self, value: Any) -> Issue | None:
        """Type and range check of one value."""
        n = self.name
        if self.type == "bool":
            if not isinstance(value, bool):
                return Issue(n, f"{n} must be a bool (true/false), got {value!r}", limit="bool")
            return None
        if self.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return Issue(n, f"{n} must be an integer, got {value!r}", limit="int")
        elif self.type == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return Issue(n, f"{n} must be a number, got {value!r}", limit="float")
            if not math.isfinite(value):  # NaN passes every range comparison
                return Issue(n, f"{n} must be a finite number, got {value!r}", limit="finite")
        elif self.type == "str":
            if not isinstance(value, str):
                return Issue(n, f"{n} must be a string, got {type(value).__name__}", limit="string")
            if self.max_length is not None and len(value) > self.max_length:
                return Issue(n, f"{n} is {len(value)} characters; the limit is {self.max_length}",
                             limit=f"<= {self.max_length} chars")
            if self.required and not value.strip():
                return Issue(n, f"{n} must not be empty", code=50201, limit="non-empty")
        elif self.type == "rgb":
            ok = (isinstance(value, (list, tuple)) and len(value) == 3
                  and all(isinstance(c, int) and not isinstance(c, bool) and -1 <= c <= 255 for c in value))
            if not ok:
                return Issue(n, f"{n} must be 3 integers in -1..255 ([-1,-1,-1] = transparent), got {value!r}",
                             limit="3 × -1..255")
            return None
        elif self.type == "str_list":
            if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
                return Issue(n, f"{n} must be a list of strings", limit="list[str]")
            return None
        if self.choices is not None and value not in self.choices:
            return Issue(n, f"{n} must be one of {', '.join(map(str, self.choices))}; got {value!r}",
                         limit="one of " + "/".join(map(str, self.choices)))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            lo, hi = self.minimum, self.maximum
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                rng = f"{_fmt(lo)}–{_fmt(hi)}"
                return Issue(n, f"{n}={value!r} is out of range; allowed {rng}", limit=rng)
        return None


def _fmt(v: float | None) -> str:
    if v is None:
        return "∞"
    return str(int(v)) if float(v).is_integer() else str(v)


Rule = Callable[[Mapping[str, Any], int], list[Issue]]


@dataclass(frozen=True)
class Capability:
    """A req_key's contract."""

    req_key: str
    title: str
    params: tuple[Param, ...]
    min_images: int = 0
    max_images: int = 0
    rules: tuple[Rule, ...] = ()
    result: str = ""
    """What a done task's ``data`` holds."""
    service_time: tuple[float, float] = (2.0, 0.3)
    """Typical service time: (median seconds, log-normal sigma). The simulator's default, the poller's prior."""
    kind: Literal["segmentation", "image"] = "image"
    doc_url: str = ""

    @property
    def param_names(self) -> frozenset[str]:
        """Names this capability documents."""
        return frozenset(p.name for p in self.params)

    def param(self, name: str) -> Param | None:
        """The parameter called ``name``."""
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        """Documented defaults (``None`` when the docs give none)."""
        return {p.name: p.default for p in self.params if p.default is not None}

    def check(self, params: Mapping[str, Any], n_images: int) -> list[Issue]:
        """All problems with ``params`` (submit body without ``req_key``) given ``n_images`` inputs."""
        issues: list[Issue] = []
        known = self.param_names | COMMON_FIELDS
        for name in params:
            if name in known:
                continue
            close = difflib.get_close_matches(name, sorted(self.param_names), n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            issues.append(Issue(name, f"{self.req_key} has no parameter {name!r}{hint}",
                                severity="error" if close else "warning", limit="documented parameters"))
        for p in self.params:
            if p.name in params and params[p.name] is not None:
                issue = p.check(params[p.name])
                if issue:
                    issues.append(issue)
            elif p.required:
                issues.append(Issue(p.name, f"{p.name} is required for {self.req_key}", code=50201, limit="required"))
        if n_images < self.min_images:
            issues.append(Issue("image", f"{self.req_key} needs at least {self.min_images} image(s), got {n_images}",
                                code=50206 if n_images == 0 else 50200, limit=f">= {self.min_images} images"))
        if n_images > self.max_images:
            issues.append(Issue("image", f"{self.req_key} takes at most {self.max_images} image(s), got {n_images}",
                                limit=f"<= {self.max_images} images"))
        if "logo_info" in params:
            issues.append(Issue("logo_info", "logo_info is applied when fetching (GetResult), not at submit; "
                                "pass it to task.fetch(logo_info=...)", severity="warning"))
        if not any(i.severity == "error" for i in issues):
            for rule in self.rules:
                issues.extend(rule(params, n_images))
        return issues


# --- rules ---------------------------------------------------------------------------------------


def _rgb_rule(params: Mapping[str, Any], n_images: int) -> list[Issue]:
    mode = params.get("only_mask", 0)
    rgb = params.get("rgb")
    if mode in (0, 3, 4) and rgb is not None and list(rgb) != [-1, -1, -1]:
        return [Issue("rgb", f"only_mask={mode} returns a transparent (BGRA) image, which needs rgb=[-1,-1,-1]; "
                             f"the background will be filled with {list(rgb)} instead", severity="warning")]
    return []


def _uri_index(params: Mapping[str, Any], name: str, n_images: int) -> tuple[int | None, list[Issue]]:
    value = params.get(name)
    if value is None or value == "":
        return None, []
    if not isinstance(value, str):
        return None, [Issue(name, f"{name} must be a string like 'uri://binary_data?index=0'", limit="uri")]
    m = URI_RE.match(value)
    if not m:
        return None, [Issue(name, f"{name} must look like 'uri://binary_data?index=N', got {value!r}",
                            limit="uri://binary_data?index=N")]
    index = int(m.group(1))
    if index >= n_images:
        return index, [Issue(name, f"{name} points at image index {index} but only {n_images} image(s) were given "
                                   f"(indexes 0–{max(n_images - 1, 0)})", limit=f"index < {n_images}")]
    return index, []


def _portrait_rules(params: Mapping[str, Any], n_images: int) -> list[Issue]:
    issues: list[Issue] = []
    face, face_issues = _uri_index(params, "face_image", n_images)
    style, style_issues = _uri_index(params, "style_image", n_images)
    if style is not None and params.get("style_switch") is not True:
        # style_image is read only with style_switch on; the 人像保持 document's own example points it at index 1
        # with one image and style_switch off: a contradiction of the document's, so a warning, never a refusal.
        style_issues = [Issue(i.field, f"{i.message}; style_switch is off, so style_image is unused and ignored",
                              severity="warning", limit=i.limit) for i in style_issues]
    issues += face_issues + style_issues
    on = {k for k in ("face_switch", "facestyle_switch", "style_switch") if params.get(k) is True}
    if face is None and not face_issues and on:
        issues.append(Issue("face_image", f"{', '.join(sorted(on))} need face_image (形象图); without it "
                                          "face_switch, facestyle_switch and style_switch must be off",
                            limit="switches off without face_image"))
    if style is None and not style_issues and params.get("style_switch") is True:
        issues.append(Issue("style_image", "style_switch needs style_image (风格图); without it style_switch must be off",
                            limit="style_switch off without style_image"))
    if params.get("hyper_switch") is True and on:
        issues.append(Issue(
            "hyper_switch",
            f"hyper_switch is documented to need face_switch, facestyle_switch and style_switch off, but "
            f"{', '.join(sorted(on))} {'is' if len(on) == 1 else 'are'} on. The 人像保持 document's own example does this, so it "
            "is accepted; expect step/cfg to be ignored", severity="warning"))
    if params.get("facestyle_switch") is True and params.get("style_switch") is True:
        issues.append(Issue("style_switch", "facestyle_switch and style_switch together interfere and are slower; "
                                            "the docs strongly recommend choosing one", severity="warning"))
    return issues


def _t2i_size_rule(params: Mapping[str, Any], n_images: int) -> list[Issue]:
    if ("width" in params) != ("height" in params):
        given = "width" if "width" in params else "height"
        return [Issue(given, "give width and height together, or neither (default 1328×1328)",
                      limit="both or neither")]
    return []


def _v40_size_rule(params: Mapping[str, Any], n_images: int) -> list[Issue]:
    issues = _t2i_size_rule(params, n_images)
    if issues:
        return issues
    w, h = params.get("width"), params.get("height")
    if isinstance(w, int) and isinstance(h, int):
        area = w * h
        if not 1024 * 1024 <= area <= 4096 * 4096:
            issues.append(Issue("width", f"width×height = {w}×{h} = {area} px²; the area must be within "
                                         "1024² – 4096²", limit="1048576–16777216 px²"))
        if not 1 / 16 <= w / h <= 16:
            issues.append(Issue("width", f"aspect ratio {w}:{h} is outside 1:16 – 16:1", limit="1/16–16"))
    return issues


# --- entries ---------------------------------------------------------------------------------------

_SEG_RESULT = ("binary_data_base64: the output image(s) per only_mask; bbox [[x1,y1,x2,y2]]; contours_point "
               "[image][contour][point]=[x,y]; ori_height/ori_width; seg_score")

_PORTRAIT_PARAMS = (
    Param("positive_prompt", "str", "1girl,beautiful,looking at viewer,portrait,", max_length=800,
          doc="积极提示词: preset composition/style words plus the user's text"),
    Param("hyper_switch", "bool", False, doc="accelerated mode; needs the three switches off; step/cfg ignored"),
    Param("seed", "int", -1, minimum=-1, maximum=2**32 - 1, doc="-1 random"),
    Param("step", "int", 18, minimum=1, maximum=50, doc="sampling steps (range inferred: 1–50)"),
    Param("cfg", "float", 4.5, minimum=1.0, maximum=20.0, doc="guidance (range inferred: 1–20)"),
    Param("face_image", "str", doc="'uri://binary_data?index=N': the 形象图 (identity) image"),
    Param("style_image", "str", doc="'uri://binary_data?index=N': the 风格图 (style) image"),
    Param("face_switch", "bool", False, doc="learn the face of face_image"),
    Param("facestyle_switch", "bool", False, doc="learn the style of face_image"),
    Param("style_switch", "bool", False, doc="learn the style of style_image"),
    Param("width", "int", 1000, minimum=600, maximum=1500, doc="output width"),
    Param("height", "int", 1000, minimum=600, maximum=1500, doc="output height"),
)


def _portrait(req_key: str, url: str) -> Capability:
    return Capability(
        req_key=req_key, title="人像保持 portrait ID-keeping", params=_PORTRAIT_PARAMS, min_images=1, max_images=2,
        rules=(_portrait_rules,), result="binary_data_base64: one stylised image width×height; response_data",
        service_time=(10.0, 0.3), doc_url=url)


_T2I_V3_PARAMS = (
    Param("prompt", "str", required=True, max_length=800, doc="≤ 800 characters (≤ 120 recommended)"),
    Param("use_pre_llm", "bool", True, doc="expand the prompt with an LLM"),
    Param("seed", "int", -1, minimum=-1, maximum=2**32 - 1),
    Param("width", "int", 1328, minimum=512, maximum=2048),
    Param("height", "int", 1328, minimum=512, maximum=2048),
)

CAPABILITIES: dict[str, Capability] = {
    c.req_key: c
    for c in (
        Capability(
            req_key="saliency_seg", title="主体分割 salient-subject segmentation", kind="segmentation",
            params=(
                Param("only_mask", "int", 0, choices=(0, 1, 2, 3, 4),
                      doc="0 cut-out cropped (BGRA); 1 mask; 2 on a square background of rgb; 3 full-size BGRA; "
                          "4 BGRA + mask"),
                Param("refine_mask", "int", 0, choices=(0, 1, 2), doc="edge refinement strength"),
                Param("rgb", "rgb", [-1, -1, -1], doc="background colour; [-1,-1,-1] = transparent"),
            ),
            min_images=1, max_images=1, rules=(_rgb_rule,), result=_SEG_RESULT, service_time=(2.0, 0.3),
            doc_url="https://www.volcengine.com/docs/6793/1330693"),
        Capability(
            req_key="entity_seg", title="智能分割 entity segmentation", kind="segmentation",
            params=(
                Param("max_entity", "int", 20, minimum=1, maximum=100, doc="most entities returned"),
                Param("return_format", "int", 0, choices=(0, 1, 2, 3, 4), doc="output images per entity"),
                Param("refine_mask", "int", 0, choices=(0, 1, 2)),
            ),
            min_images=1, max_images=1,
            result="bbox: one [x1,y1,x2,y2] per entity; contours_point [entity][contour][point]; seg_score per "
                   "entity; binary_data_base64 per return_format",
            service_time=(3.0, 0.3), doc_url="https://www.volcengine.com/docs/6793/1317296"),
        _portrait("img2img_anime_accelerated_maintain_id", "https://www.volcengine.com/docs/6791/1316308"),
        _portrait("img2img_anime_accelerated_maintain_id_for_smart_drawing_anime",
                  "https://www.volcengine.com/docs/6793/1336009"),
        Capability(req_key="jimeng_t2i_v30", title="即梦 文生图 3.0", params=_T2I_V3_PARAMS, rules=(_t2i_size_rule,),
                   result="binary_data_base64: one image", service_time=(10.0, 0.3)),
        Capability(req_key="jimeng_t2i_v31", title="即梦 文生图 3.1", params=_T2I_V3_PARAMS, rules=(_t2i_size_rule,),
                   result="binary_data_base64: one image", service_time=(10.0, 0.3)),
        Capability(
            req_key="jimeng_t2i_v40", title="即梦 4.0",
            params=(
                Param("prompt", "str", required=True, max_length=800),
                Param("size", "int", 2048 * 2048, minimum=1024 * 1024, maximum=4096 * 4096, doc="output area px²"),
                Param("width", "int", minimum=1, maximum=4096),
                Param("height", "int", minimum=1, maximum=4096),
                Param("scale", "float", 0.5, minimum=0.0, maximum=1.0, doc="text influence vs reference images"),
                Param("force_single", "bool", False, doc="exactly one output image"),
                Param("min_ratio", "float", 1 / 3, minimum=1 / 16, maximum=16),
                Param("max_ratio", "float", 3.0, minimum=1 / 16, maximum=16),
                Param("seed", "int", -1, minimum=-1, maximum=2**32 - 1),
            ),
            min_images=0, max_images=10, rules=(_v40_size_rule,), result="binary_data_base64: 1..(15 − inputs) images",
            service_time=(20.0, 0.3)),
    )
}


def get_capability(req_key: str) -> Capability | None:
    """The catalog entry of ``req_key`` (``None`` for keys we do not know)."""
    return CAPABILITIES.get(req_key)


def suggest_req_key(req_key: str) -> str | None:
    """The closest known req_key, for "did you mean" messages."""
    close = difflib.get_close_matches(req_key, sorted(CAPABILITIES), n=1, cutoff=0.7)
    return close[0] if close else None


def image_count(params: Mapping[str, Any]) -> int:
    """How many images a submit body carries (base64 entries or URLs).

    A field that is not a list (a client mistake such as ``"image_urls": true``) counts as one image, so
    the type error is reported where the field is decoded, not as a crash here.
    """
    return sum(_entries(params.get(name)) for name in ("binary_data_base64", "image_urls"))


def _entries(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return len(value)
    return 1 if value else 0

