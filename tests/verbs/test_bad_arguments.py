"""Bad arguments across every public entry point: each raises a ``ValidationError`` (or its documented
subclass ``ArgumentTypeError``) naming the field, and a counting transport shows that nothing was sent."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from matplotlib import cbook
from PIL import Image

import volcnb
from volcnb.sim import DEFAULT_ACCESS_KEY as AK
from volcnb.sim import DEFAULT_SECRET_KEY as SK
from volcnb.sim import Simulator

IMAGE = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
PORTRAIT = "img2img_anime_accelerated_maintain_id"
T2I = "jimeng_t2i_v30"


class Counting(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


def png(size: tuple[int, int] = (200, 160)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


Call = Callable[[volcnb.Client], Any]


def submit(req_key: Any = "saliency_seg", image: Any = IMAGE, **params: Any) -> Call:
    return lambda c: volcnb.submit(req_key, image, client=c, display=False, **params)


def run(req_key: Any = "saliency_seg", image: Any = IMAGE, **params: Any) -> Call:
    return lambda c: volcnb.run(req_key, image, client=c, display=False, **params)


def attach(*args: Any, **kw: Any) -> Call:
    return lambda c: volcnb.Task.attach(*args, client=c, **kw)


def fetch(**options: Any) -> Call:
    return lambda c: asyncio.run(volcnb.Task.attach("saliency_seg", "7000000000000000001", client=c).fetch(**options))


def iva(kind: str, task_id: Any = "iva-1", media: Any = None, **kw: Any) -> Call:
    def call(c: volcnb.Client) -> Any:
        add = c.iva.add_image_sync if kind == "image" else c.iva.add_video_sync
        return add(task_id, png() if media is None else media, **kw)
    return call


def client(**kw: Any) -> Call:
    return lambda c: volcnb.Client(AK, SK, **kw)


def batch(inputs: Any = (IMAGE,), **kw: Any) -> Call:
    return lambda c: volcnb.map("saliency_seg", list(inputs), client=c, journal=False, display=False, **kw)


CASES: list[tuple[str, Call, str]] = [
    # volcnb.submit: the request
    ("empty req_key", submit(""), "req_key"),
    ("req_key not a string", submit(123), "req_key"),
    ("no image", submit(image=None), "image"),
    ("image not an image", submit(image=b"junk bytes"), "image[0]"),
    ("image a missing file", submit(image="no/such/file.jpg"), "image[0]"),
    ("image of a wrong type", submit(image=3.5), "image"),
    ("image too small", submit(image=png((40, 40))), "image[0]"),
    ("image too large", submit(image=png((5000, 100))), "image[0]"),
    ("two images for one", submit(image=[IMAGE, IMAGE]), "image"),
    ("only_mask out of choices", submit(only_mask=9), "only_mask"),
    ("only_mask a string", submit(only_mask="1"), "only_mask"),
    ("only_mask a bool", submit(only_mask=True), "only_mask"),
    ("refine_mask out of choices", submit(refine_mask=3), "refine_mask"),
    ("rgb of two values", submit(rgb=[1, 2]), "rgb"),
    ("rgb over 255", submit(rgb=[0, 0, 300]), "rgb"),
    ("rgb a string", submit(rgb="red"), "rgb"),
    # watermarks and result options
    ("return_url a string", submit(return_url="no"), "return_url"),
    ("return_url a number", submit(return_url=1), "return_url"),
    ("logo position a bool", submit(logo_info={"add_logo": True, "position": True}), "logo_info.position"),
    ("logo position 7", submit(logo_info={"add_logo": True, "position": 7}), "logo_info.position"),
    ("add_logo a string", submit(logo_info={"add_logo": "no"}), "logo_info.add_logo"),
    ("logo language a bool", submit(logo_info={"add_logo": True, "language": True}), "logo_info.language"),
    ("logo language 5", submit(logo_info={"add_logo": True, "language": 5}), "logo_info.language"),
    ("logo opacity 2", submit(logo_info={"add_logo": True, "opacity": 2}), "logo_info.opacity"),
    ("logo text a number", submit(logo_info={"add_logo": True, "logo_text_content": 123}),
     "logo_info.logo_text_content"),
    ("logo_info a list", submit(logo_info=[1, 2]), "logo_info"),
    ("logo_info unknown key", submit(logo_info={"add_logo": True, "colour": 1}), "logo_info.colour"),
    ("aigc_meta a string", submit(aigc_meta="x"), "aigc_meta"),
    # the wait's options
    ("deadline negative", submit(deadline=-5), "deadline"),
    ("deadline zero", submit(deadline=0), "deadline"),
    ("deadline a string", submit(deadline="60"), "deadline"),
    ("display a string", lambda c: volcnb.submit("saliency_seg", IMAGE, client=c, display="x"), "display"),  # type: ignore[arg-type]
    # portraits (the 人像保持 document)
    ("portrait without images", submit(PORTRAIT, image=None), "image"),
    ("portrait width 100", submit(PORTRAIT, width=100), "width"),
    ("portrait height 5000", submit(PORTRAIT, height=5000), "height"),
    ("portrait cfg 50", submit(PORTRAIT, cfg=50.0), "cfg"),
    ("portrait step 0", submit(PORTRAIT, step=0), "step"),
    ("portrait seed too big", submit(PORTRAIT, seed=2**40), "seed"),
    ("portrait face_switch a string", submit(PORTRAIT, face_switch="yes"), "face_switch"),
    ("portrait prompt too long", submit(PORTRAIT, positive_prompt="x" * 900), "positive_prompt"),
    ("portrait face_image not a uri", submit(PORTRAIT, face_image="face.jpg"), "face_image"),
    # text to image
    ("t2i without a prompt", submit(T2I, image=None), "prompt"),
    ("t2i prompt a number", submit(T2I, image=None, prompt=5), "prompt"),
    ("t2i prompt too long", submit(T2I, image=None, prompt="猫" * 801), "prompt"),
    ("t2i width 100", submit(T2I, image=None, prompt="猫", width=100), "width"),
    ("t2i use_pre_llm a string", submit(T2I, image=None, prompt="猫", use_pre_llm="yes"), "use_pre_llm"),
    # volcnb.run checks at call time, before its coroutine runs
    ("run: empty req_key", run(""), "req_key"),
    ("run: only_mask 9", run(only_mask=9), "only_mask"),
    ("run: timeout negative", run(timeout=-1), "timeout"),
    ("run: on_timeout unknown", run(on_timeout="explode"), "on_timeout"),
    ("run: client a string", lambda c: volcnb.run("saliency_seg", IMAGE, client="x"), "client"),  # type: ignore[arg-type]
    ("submit: client a string", lambda c: volcnb.submit("saliency_seg", IMAGE, client="x"), "client"),  # type: ignore[arg-type]
    # Task.attach and fetch
    ("attach: empty task_id", attach("saliency_seg", ""), "task_id"),
    ("attach: task_id None", attach("saliency_seg", None), "task_id"),
    ("attach: task_id a float", attach("saliency_seg", 7000.5), "task_id"),
    ("attach: task_id with spaces", attach("saliency_seg", "70 01"), "task_id"),
    ("attach: empty req_key", attach("", "1"), "req_key"),
    ("attach: req_key a number", attach(123, "1"), "req_key"),
    ("attach: deadline negative", attach("saliency_seg", "1", deadline=-1), "deadline"),
    ("fetch: logo position 9", fetch(logo_info={"add_logo": True, "position": 9}), "logo_info.position"),
    ("fetch: return_url a string", fetch(return_url="yes"), "return_url"),
    # IVA uploads
    ("iva: task id a float", iva("image", 12.5), "TaskID"),
    ("iva: empty task id", iva("image", ""), "TaskID"),
    ("iva: image junk bytes", iva("image", media=b"junk"), "ImageFile"),
    ("iva: name a number", iva("image", name=123), "name"),
    ("iva: algo_params a list", iva("image", algo_params=[1, 2]), "algo_params"),
    ("iva: algo_params a string", iva("image", algo_params="abc"), "algo_params"),
    # Client(...)
    ("client: timeout negative", client(timeout=-1), "timeout"),
    ("client: max_retries a string", client(max_retries="3"), "max_retries"),
    ("client: region nonsense", client(region="mars"), "region"),
    ("client: endpoint without scheme", client(endpoint="127.0.0.1:8000"), "endpoint"),
    ("client: transport a string", client(transport="asgi"), "transport"),
    # volcnb.map
    ("map: concurrency 0", batch(concurrency=0), "concurrency"),
    ("map: concurrency a float", batch(concurrency=2.5), "concurrency"),
    ("map: qps negative", batch(qps=-1), "qps"),
    ("map: qps a string", batch(qps="fast"), "qps"),
]


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return Simulator(queue_time=0.0)


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 60
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "call", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_argument_is_refused_before_sending(sim: Simulator, name: str, call: Call, field: str) -> None:
    transport = Counting(httpx.ASGITransport(app=sim.app()))
    c = volcnb.Client(AK, SK, transport=transport)
    with pytest.raises(volcnb.ValidationError) as info:
        call(c)
    err = info.value
    assert err.field == field, f"{name}: field {err.field!r}: {err}"
    assert isinstance(err, ValueError) and err.retryable is False
    assert SK not in str(err) and SK not in repr(err)
    assert transport.requests == [], f"{name}: {len(transport.requests)} request(s) sent"
