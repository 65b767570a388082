"""Take the README's screenshots: start the app, open every page and view in headless Chromium.

    python scripts/screenshots.py [--out docs/screenshots]

Needs Debian's chromium (/usr/bin/chromium) and Playwright for Python (requirements-bench.txt).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser.live_app import SCREENSHOTS, VIEWPORT, launch_chromium, running_app, wait_idle  # noqa: E402
from tests.browser.live_app import whole_page as _whole_page  # noqa: E402

#: The app's log while this script runs (git-ignored, next to the browser tests' screenshots).
LOG = SCREENSHOTS / "streamlit-screenshots-script.log"
VIEWS = {
    "text-single-head": "Single head",
    "text-layer-heads": "All heads of a layer",
    "text-overview": "Model overview",
    "text-head-lines": "Head lines",
    "text-from-token": "From one token",
    "text-rollout": "Rollout",
}


def whole_page(page, path: Path, max_height: int = 3200) -> None:
    _whole_page(page, path, max_height=max_height)
    print("wrote", path)


#: The decoder's views that the README shows (file name -> view).
DECODER_VIEWS = {
    "decoder-single-head": "Single head",
    "decoder-overview": "Model overview",
    "decoder-rollout": "Rollout",
}
DECODER_PROMPT = "The cat sat on the mat. The dog sat on the log. The cat sat on the"


def decoder_sentence_box(page, url: str):
    """The text page with the bundled decoder chosen; returns its Sentence box."""
    page.goto(f"{url}/text")
    page.wait_for_selector(".js-plotly-plot", timeout=90_000)
    page.get_by_role("button", name="Use bundled SmolLM2-135M-Instruct (decoder)").click()
    wait_idle(page, timeout_ms=180_000)
    return page.get_by_label("Sentence", exact=True)


def decoder_views(page, url: str, out: Path) -> None:
    """The text page after "Use bundled SmolLM2-135M-Instruct (decoder)", layer 17 (an induction layer)."""
    box = decoder_sentence_box(page, url)
    box.fill(DECODER_PROMPT)
    box.press("Control+Enter")
    wait_idle(page)
    page.get_by_text("Single head", exact=True).click()
    wait_idle(page)
    for label, option in (("Layer", "17"), ("Head", "3")):  # an induction head (the probe's second best)
        page.get_by_role("combobox", name=label, exact=True).click()
        page.keyboard.type(option)  # the list is virtualised: type to filter, then choose
        page.keyboard.press("Enter")
        wait_idle(page)
    for name, label in DECODER_VIEWS.items():
        page.get_by_text(label, exact=True).click()
        wait_idle(page)
        whole_page(page, out / f"{name}.png")
    page.get_by_role("button", name="Use bundled all-MiniLM-L6-v2").click()
    wait_idle(page)


def next_tokens(page, url: str, out: Path) -> None:
    """The next-tokens page with the bundled decoder: the prompt's next tokens, 8 generated, step 6."""
    page.goto(f"{url}/next_tokens")
    page.wait_for_selector("[data-testid=stMain] h1", timeout=90_000)
    wait_idle(page)
    page.get_by_role("button", name="Use bundled SmolLM2-135M-Instruct (decoder)").click()
    wait_idle(page, timeout_ms=180_000)
    box = page.get_by_label("Sentence", exact=True)
    box.fill(DECODER_PROMPT)
    box.press("Control+Enter")
    wait_idle(page)
    n = page.get_by_label("New tokens", exact=True)
    n.fill("8")
    n.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Generate").click()
    wait_idle(page, timeout_ms=180_000)
    slider = page.get_by_role("slider")
    slider.focus()
    for _ in range(5):
        slider.press("ArrowRight")
        wait_idle(page)
    whole_page(page, out / "next-tokens.png", max_height=2000)
    page.get_by_role("button", name="Use bundled all-MiniLM-L6-v2").click()
    wait_idle(page)


def image_page(page, url: str, out: Path) -> None:
    page.goto(f"{url}/image")
    page.wait_for_selector(".js-plotly-plot", timeout=90_000)
    page.get_by_text("Demo image", exact=True).first.wait_for()
    wait_idle(page)
    whole_page(page, out / "image-page.png")
    # Click a grid cell (row 2, column 5 of 8) of the overlay: where does that patch attend?
    box = page.locator(".st-key-image_overlay .js-plotly-plot").locator(".nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 5.5 / 8, box["y"] + box["height"] * 2.5 / 8)
    wait_idle(page)
    page.wait_for_timeout(1500)
    page.screenshot(path=out / "image-patch.png")
    print("wrote", out / "image-patch.png")


def image_dicom(page, url: str, out: Path) -> None:
    """The image page with the DICOM benchmark's 512 x 512 CT slice uploaded: its window slider and caption."""
    import tempfile

    from benchmarks.dicom_upload import ct_dicom

    page.goto(f"{url}/image")
    page.get_by_text("Upload", exact=True).first.wait_for(timeout=90_000)
    wait_idle(page)
    page.get_by_text("Upload", exact=True).first.click()
    wait_idle(page)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ct-slice.dcm"
        path.write_bytes(ct_dicom())
        page.locator("input[type=file]").set_input_files(str(path))
        page.get_by_text("Read: DICOM").wait_for(timeout=120_000)
        wait_idle(page)
    page.wait_for_timeout(1500)
    page.screenshot(path=out / "image-dicom.png")
    print("wrote", out / "image-dicom.png")


def image_cnn_family(page, url: str, out: Path) -> None:
    """The image page with a tiny random Hugging Face ResNet folder (64 x 64): Grad-CAM on a chosen layer,
    the layer picker and the note saying why the attention maps are absent."""
    import tempfile

    import torch
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    labels = {0: "cat", 1: "dog", 2: "fox"}
    config = ResNetConfig(
        embedding_size=16, hidden_sizes=[16, 32, 64], depths=[1, 1, 1], layer_type="basic", num_labels=3,
        id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        ResNetForImageClassification(config).save_pretrained(folder)
        ConvNextImageProcessor(size={"shortest_edge": 64}).save_pretrained(folder)
        page.goto(f"{url}/image")
        page.wait_for_selector(".js-plotly-plot", timeout=90_000)
        wait_idle(page)
        box = page.locator(".st-key-image_model_input input")
        box.fill(folder)
        box.press("Enter")  # submits the picker's form, as its Load button does
        page.get_by_text("Grad-CAM layer").first.wait_for(timeout=120_000)
        wait_idle(page)
        page.wait_for_timeout(3000)  # the bundled model's faded elements leave when the run ends
        wait_idle(page)
        whole_page(page, out / "image-cnn-family.png", max_height=2400)
    print("wrote", out / "image-cnn-family.png")


def image_swin(page, url: str, out: Path) -> None:
    """The image page with a tiny random Swin folder (64 x 64, windows of 4 x 4 patches): a clicked patch's
    window on a shifted block of the first stage, and the note on the maps a Swin lacks."""
    import tempfile

    import torch
    from transformers import SwinConfig, SwinForImageClassification

    labels = {0: "cat", 1: "dog", 2: "fox"}
    config = SwinConfig(
        image_size=64, patch_size=4, embed_dim=16, depths=[2, 2, 2], num_heads=[2, 4, 8], window_size=4,
        num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        SwinForImageClassification(config).save_pretrained(folder)
        page.goto(f"{url}/image")
        page.wait_for_selector(".js-plotly-plot", timeout=90_000)
        wait_idle(page)
        box = page.locator(".st-key-image_model_input input")
        box.fill(folder)
        box.press("Enter")
        page.get_by_text("windowed attention blocks").first.wait_for(timeout=120_000)
        wait_idle(page)
        page.get_by_role("combobox", name="Layer").first.click()
        page.get_by_role("option", name="1", exact=True).click()  # stage 0, block 1: a shifted block
        wait_idle(page)
        drag = page.locator(".st-key-image_overlay .js-plotly-plot .nsewdrag").first.bounding_box()
        page.mouse.click(drag["x"] + drag["width"] * 10.5 / 16, drag["y"] + drag["height"] * 5.5 / 16)  # patch (5, 10)
        wait_idle(page)
        page.mouse.move(5, 5)  # the chart's mode bar shows only under the mouse
        page.wait_for_timeout(1500)
        wait_idle(page)
        page.screenshot(path=out / "image-swin.png")
    print("wrote", out / "image-swin.png")


def train_images(page, url: str, out: Path) -> None:
    """The "Train on your images" page after a whole run on 2 separable classes (circle, cross) x 50 images at 64 x 64
    (the in-app training benchmark's set), with the 60 s default budget: the model card it ends with."""
    from attnviz.image.train import TRAIN_SEED
    from benchmarks.train_in_app import shape_zip

    page.goto(f"{url}/train_images")
    page.get_by_text("Start training").first.wait_for(timeout=90_000)
    wait_idle(page)
    data = shape_zip(["circle", "cross"], 50, TRAIN_SEED, 64)
    page.locator("[data-testid=stFileUploader] input[type=file]").first.set_input_files(
        files=[{"name": "circles-and-crosses.zip", "mimeType": "application/zip", "buffer": data}]
    )
    page.locator("[data-testid=stFileChipName]").first.wait_for(timeout=60_000)
    wait_idle(page)
    page.locator("[data-testid=stMain]").get_by_role("button", name="Start training", exact=True).click()
    page.get_by_text("It is now the image page's model").wait_for(timeout=300_000)
    wait_idle(page)
    whole_page(page, out / "train-images.png", max_height=2400)


def worked_example(page, url: str, out: Path) -> None:
    page.goto(f"{url}/worked_example")
    page.wait_for_selector(".js-plotly-plot", timeout=90_000)
    wait_idle(page)
    whole_page(page, out / "worked-toy.png", max_height=2200)
    page.get_by_text("Real model", exact=True).click()
    wait_idle(page)
    page.wait_for_selector(".js-plotly-plot", timeout=90_000)
    wait_idle(page)
    whole_page(page, out / "worked-real.png", max_height=2200)


def head_stats(page, url: str, out: Path) -> None:
    page.goto(f"{url}/head_stats")
    page.wait_for_selector(".js-plotly-plot", timeout=90_000)
    wait_idle(page)
    whole_page(page, out / "head-stats.png")
    page.get_by_text("Attention vs attribution", exact=True).click()
    wait_idle(page, timeout_ms=180_000)
    page.wait_for_selector(".js-plotly-plot", timeout=180_000)
    wait_idle(page)
    whole_page(page, out / "attribution.png")


def faithfulness(page, url: str, out: Path) -> None:
    """The "Is this explanation faithful?" panel after its button, on the text page (bundled encoder) and the
    image page (first demo image): the panel alone, from its heading down."""
    for path, name in (("text", "faithfulness-text"), ("image", "faithfulness-image")):
        page.goto(f"{url}/{path}")
        page.wait_for_selector(".js-plotly-plot", timeout=90_000)
        wait_idle(page)
        button = page.get_by_role("button", name="Score the explanations")
        if button.count():  # not scored yet in this server
            button.click()
        page.get_by_text("Scored in").wait_for(timeout=300_000)
        wait_idle(page)
        heading = page.get_by_role("heading", name="Is this explanation faithful?")
        page.set_viewport_size({"width": VIEWPORT["width"], "height": 6000})  # tall enough that nothing scrolls
        wait_idle(page)
        main = page.get_by_test_id("stMainBlockContainer").bounding_box()  # the page's column, not the sidebar
        top = heading.bounding_box()["y"] - 16
        bottom = page.get_by_role("button", name="Curves: PNG, SVG, PDF").bounding_box()
        clip = {"x": main["x"], "y": top, "width": main["width"], "height": bottom["y"] + bottom["height"] + 16 - top}
        page.screenshot(path=out / f"{name}.png", clip=clip)
        page.set_viewport_size(VIEWPORT)
        print("wrote", out / f"{name}.png")


def long_prompt(page, url: str, out: Path) -> None:
    """An 8,192-token prompt on the decoder (README pasted until it is cut): layer 17, head 3, pooled."""
    box = decoder_sentence_box(page, url)
    box.fill((ROOT / "README.md").read_text(encoding="utf-8") * 2, timeout=120_000)  # ~18,000 tokens
    box.press("Control+Enter")
    page.get_by_text("Zoom: exact weights").wait_for(timeout=600_000)
    wait_idle(page)
    for label, option in (("Layer", "17"), ("Head", "3")):
        page.get_by_role("combobox", name=label, exact=True).click()
        page.keyboard.type(option)
        page.keyboard.press("Enter")
        wait_idle(page)
    page.get_by_text("Layer 17, head 3", exact=False).first.wait_for(timeout=120_000)
    wait_idle(page)
    whole_page(page, out / "long-single-head.png")
    page.get_by_text("All heads of a layer", exact=True).click()
    page.get_by_text("Click a head to open it alone.").wait_for(timeout=120_000)
    wait_idle(page)
    whole_page(page, out / "long-layer-heads.png")
    page.get_by_role("button", name="Use bundled all-MiniLM-L6-v2").click()
    wait_idle(page)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--only-long", action="store_true", help="only the 8,192-token prompt's screenshots")
    parser.add_argument("--only-dicom", action="store_true", help="only the image page with a DICOM upload")
    parser.add_argument("--only-cnn-family", action="store_true", help="only the image page with a tiny HF ResNet")
    parser.add_argument("--only-faithfulness", action="store_true", help="only the faithfulness panel's screenshots")
    parser.add_argument("--only", choices=sorted(SECTIONS), help="only one section's screenshots")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with running_app(log_path=LOG) as url, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport=VIEWPORT)
        if args.only:
            SECTIONS[args.only](page, url, out)
            browser.close()
            return
        if args.only_cnn_family:
            image_cnn_family(page, url, out)
            browser.close()
            return
        if args.only_dicom:
            image_dicom(page, url, out)
            browser.close()
            return
        if args.only_long or args.only_faithfulness:
            (long_prompt if args.only_long else faithfulness)(page, url, out)
            browser.close()
            return
        page.goto(f"{url}/")
        page.wait_for_selector("[data-testid=stDataFrame]", timeout=90_000)
        wait_idle(page)
        page.screenshot(path=out / "home.png")
        page.goto(f"{url}/text")
        page.wait_for_selector(".js-plotly-plot", timeout=90_000)
        wait_idle(page)
        for name, label in VIEWS.items():
            page.get_by_text(label, exact=True).click()
            wait_idle(page)
            page.screenshot(path=out / f"{name}.png", full_page=True)
            print("wrote", out / f"{name}.png")
        decoder_views(page, url, out)
        long_prompt(page, url, out)
        next_tokens(page, url, out)
        image_page(page, url, out)
        image_dicom(page, url, out)
        image_cnn_family(page, url, out)
        image_swin(page, url, out)
        train_images(page, url, out)
        worked_example(page, url, out)
        head_stats(page, url, out)
        faithfulness(page, url, out)
        browser.close()


#: ``--only``'s sections (the whole run takes them all, after the home page and the text views).
SECTIONS = {
    "decoder": decoder_views,
    "long": long_prompt,
    "next-tokens": next_tokens,
    "image": image_page,
    "dicom": image_dicom,
    "cnn-family": image_cnn_family,
    "swin": image_swin,
    "train": train_images,
    "worked": worked_example,
    "head-stats": head_stats,
    "faithfulness": faithfulness,
}


if __name__ == "__main__":
    main()
