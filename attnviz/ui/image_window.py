"""The image page's window slider: a DICOM or a high-bit grey PNG/TIFF seen through a window the visitor picks.

A scan stores more grey levels than a screen (or the image model) takes. The upload's values are
kept in modality units (Hounsfield units for CT), and a range slider picks the window that maps
them to black..white (attnviz.image.medical_images). The model sees the windowed 8-bit picture,
so the picked image's cache key carries the window: runs for different windows never mix.

Only what the pixels need is read (medical_images.PIXEL_TAGS): no patient field is ever read, so
none can reach the page or the log.
"""

from __future__ import annotations

import math

import streamlit as st

from attnviz.errors import InputError
from attnviz.image.medical_images import GreyInfo, Window
from attnviz.ui.cache import cached_grey_info, cached_windowed_png
from attnviz.ui.safe import show_input_error, show_unexpected

WINDOW, WINDOW_FOR = "image_window", "image_window_for"
#: Steps of a slider over non-integer values (a float TIFF, a DICOM with a fractional slope).
FLOAT_STEPS = 1000

WINDOW_HELP = (
    "Windowing: a scan stores more grey levels than a screen shows (a CT slice runs from about -1000 HU, "
    "air, to +1000 HU and more, bone). The window is the range of values spread over black to white: values "
    "at or below its low end are black, values above its high end white, linear between (DICOM's VOI LUT). "
    "A narrow window shows small differences (soft tissue: about -160 to 240 HU); a wide one shows "
    "everything, faintly. The model sees the windowed picture, so its predictions and maps change with the "
    "window. The default is the file's own window, else the 0.5th to 99.5th percentiles of its values."
)


def windowed_upload(raw: bytes, key: str) -> tuple[bytes, str] | None:
    """(the bytes the model sees, their cache key) for an upload whose SHA-256 is ``key``.

    An ordinary 8-bit image passes through unchanged. A DICOM or a high-bit grey PNG/TIFF gets the
    window slider and a caption of what was read; the bytes are its windowed PNG, and the key is
    ``f"{key}:window={low},{high}"``. None after showing why the file cannot be read.
    """
    try:
        info = cached_grey_info(key, raw)
        if info is None:
            return raw, key
        window = window_slider(info, key)
        data = cached_windowed_png(key, window.centre, window.width, raw)
    except InputError as exc:
        show_input_error(exc)
        return None
    except Exception as exc:  # a bug: a short message here, the traceback in the server log
        show_unexpected(exc, "reading the scan")
        return None
    st.caption(describe(info, window))
    return data, f"{key}:window={window.low:.6g},{window.high:.6g}"


def slider_range(info: GreyInfo) -> tuple[float, float, float]:
    """(smallest, largest, step) of the slider: the values' range, widened to hold the file's windows."""
    lo, hi = info.value_range
    for w in (info.window, *info.file_windows):
        lo, hi = min(lo, w.low), max(hi, w.high)
    if info.integer:
        return float(math.floor(lo)), float(math.ceil(hi)), 1.0
    return lo, hi, (hi - lo) / FLOAT_STEPS


def default_range(info: GreyInfo) -> tuple[float, float]:
    """The default window's (low, high) on the slider's steps (whole numbers for whole-number values)."""
    low, high = info.window.low, info.window.high
    if info.integer:
        low, high = float(math.floor(low)), float(math.ceil(high))
    return low, high


def window_slider(info: GreyInfo, key: str) -> Window:
    """The range slider in modality units (reset to the default for each new file); the window it picks."""
    lo, hi, step = slider_range(info)
    if not hi > lo:  # a flat image: nothing to choose
        st.caption("Every pixel has the same value: there is no window to choose.")
        return info.window
    default = default_range(info)
    if st.session_state.get(WINDOW_FOR) != key:
        st.session_state[WINDOW] = default
        st.session_state[WINDOW_FOR] = key
    unit = f" ({info.unit})" if info.unit else ""
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    low, high = c1.slider(
        f"Window{unit}",
        min_value=_number(lo, info.integer),
        max_value=_number(hi, info.integer),
        step=_number(step, info.integer),
        key=WINDOW,
        help=WINDOW_HELP,
    )
    c2.button(
        "Reset",
        key="image_window_reset",
        on_click=_reset,
        args=(default,),
        help="Back to the file's own window (or the percentiles' when the file names none).",
    )
    if not high > low:  # the two handles on one value: a threshold there
        return Window(float(low) + 0.5, 1.0)
    return Window.from_range(float(low), float(high))


def _reset(default: tuple[float, float]) -> None:
    st.session_state[WINDOW] = default


def _number(value: float, integer: bool):
    return int(value) if integer else float(value)


def _g(value: float) -> str:
    return f"{value:.6g}"


def describe(info: GreyInfo, window: Window) -> str:
    """What was read and how it is shown: format, size, bits, rescale, values and window (no patient field)."""
    unit = f" {info.unit}" if info.unit else ""
    parts = [f"{info.kind}, {info.size[0]} x {info.size[1]} pixels"]
    if info.bits:
        parts.append(f"{info.bits} bits stored")
    slope, intercept = info.rescale
    if (slope, intercept) != (1.0, 0.0):
        parts.append(f"value = stored x {_g(slope)} + ({_g(intercept)}){unit}")
    lo, hi = info.value_range
    parts.append(f"values {_g(lo)} to {_g(hi)}{unit}")
    text = "Read: " + "; ".join(parts) + ". "
    text += f"Shown through the window {_g(window.low)} to {_g(window.high)}{unit} ({window.describe()})"
    if info.file_windows:
        named = ", ".join(w.describe() for w in info.file_windows)
        text += f"; the file's own window{'s' if len(info.file_windows) > 1 else ''}: {named}"
    else:
        text += "; the file names no window, so the default is the 0.5th to 99.5th percentiles"
    text += ". "
    if info.inverted:
        text += "MONOCHROME1: the smallest value is shown white. "
    text += "The model sees this windowed picture. Patient fields are never read."
    return text
