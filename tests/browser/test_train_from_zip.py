"""Training on your own images in real Chromium: upload a .zip made here, watch a few steps, Stop, and
see the new model's attention overlay on the image page."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
from PIL import Image, ImageDraw

from tests.browser.live_app import wait_idle
from tests.browser.page_tools import alerts, assert_no_errors, open_page, screenshot, upload, wait_for_text

STEP = re.compile(r"Step ([\d,]+) · loss [\d.]+ · held-out accuracy (\d+)%")


def shapes_zip(per_class: int = 8, size: int = 48) -> bytes:
    """Dark discs and bars on light backgrounds, one folder per class."""
    rng = np.random.default_rng(5)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in ("disc", "bar"):
            for i in range(per_class):
                image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(180, 250, 3)))
                x, y = (int(v) for v in rng.integers(8, size - 24, 2))
                box = (x, y, x + 16, y + 16) if name == "disc" else (x, y + 6, x + 18, y + 10)
                draw = ImageDraw.Draw(image)
                (draw.ellipse if name == "disc" else draw.rectangle)(box, fill=(30, 30, 90))
                png = io.BytesIO()
                image.save(png, "PNG")
                z.writestr(f"my-shapes/{name}/{i}.png", png.getvalue())
    return buf.getvalue()


def main_button(page, label: str):
    # In the page's main part: Streamlit's own header has a "Stop" button while a script runs.
    return page.locator("[data-testid=stMain]").get_by_role("button", name=label, exact=True)


def test_upload_train_stop_and_see_the_overlay(live_app, page, page_events):
    open_page(page, live_app.url("train_images"), charts=False)
    upload(page, "my-shapes.zip", shapes_zip(), "application/zip")
    main_button(page, "Start training").click()
    wait_for_text(page, "held-out accuracy", "[data-testid=stProgress]")
    page.wait_for_timeout(2500)  # a few more polls of the running training
    text = page.locator("[data-testid=stProgress]").first.inner_text()
    assert STEP.search(text), text
    screenshot(page, "train-images-running")
    main_button(page, "Stop").click()
    wait_for_text(page, "It is now the image page's model")
    wait_idle(page)
    assert_no_errors(page)
    main = page.locator("[data-testid=stMain]").inner_text()
    assert "stopped by you" in main and "Model card" in main and "calibrated on" in main
    screenshot(page, "train-images-done")

    page.get_by_role("link", name="See where it looks on the image page").click()
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    wait_idle(page)
    wait_for_text(page, "classes: bar, disc")
    caption = page.locator("[data-testid=stMain] [data-testid=stCaptionContainer]").first.inner_text()
    assert "attnviz-trained/my-shapes-" in caption.replace("\u200b", "")
    assert page.locator(".js-plotly-plot").count() >= 1  # the overlay of its attention on the demo image
    # The demo image (a generated shape on clutter) is unlike the upload: the new model's own domain check,
    # calibrated on the upload's held-out images, says so above its predictions.
    assert_no_errors(page, warnings=False)
    assert any("unlike anything the model was trained on (my-shapes.zip" in w for w in alerts(page, "Warning"))
    screenshot(page, "train-images-image-page")
    page_events.assert_clean()
