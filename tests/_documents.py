"""Request examples as the API documents print them, shared by the tests that send them.

Not a test module (no ``test_`` prefix); ``tests/`` is on ``sys.path`` under pytest's default import mode.
"""

from __future__ import annotations

from typing import Any

#: The 人像保持 document's submit example without its images (it sends ``image_urls: ["https://xxx"]``):
#: hyper_switch on with face_switch + facestyle_switch, and style_image at an index it never sends.
PORTRAIT_REQUEST: dict[str, Any] = {
    "req_key": "img2img_anime_accelerated_maintain_id",
    "positive_prompt": "1girl,beautiful,looking at viewer,portrait,",
    "hyper_switch": True,
    "seed": -1,
    "step": 18,
    "cfg": 4.5,
    "face_image": "uri://binary_data?index=0",
    "style_image": "uri://binary_data?index=1",
    "face_switch": True,
    "facestyle_switch": True,
    "width": 1000,
    "height": 1000,
}
