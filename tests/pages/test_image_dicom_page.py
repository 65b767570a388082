"""The image page with a DICOM upload (written by pydicom here) and a 16-bit grey PNG: the window slider,
the model's input through the window (computed here by hand), and patient fields that never appear.
Also the "Colours from min" switch in view, and the near-uniform note in numbers."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from PIL import Image

import attnviz
from attnviz.ui import image_page as page
from attnviz.ui import image_window
from attnviz.ui.image_page import OVERLAY_CHART
from tests.dicom_files import dicom_bytes
from tests.pages.apptest_helpers import assert_clean, chart, decode, figure, start_clean

PAGE = "pages/image.py"
NAME, PATIENT_ID = "Doe^Jane-SECRET", "PID-SECRET-0042"


def ct_dicom(n: int = 96, **attrs) -> tuple[bytes, np.ndarray]:
    """A CT slice (stored values, rescaled by -1024 to HU) with a patient name and ID; (file, HU values)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:n, :n]
    stored = np.full((n, n), 24, dtype=np.int16)  # air, -1000 HU
    body = (yy - n / 2) ** 2 + (xx - n / 2) ** 2 < (n / 2.5) ** 2
    stored[body] = 1064 + rng.integers(-120, 120, size=int(body.sum()))  # soft tissue near 40 HU
    stored[(xx > n // 2) & (xx < n // 2 + 12) & (yy > n // 3) & (yy < n // 3 + 20)] = 2424  # bone, 1400 HU
    raw = dicom_bytes(stored, patient=(NAME, PATIENT_ID), RescaleSlope=1, RescaleIntercept=-1024, **attrs)
    return raw, stored.astype(np.float64) - 1024


def by_hand(values: np.ndarray, low: float, high: float) -> Image.Image:
    """The linear window that shows ``low`` black and ``high`` white, as the RGB picture the model takes."""
    y = np.where(values <= low, 0.0, np.where(values > high, 255.0, (values - low) / (high - low) * 255.0))
    return Image.fromarray(np.floor(y + 0.5).astype(np.uint8), "L").convert("RGB")


def overlay_z(at) -> np.ndarray:
    (trace,) = [t for t in figure(chart(at, OVERLAY_CHART))["data"] if t.get("type") == "heatmap"]
    return decode(trace["z"]).reshape(8, 8)


def expected_overlay(image: Image.Image) -> np.ndarray:
    model = attnviz.load_image_model(device="cpu")
    ia = attnviz.image_attention(model, image)
    return ia.cls_attention(ia.n_layers - 1)


def every_text(at) -> str:
    """Every element's message on the page (widgets, captions, charts' figure JSON, sidebar), as text."""
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        children = getattr(node, "children", None) or {}
        stack.extend(children.values())
    return "\n".join(out)


@pytest.fixture
def uploaded(caplog):
    caplog.set_level(logging.DEBUG)
    at = start_clean(PAGE)
    at.radio(key=page.SOURCE).set_value("Upload").run()
    raw, hu = ct_dicom(WindowCenter=40, WindowWidth=400)
    at.file_uploader(key=page.UPLOAD).upload("scan.dcm", raw, "application/dicom").run()
    assert_clean(at)
    return at, hu


def test_a_dicom_gets_its_own_window_and_the_model_sees_it(uploaded):
    at, hu = uploaded
    slider = at.slider(key=image_window.WINDOW)
    # Centre 40, width 400 (PS3.3 C.11.2.1.2.1): black at or below -160, white above 239.
    assert tuple(slider.value) == (-160, 239)
    assert slider.min == -1000 and slider.max == 1400  # the values' range, in HU
    assert "HU" in slider.label and "Windowing:" in slider.help
    (caption,) = [c.value for c in at.caption if c.value.startswith("Read: DICOM")]
    assert "96 x 96 pixels; 16 bits stored; value = stored x 1 + (-1024) HU; values -1000 to 1400 HU" in caption
    assert "window -160 to 239 HU (centre 40, width 400)" in caption
    assert "the file's own window: centre 40, width 400" in caption
    assert at.session_state[page.TARGET_FOR].endswith(":window=-160,239")
    np.testing.assert_allclose(overlay_z(at), expected_overlay(by_hand(hu, -160, 239)), rtol=1e-4, atol=1e-6)


def test_moving_the_window_changes_the_key_and_the_result(uploaded):
    at, hu = uploaded
    before = overlay_z(at)
    key_before = at.session_state[page.TARGET_FOR]
    at.slider(key=image_window.WINDOW).set_value((-1000, 1400)).run()
    assert_clean(at)
    key_after = at.session_state[page.TARGET_FOR]
    assert key_after.endswith(":window=-1000,1400") and key_after.split(":")[0] == key_before.split(":")[0]
    after = overlay_z(at)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, expected_overlay(by_hand(hu, -1000, 1400)), rtol=1e-4, atol=1e-6)
    # Back to the first window: the first result again (its own cache entry, never mixed with the other).
    at.button(key="image_window_reset").click().run()
    assert tuple(at.slider(key=image_window.WINDOW).value) == (-160, 239)
    np.testing.assert_allclose(overlay_z(at), before, rtol=1e-6)


def test_patient_fields_appear_nowhere_on_the_page_or_in_the_log(uploaded, caplog, capsys):
    at, _ = uploaded
    at.slider(key=image_window.WINDOW).set_value((-500, 500)).run()
    at.radio(key=page.MAP).set_value("Rollout").run()  # reruns the map views alone (attnviz.ui.image_page.RERUNS)
    assert_clean(at)
    at.run()  # AppTest's tree then holds those views only: a full run, to walk the whole page
    page_text = every_text(at)
    assert "Read: DICOM" in page_text  # the walk does reach the captions
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    out, err = capsys.readouterr()
    for secret in (NAME, "Doe", "Jane", PATIENT_ID, "SECRET", "19700101"):
        assert secret not in page_text
        assert secret not in logged and secret not in out and secret not in err


def test_a_damaged_dicom_gets_a_message(caplog):
    at = start_clean(PAGE)
    at.radio(key=page.SOURCE).set_value("Upload").run()
    raw, _ = ct_dicom()
    at.file_uploader(key=page.UPLOAD).upload("cut.dcm", raw[: len(raw) // 2], "application/dicom").run()
    assert not at.exception and not at.error
    (warning,) = [w.value for w in at.warning if "DICOM" in w.value]
    assert "Export it again" in warning or "export" in warning.lower()
    assert NAME not in every_text(at) and NAME not in caplog.text


def test_a_16_bit_png_gets_a_percentile_window_and_an_8_bit_png_none():
    at = start_clean(PAGE)
    at.radio(key=page.SOURCE).set_value("Upload").run()
    values = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 7 + 1000).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, "PNG")
    at.file_uploader(key=page.UPLOAD).upload("scan.png", buf.getvalue(), "image/png").run()
    assert_clean(at)
    low, high = np.percentile(values.astype(float), [0.5, 99.5])
    assert tuple(at.slider(key=image_window.WINDOW).value) == (np.floor(low), np.ceil(high))
    assert any("the 0.5th to 99.5th percentiles" in c.value for c in at.caption)
    expected = by_hand(values.astype(float), np.floor(low), np.ceil(high))
    np.testing.assert_allclose(overlay_z(at), expected_overlay(expected), rtol=1e-4, atol=1e-6)
    plain = io.BytesIO()
    Image.new("L", (64, 64), 90).save(plain, "PNG")
    at.file_uploader(key=page.UPLOAD).upload("plain.png", plain.getvalue(), "image/png").run()
    assert_clean(at)
    assert not [s for s in at.slider if s.key == image_window.WINDOW]


def test_colours_from_min_is_in_view_and_a_nearly_uniform_map_says_its_numbers():
    """Issue 18: a map spanning about 0-0.02 where uniform is 1/64 was painted fully orange, and the switch
    that shows its differences sat in a collapsed panel. Patch (0, 1) of the first demo in layer 0 is such a map."""
    at = start_clean(PAGE)
    assert at.toggle(key=page.FROM_MIN).value is False
    for panel in at.expander:
        assert not [t for t in panel.toggle if t.key == page.FROM_MIN], "the switch must not be in a panel"
    at.session_state[page.PATCH] = (0, 1)
    at.radio(key=page.MAP).set_value("From a clicked patch").run()
    at.selectbox(key=page.LAYER).set_value(0).run()
    assert_clean(at)
    z = overlay_z(at)
    (note,) = [i.value for i in at.info if i.value.startswith("Nearly uniform")]
    uniform = float(z.astype(np.float64).sum()) / 64  # the map's total (0.98: the rest is on the class token)
    assert z.max() < 2 * uniform
    assert f"the largest value, {z.max():.3g}, is {z.max() / uniform:.1f}x uniform (" in note
    assert f"spread evenly over the 64 cells, {uniform:.3g})" in note
    assert f"the smallest, {z.min():.3g}, is {z.min() / uniform:.1f}x" in note
    assert "under the choice of map" in note
