"""The gateway's web page in headless Debian Chromium (Playwright): an empty prompt shows the validation
error, a prompt creates a task whose image appears when it completes, and the recent-tasks list shows it.
The screenshot goes to ``artifacts/browser/gateway_page.png``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import volcnb

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]

CHROMIUM = os.environ.get("VOLCNB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-dev-shm-usage"]
SHOT = Path(__file__).resolve().parents[2] / "artifacts" / "browser" / "gateway_page.png"


def test_page_creates_a_task_shows_the_image_and_a_validation_error(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    SHOT.parent.mkdir(parents=True, exist_ok=True)
    with volcnb.gateway.serve(service_time=0.5) as gw, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1100})
            page.goto(gw.page_url)
            page.fill("#user", "page_user")
            page.click("#go")  # empty prompt
            expect(page.locator("#error")).to_contain_text("请求参数错误", timeout=10_000)
            expect(page.locator("#error")).to_contain_text("Prompt")
            page.fill("#prompt", "一只可爱的橘猫在樱花树下玩耍")
            page.select_option("#size", "512x512")
            page.select_option("#style", "anime")
            page.click("#go")
            expect(page.locator("#status")).to_contain_text("completed", timeout=30_000)
            image = page.locator("#image")
            expect(image).to_be_visible()
            assert image.evaluate("img => img.complete && img.naturalWidth") == 512
            expect(page.locator("#error")).to_have_text("")
            expect(page.locator("#recent tr")).to_have_count(1)
            expect(page.locator("#recent")).to_contain_text("completed")
            page.screenshot(path=str(SHOT), full_page=True)
        finally:
            browser.close()
    print(f"\nscreenshot: {SHOT}")
