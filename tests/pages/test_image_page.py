"""The image page driven through AppTest: demo images, uploads, bad files, controls."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import attnviz
from attnviz.image import generated_shapes
from attnviz.ui import image_drawing
from attnviz.ui import image_page as page
from attnviz.ui.image_page import OVERLAY_CHART
from tests.pages.apptest_helpers import assert_clean, chart, charts, decode, figure, start_clean

PAGE = "pages/image.py"


@pytest.fixture
def at():
    return start_clean(PAGE)


def _overlay(at) -> dict:
    return figure(chart(at, OVERLAY_CHART))


def _overlay_z(at) -> np.ndarray:
    (trace,) = [t for t in _overlay(at)["data"] if t.get("type") == "heatmap"]
    return decode(trace["z"]).reshape(8, 8)


def test_demo_image_shows_overlay_predictions_heads_and_gradients(at):
    assert at.title[0].value == "Image attention"
    figs = [figure(c) for c in charts(at)]
    assert len(figs) == 4  # predictions (the image's column comes first), overlay, heads of a layer, vs gradients
    # The overlay is the class token's attention in the last layer, mean of heads, over the demo image.
    model = attnviz.load_image_model(device="cpu")
    ia = attnviz.image_attention(model, generated_shapes.demo_samples()[0].image)
    np.testing.assert_allclose(_overlay_z(at), ia.cls_attention(ia.n_layers - 1), rtol=1e-5, atol=1e-7)
    # Predictions bar: probabilities of the top 5, best first (drawn bottom-up).
    bars = figs[0]["data"][0]
    assert list(reversed(bars["y"])) == [label for label, _ in ia.predictions[:5]]
    # Small multiples: one map per head plus their mean.
    assert sum(t.get("type") == "heatmap" for t in figs[2]["data"]) == ia.n_heads + 1
    assert at.dataframe, "demo images are scored against their masks"


def test_the_whole_page_stays_small(at):
    total = sum(len(c.proto.spec) for c in charts(at))
    assert total < 1_000_000, total


def test_switching_demo_layer_head_and_map(at):
    at.selectbox(key=page.DEMO).set_value(5).run()
    assert_clean(at)
    model = attnviz.load_image_model(device="cpu")
    ia = attnviz.image_attention(model, generated_shapes.demo_samples()[5].image)
    np.testing.assert_allclose(_overlay_z(at), ia.cls_attention(1), rtol=1e-5, atol=1e-7)
    at.selectbox(key=page.LAYER).set_value(0).run()
    at.selectbox(key=page.HEAD).set_value(2).run()
    assert_clean(at)
    np.testing.assert_allclose(_overlay_z(at), ia.cls_attention(0, 2), rtol=1e-5, atol=1e-7)
    at.radio(key=page.MAP).set_value("Rollout").run()
    assert_clean(at)
    expected = attnviz.rollout(ia.weights)[0, 1:].reshape(8, 8)
    np.testing.assert_allclose(_overlay_z(at), expected, rtol=1e-4, atol=1e-7)
    at.radio(key=page.MAP).set_value("From a clicked patch").run()
    assert_clean(at)
    np.testing.assert_allclose(_overlay_z(at), ia.cell_attention(0, 2, 4, 4), rtol=1e-5, atol=1e-7)


def test_opacity_and_colour_map_do_not_rerun_the_model(at, monkeypatch):
    import attnviz.ui.cache as models

    calls = []
    monkeypatch.setattr(models, "image_attention", lambda *a: calls.append(a))
    at.slider(key=page.OPACITY).set_value(0.9).run()
    at.selectbox(key=page.COLORMAP).set_value("viridis").run()
    assert_clean(at)
    assert not calls
    heat = [t for t in _overlay(at)["data"] if t.get("type") == "heatmap"][0]
    assert heat["opacity"] == pytest.approx(0.9)


def _png(im: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def test_upload_a_photo(at):
    at.radio(key=page.SOURCE).set_value("Upload").run()
    assert_clean(at)
    assert any("Upload an image" in i.value for i in at.info)
    photo = Image.new("RGB", (900, 600), (30, 120, 200))
    at.file_uploader(key=page.UPLOAD).upload("photo.jpg", _png(photo, "JPEG"), "image/jpeg").run()
    assert_clean(at)
    assert len(charts(at)) == 4
    assert not at.dataframe  # no mask for an upload, so no pointing game
    # One flat colour is nothing like the generated shapes: the page says so above the predictions.
    (warning,) = [w.value for w in at.warning if "unlike anything the model was trained on" in w.value]
    assert "Try a demo image" in warning


def test_a_demo_image_is_like_the_training_images(at):
    assert not [w for w in at.warning if "unlike anything" in w.value]
    assert any(c.value.startswith("Like the training images") for c in at.caption)


@pytest.mark.parametrize(
    ("name", "data", "mime"),
    [("notes.png", b"this is not an image", "image/png"), ("empty.jpg", b"", "image/jpeg")],
)
def test_bad_upload_gives_a_message_and_the_page_keeps_working(at, name, data, mime):
    at.radio(key=page.SOURCE).set_value("Upload").run()
    at.file_uploader(key=page.UPLOAD).upload(name, data, mime).run()
    assert not at.exception
    text = " ".join(w.value for w in at.warning)
    assert "PNG, JPEG" in text or "empty" in text
    at.radio(key=page.SOURCE).set_value("Demo image").run()
    assert_clean(at)
    assert len(charts(at)) == 4


def test_choosing_another_class_to_explain(at):
    box = at.selectbox(key=page.TARGET)
    assert len(box.options) == 8
    other = next(c for c in generated_shapes.CLASSES if c != box.value)
    box.set_value(other).run()
    assert_clean(at)
    assert at.selectbox(key=page.TARGET).value == other
    assert any(f"“{other}”" in c.value for c in at.caption)  # the gradient maps explain it


def test_another_model_folder_loads_from_the_sidebar(at, tmp_path):
    """A folder written by attnviz.image.train (here a 2-step run on another seed) replaces the bundled model."""
    from attnviz.image.train import train

    folder = tmp_path / "my-model"
    train(folder, steps=2, batch=8, n_train=16, n_val=8, n_test=8, seed=5, device="cpu", log=lambda s: None)
    at.text_input(key=page.MODEL_INPUT).set_value(str(folder))
    at.form_submit_button[0].click().run()  # the form's Load button
    assert_clean(at)
    assert at.session_state[page.MODEL] == str(folder)
    model = attnviz.load_image_model(str(folder), device="cpu")
    ia = attnviz.image_attention(model, generated_shapes.demo_samples()[0].image)
    np.testing.assert_allclose(_overlay_z(at), ia.cls_attention(1), rtol=1e-5, atol=1e-7)
    [b for b in at.button if b.label.startswith("Use bundled")][0].click().run()  # back to the bundled model
    assert at.session_state[page.MODEL] == "shapes-cnn-attention"


def test_a_model_that_cannot_load_keeps_the_current_one(at, tmp_path):
    at.text_input(key=page.MODEL_INPUT).set_value(str(tmp_path / "nothing-here"))
    at.form_submit_button[0].click().run()  # the form's Load button
    assert not at.exception
    assert any("Could not load" in w.value for w in at.warning)
    assert page.MODEL not in at.session_state or at.session_state[page.MODEL] == "shapes-cnn-attention"
    assert len(charts(at)) == 4


def test_a_vit_has_no_grad_cam_and_says_so(at, tmp_path):
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    labels = {0: "cat", 1: "dog", 2: "fox"}
    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(str(tmp_path / "vit"))
    at.text_input(key=page.MODEL_INPUT).set_value(str(tmp_path / "vit"))
    at.form_submit_button[0].click().run()  # the form's Load button
    assert_clean(at)
    assert any("No Grad-CAM" in c.value for c in at.caption)
    assert _overlay_z_shape(at) == (4, 4)


def _overlay_z_shape(at) -> tuple[int, int]:
    (trace,) = [t for t in _overlay(at)["data"] if t.get("type") == "heatmap"]
    z = trace["z"]
    return tuple(int(v) for v in str(z["shape"]).split(",")) if isinstance(z, dict) else np.asarray(z).shape


def test_colour_scale_from_the_maps_minimum(at):
    heat = [t for t in _overlay(at)["data"] if t.get("type") == "heatmap"][0]
    assert heat["zmin"] == 0
    at.toggle(key=page.FROM_MIN).set_value(True).run()
    assert_clean(at)
    heat = [t for t in _overlay(at)["data"] if t.get("type") == "heatmap"][0]
    z = _overlay_z(at)
    assert heat["zmin"] == pytest.approx(float(z.min()), rel=1e-5)
    assert heat["zmax"] == pytest.approx(float(z.max()), rel=1e-5)


def test_a_second_upload_is_analysed_not_the_first_ones_cached_result(at):
    """The upload's cache key is remembered per uploaded file; a new file must get a new key."""
    at.radio(key=page.SOURCE).set_value("Upload").run()
    first, second = generated_shapes.demo_samples()[0], generated_shapes.demo_samples()[6]
    at.file_uploader(key=page.UPLOAD).upload("a.png", _png(first.image), "image/png").run()
    z_first = _overlay_z(at)
    at.file_uploader(key=page.UPLOAD).upload("b.png", _png(second.image), "image/png").run()
    assert_clean(at)
    model = attnviz.load_image_model(device="cpu")
    expected = attnviz.image_attention(model, second.image).cls_attention(1)
    np.testing.assert_allclose(_overlay_z(at), expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(z_first, expected)


# ------------------------------------------- model-supplied names are text

HOSTILE_CLASSES = [
    "[click](http://evil.example)",
    "![x](http://evil.example/pixel.png)",
    '<a href="http://evil.example">link</a>',
    "<b>bold</b>",
    "$\\frac{1}{2}$",
    "**strong**",
    "<img src=x onerror=alert(1)>",
    "line<br>break",
]


@pytest.fixture
def hostile_model(tmp_path):
    """The bundled model's weights under a card whose class names are links, images, HTML and LaTeX.

    The card's SHA-256 covers the weights only, so any folder can rename the classes.
    """
    import json
    import shutil

    from attnviz.image.loading import bundled_image_dir

    folder = tmp_path / "hostile-model"
    shutil.copytree(bundled_image_dir(), folder)
    card = json.loads((folder / "model_card.json").read_text())
    assert len(card["classes"]) == len(HOSTILE_CLASSES)
    card["classes"] = HOSTILE_CLASSES
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


def _shown_as_text(markdown: str) -> None:
    """No Markdown link or image, no HTML tag, no LaTeX survives: each special character is escaped."""
    import re

    assert not re.search(r"(?<!\\)\]\((?!\\)", markdown), markdown  # [text](url) would be a link
    assert not re.search(r"(?<!\\)[<$]", markdown), markdown


def test_class_names_from_a_model_card_show_as_text(at, hostile_model):
    from attnviz.ui.safe import md_escape

    at.text_input(key=page.MODEL_INPUT).set_value(str(hostile_model))
    at.form_submit_button[0].click().run()  # the form's Load button
    assert_clean(at)
    (caption,) = [c.value for c in at.caption if "classes:" in c.value]
    _shown_as_text(caption)
    assert all(md_escape(name) in caption for name in HOSTILE_CLASSES)
    assert "http://" not in caption.replace("\\", "")  # GFM would autolink it, escaped or not
    for fig in (figure(c) for c in charts(at)):
        texts = [fig["layout"].get("title", {}).get("text") or ""]
        texts += [a.get("text", "") for a in fig["layout"].get("annotations", [])]
        for trace in fig["data"]:
            texts += [str(v) for v in trace.get("y", []) if isinstance(v, str)]
        for text in texts:
            assert "<" not in text, text
            assert not text.startswith("$"), text
    (explained,) = [c.value for c in at.caption if "raised the score of" in c.value]
    _shown_as_text(explained)


def test_the_caption_names_at_most_twenty_classes_escaped():
    names = tuple(f"n{i}_x" for i in range(1000))  # an ImageNet ViT
    shown = image_drawing.class_list(names)
    assert shown.startswith("classes: n0\\_x, n1\\_x") and shown.endswith("n19\\_x and 980 more")


def test_the_image_uploader_states_the_true_cap(at):
    """Issue 19, item 9's bug on this page: the uploader must refuse what the server would refuse
    (Streamlit's own clear message), not let it through to a raw "AxiosError 413"."""
    import tomllib
    from pathlib import Path

    from attnviz.image.decoding import MAX_BYTES

    server_cap = tomllib.loads(Path(".streamlit/config.toml").read_text())["server"]["maxUploadSize"]
    at.radio(key=page.SOURCE).set_value("Upload").run()
    uploader = at.file_uploader(key=page.UPLOAD)
    cap = min(server_cap, MAX_BYTES // 2**20)
    assert uploader.proto.max_upload_size_mb == cap == 20
    assert f"Up to {cap} MB" in uploader.help


def test_every_pair_of_maps_is_worded_by_the_one_rule(at):
    """Each correlation gets its words (never "hardly disagree"), and the caption states the rule."""
    from attnviz.maths.agreement import STRENGTHS

    words = {w for _, w in STRENGTHS} | {"very strong"}
    metrics = [m for m in at.metric if m.label.count(" vs ") == 1]
    assert len(metrics) == 3  # rollout vs Grad-CAM, rollout vs IG, Grad-CAM vs IG
    worded = [c.value for c in at.caption if any(c.value.lower().startswith(w) for w in words)]
    assert len(worded) == 3
    assert not any("hardly" in c.value for c in at.caption)
    assert any("no relation; below 0.3: weak" in c.value for c in at.caption)


def test_an_imprecise_integral_warns_and_offers_more_steps(at, monkeypatch):
    import attnviz.maths.integral_check as check

    monkeypatch.setattr(check, "MAX_SHARE", -1.0)  # every integral is "imprecise"
    at.run()
    assert any("with 128 steps" in w.value for w in at.warning)
    at.button(key="image_ig_more_steps").click().run()
    assert_clean(at)
    assert any("with 256 steps" in w.value for w in at.warning)
    assert any("(256 steps)" in c.value for c in at.caption)


def test_a_nearly_uniform_map_says_so_in_numbers(at):
    """Patch (0, 1) of the first demo image attends almost evenly in layer 0: coloured from 0, it looked strong."""
    at.session_state[page.PATCH] = (0, 1)
    at.radio(key=page.MAP).set_value("From a clicked patch").run()
    at.selectbox(key=page.LAYER).set_value(0).run()
    assert_clean(at)
    notes = [i.value for i in at.info if i.value.startswith("Nearly uniform")]
    assert len(notes) == 1 and "x uniform (" in notes[0] and "Colours from min" in notes[0]
    at.toggle(key=page.FROM_MIN).set_value(True).run()
    notes = [i.value for i in at.info if i.value.startswith("Nearly uniform")]
    assert len(notes) == 1 and "from the smallest value" in notes[0]
    at.radio(key=page.MAP).set_value("Class token").run()
    assert not [i for i in at.info if i.value.startswith("Nearly uniform")]
