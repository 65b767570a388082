"""DICOM (written by pydicom here), 16-bit PNG and TIFF, and the DICOM window, against hand computations."""

from __future__ import annotations

import io
import logging

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGLSLossless

import attnviz
from attnviz.errors import InputError
from attnviz.image import medical_images as medical
from attnviz.image.decoding import EXTENSIONS, FORMAT_HINT, open_image
from attnviz.image.medical_images import Window, apply_window
from tests.dicom_files import SECRET_NAME, dicom_bytes

SECRET = SECRET_NAME


def ct_slice(n: int = 32, seed: int = 0) -> np.ndarray:
    """Stored values of a CT-like slice: air around a body of soft tissue with a bright bone."""
    rng = np.random.default_rng(seed)
    stored = np.full((n, n), 24, dtype=np.int16)  # air: 24 * 1 - 1024 = -1000 HU
    yy, xx = np.mgrid[:n, :n]
    body = (yy - n / 2) ** 2 + (xx - n / 2) ** 2 < (n / 2.5) ** 2
    stored[body] = 1064 + rng.integers(-60, 60, size=int(body.sum()))  # soft tissue around 40 HU
    stored[n // 2 - 2 : n // 2 + 2, n // 2 - 2 : n // 2 + 2] = 2024  # bone: 1000 HU
    return stored


# ---------------------------------------------------------------- the window formula


def test_window_formula_by_hand():
    """PS3.3 C.11.2.1.2.1 with c = 40, w = 400: black at or below -160, white above 239, linear between."""
    x = np.array([-1000, -160, -159.5, 0, 39.5, 40, 238, 239, 239.5, 3000])
    # ((x - 39.5) / 399 + 0.5) * 255, rounded halves up, worked out by hand:
    # -159.5 -> 0.3195 -> 0;  0 -> 102.256 -> 102;  39.5 -> 127.5 -> 128;  40 -> 127.82 -> 128;
    # 238 -> 254.36 -> 254;  239 -> 255.
    expected = [0, 0, 0, 102, 128, 128, 254, 255, 255, 255]
    assert apply_window(x, Window(40, 400)).tolist() == expected
    assert apply_window(x, Window(40, 400), inverted=True).tolist() == [255 - v for v in expected]
    w = Window(40, 400)
    assert (w.low, w.high) == (-160, 239)


def test_window_from_range_maps_its_ends_to_black_and_white():
    w = Window.from_range(-160, 239)
    assert (w.centre, w.width) == (40, 400)
    values = 0.2 + 0.5 * np.array([0, 0.13, 0.33, 0.61, 0.91, 1])  # a float image: any positive span works
    out = apply_window(values, Window.from_range(0.2, 0.7))
    np.testing.assert_array_equal(out, np.floor((values - 0.2) / 0.5 * 255 + 0.5).astype(np.uint8))
    with pytest.raises(InputError, match="above its bottom"):
        Window.from_range(3, 3)
    with pytest.raises(InputError, match="at least 1"):
        Window(0, 0.5)


def test_window_of_width_one_is_a_threshold_and_nan_is_black():
    out = apply_window(np.array([9.4, 9.5, 9.6, np.nan, np.inf, -np.inf]), Window(10, 1))
    assert out.tolist() == [0, 0, 255, 0, 255, 0]


def test_window_agrees_with_pydicoms_own_windowing():
    """pydicom's apply_windowing (its own code of the same formula, into the stored bits' range 0..65535)."""
    from pydicom.pixels import apply_windowing

    ds = Dataset()
    ds.PhotometricInterpretation, ds.BitsStored, ds.PixelRepresentation = "MONOCHROME2", 16, 0
    ds.WindowCenter, ds.WindowWidth = 30000, 20001
    x = np.arange(0, 65536, 97, dtype=np.float64)
    theirs = apply_windowing(x.copy(), ds) / 65535 * 255
    ours = apply_window(x, Window(30000, 20001)).astype(float)
    assert np.abs(ours - theirs).max() <= 0.5 + 1e-9


def test_windowing_goes_a_strip_at_a_time_with_the_same_result(monkeypatch):
    values = np.random.default_rng(1).normal(0, 300, size=(37, 23))
    whole = apply_window(values, Window(10, 500))
    monkeypatch.setattr(medical, "STRIP_PIXELS", 50)  # two rows a strip
    np.testing.assert_array_equal(apply_window(values, Window(10, 500)), whole)


# ---------------------------------------------------------------- DICOM


def test_dicom_values_are_modality_units_with_the_files_first_window():
    stored = ct_slice()
    raw = dicom_bytes(stored, RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=[40, 300], WindowWidth=[400, 1500])
    grey = medical.read_grey(raw)
    np.testing.assert_array_equal(grey.values, stored.astype(np.float64) - 1024)
    info = grey.info
    assert info.kind == "DICOM" and info.unit == "HU" and info.size == (32, 32) and not info.inverted
    assert info.window == Window(40, 400)
    assert info.file_windows == (Window(40, 400), Window(300, 1500))
    assert info.value_range == (-1000.0, 1000.0) and info.integer
    # The picture: the hand formula on the HU values.
    hu = stored.astype(np.float64) - 1024
    y = np.where(hu <= -160, 0, np.where(hu > 239, 255, ((hu - 39.5) / 399 + 0.5) * 255))
    expected = np.floor(y + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(medical.windowed_image(grey)), expected)
    # open_image shows a DICOM through the same default window.
    rgb = open_image(raw)
    assert rgb.mode == "RGB" and rgb.size == (32, 32)
    np.testing.assert_array_equal(np.asarray(rgb)[..., 0], expected)
    assert "dcm" in EXTENSIONS and "DICOM" in FORMAT_HINT


def test_rescale_slope_is_applied():
    stored = np.arange(12, dtype=np.uint16).reshape(3, 4) * 100
    grey = medical.read_dicom(dicom_bytes(stored, RescaleSlope="2.5", RescaleIntercept="-10", RescaleType="US"))
    np.testing.assert_allclose(grey.values, stored * 2.5 - 10)
    assert grey.info.unit == ""  # the file says its units are unspecified


def test_monochrome1_is_inverted():
    stored = ct_slice()
    plain = medical.read_dicom(dicom_bytes(stored, WindowCenter=1100, WindowWidth=800))
    inverted = medical.read_dicom(
        dicom_bytes(stored, WindowCenter=1100, WindowWidth=800, PhotometricInterpretation="MONOCHROME1")
    )
    assert inverted.info.inverted
    np.testing.assert_array_equal(
        np.asarray(medical.windowed_image(inverted)), 255 - np.asarray(medical.windowed_image(plain))
    )


def test_without_a_window_the_default_is_the_percentiles():
    stored = ct_slice(seed=3)
    grey = medical.read_dicom(dicom_bytes(stored, RescaleSlope=1, RescaleIntercept=-1024))
    low, high = np.percentile(stored.astype(float) - 1024, [0.5, 99.5])
    assert grey.info.file_windows == ()
    assert grey.info.window.low == pytest.approx(low) and grey.info.window.high == pytest.approx(high)


def test_linear_exact_window_becomes_the_linear_window_with_its_edges():
    raw = dicom_bytes(ct_slice(), WindowCenter=1000, WindowWidth=200, VOILUTFunction="LINEAR_EXACT")
    grey = medical.read_dicom(raw)
    assert (grey.info.window.low, grey.info.window.high) == (900, 1100)


def test_unusable_file_window_falls_back_to_the_percentiles():
    grey = medical.read_dicom(dicom_bytes(ct_slice(), WindowCenter=40, WindowWidth=0))
    assert grey.info.file_windows == () and grey.info.window.width > 1


def test_compressed_without_a_decoder_is_an_input_error_naming_the_compression():
    stored = ct_slice()
    raw = dicom_bytes(stored, syntax=JPEGLSLossless, pixel_data=encapsulate([b"\xff\xd8not jpeg-ls\xff\xd9"]))
    with pytest.raises(InputError) as info:
        medical.read_grey(raw)
    message = str(info.value)
    assert "JPEG-LS Lossless" in message and "uncompressed" in message and SECRET not in message
    with pytest.raises(InputError):
        open_image(raw)


def test_no_pixel_data_and_oversize_are_refused_before_decoding():
    stored = ct_slice()
    raw = dicom_bytes(stored)
    ds = pydicom.dcmread(io.BytesIO(raw))
    del ds.PixelData
    buf = io.BytesIO()
    ds.save_as(buf)
    with pytest.raises(InputError, match="no image"):
        medical.read_dicom(buf.getvalue())
    huge = dicom_bytes(stored, Rows=60000, Columns=60000)
    with pytest.raises(InputError, match="megapixels"):
        medical.read_dicom(huge)


def test_every_truncation_and_some_byte_flips_open_or_raise_an_input_error():
    raw = dicom_bytes(ct_slice(8), RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)
    rng = np.random.default_rng(7)
    damaged = [raw[:i] for i in range(len(raw))]
    for _ in range(600):
        data = bytearray(raw)
        i = int(rng.integers(132, len(raw)))
        data[i] = int(rng.integers(0, 256))
        damaged.append(bytes(data))
    for data in damaged:
        try:
            open_image(data, max_side=16)
        except InputError as exc:
            assert SECRET not in str(exc)


def test_patient_fields_are_never_read_nor_logged(caplog, capfd):
    """Only pixel tags are parsed: the dataset never holds the name, and pydicom's debug log never prints it."""
    raw = dicom_bytes(ct_slice(), WindowCenter=1064, WindowWidth=400)
    pydicom.config.debug(True)
    try:
        with caplog.at_level(logging.DEBUG):
            grey = medical.read_grey(raw)
            open_image(raw)
    finally:
        pydicom.config.debug(False)
    out, err = capfd.readouterr()
    text = caplog.text + out + err + repr(grey.info)
    assert caplog.text, "pydicom's debug log was on, so something was logged"
    for secret in (SECRET, "SECRET", SECRET.encode().hex(" ")[:20]):
        assert secret not in text
    assert "PatientName" not in medical.PIXEL_TAGS


# ---------------------------------------------------------------- 16-bit PNG and TIFF


def _saved(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def test_16_bit_png_keeps_its_values_and_windows_by_percentiles():
    values = (np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 37) % 50000 + 1000
    raw = _saved(Image.fromarray(values), "PNG")
    grey = medical.read_grey(raw)
    np.testing.assert_array_equal(grey.values, values)
    assert grey.info.kind == "16-bit PNG" and grey.info.value_range == (float(values.min()), float(values.max()))
    low, high = np.percentile(values.astype(float), [0.5, 99.5])
    assert (grey.info.window.low, grey.info.window.high) == pytest.approx((low, high))
    # The windowed picture is the hand formula with those ends: (x - low) / (high - low) * 255.
    y = np.clip((values - low) / (high - low) * 255, 0, 255)
    np.testing.assert_array_equal(np.asarray(medical.windowed_image(grey)), np.floor(y + 0.5).astype(np.uint8))
    png = medical.windowed_png(raw, Window.from_range(low, high))
    np.testing.assert_array_equal(np.asarray(open_image(png))[..., 0], np.floor(y + 0.5).astype(np.uint8))


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_high_bit_tiff(mode):
    values = np.linspace(-5, 70000 if mode != "I;16" else 65535, 24 * 16).reshape(16, 24)
    if mode == "I;16":
        values = np.clip(values, 0, 65535).astype(np.uint16)
    elif mode == "I":
        values = values.astype(np.int32)
    else:
        values = (values / 1000).astype(np.float32)
    raw = _saved(Image.fromarray(values), "TIFF")
    grey = medical.read_grey(raw)
    np.testing.assert_array_equal(grey.values, values)
    assert "TIFF" in grey.info.kind
    assert grey.info.integer == (mode != "F")


def test_ordinary_images_need_no_window():
    assert medical.read_grey(_saved(Image.new("RGB", (8, 8), (1, 2, 3)), "PNG")) is None
    assert medical.read_grey(_saved(Image.new("L", (8, 8), 7), "TIFF")) is None
    assert medical.read_grey(b"not an image") is None
    with pytest.raises(InputError, match="needs no window"):
        medical.windowed_png(_saved(Image.new("L", (8, 8), 7), "PNG"))


def test_the_notebook_api_reads_a_dicom():
    raw = dicom_bytes(ct_slice(), RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)
    assert attnviz.open_image(raw).mode == "RGB"
