"""What the browser tests do to a Streamlit page and read back from it (Playwright, sync API)."""

from __future__ import annotations

from pathlib import Path

from tests.browser.live_app import SCREENSHOTS, wait_idle, whole_page

ZWSP = "\u200b"  # attnviz.figures.labels makes repeated labels unique with it
TIMEOUT_MS = 120_000  # a rerun on 2 busy cores, model load included

# ---------------------------------------------------------------- reading the page


def chart_count(page) -> int:
    return page.locator(".js-plotly-plot").count()


def chart_titles(page) -> list[str]:
    return page.eval_on_selector_all(".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)")


def tick_texts(page, axis: str = "x", chart: int = 0) -> list[str]:
    """The tick labels of one chart's axis as drawn (SVG text), zero-width spaces removed."""
    texts = (
        page.locator(".js-plotly-plot")
        .nth(chart)
        .evaluate(f"g => [...g.querySelectorAll('.{axis}tick text')].map(e => e.textContent)")
    )
    return [t.replace(ZWSP, "") for t in texts]


def axis_labels(page, chart: int = 0) -> list[str]:
    """Every tick label of every axis of one chart (subplots included), zero-width spaces removed."""
    texts = (
        page.locator(".js-plotly-plot")
        .nth(chart)
        .evaluate(
            "g => [...g.querySelectorAll('.xaxislayer-above text, .yaxislayer-above text')].map(e => e.textContent)"
        )
    )
    return [t.replace(ZWSP, "") for t in texts]


def hover_text(page) -> str:
    """The text of the hover label(s) shown now, zero-width spaces removed."""
    texts = page.eval_on_selector_all(".hoverlayer .hovertext", "els => els.map(e => e.textContent)")
    return " | ".join(texts).replace(ZWSP, "")


def alerts(page, kind: str) -> list[str]:
    """Texts of st.error / st.warning / st.info / st.success boxes (kind: Error, Warning, Info, Success)."""
    return page.locator(f"[data-testid=stAlertContent{kind}]").all_inner_texts()


def assert_no_errors(page, warnings: bool = True) -> None:
    """No exception element, no st.error box (and, unless told otherwise, no st.warning box)."""
    exceptions = page.locator("[data-testid=stException]").all_inner_texts()
    assert not exceptions, f"exception shown on the page: {exceptions}"
    errors = alerts(page, "Error")
    assert not errors, f"st.error shown on the page: {errors}"
    if warnings:
        shown = alerts(page, "Warning")
        assert not shown, f"st.warning shown on the page: {shown}"


ALL_DRAWN_JS = """
() => {
  const charts = [...document.querySelectorAll('.js-plotly-plot')];
  return charts.every((g) => g.querySelector('.main-svg'));
}
"""


def wait_for(page, js: str, arg=None, timeout_ms: int = TIMEOUT_MS) -> None:
    """Poll a JavaScript predicate (``arg`` passed to it) until it is true."""
    page.wait_for_function(js, arg=arg, timeout=timeout_ms)


def wait_for_text(page, text: str, selector: str = "[data-testid=stMain]", timeout_ms: int = TIMEOUT_MS) -> None:
    """Until ``text`` appears inside ``selector``'s text."""
    wait_for(
        page,
        "([sel, text]) => [...document.querySelectorAll(sel)].some((e) => e.textContent.includes(text))",
        [selector, text],
        timeout_ms,
    )


LABELS_JS = """
([axis, labels, prefix]) => [...document.querySelectorAll('.js-plotly-plot')].some((g) => {
  const shown = [...g.querySelectorAll(`.${axis}tick text`)].map((e) => e.textContent.replaceAll('\u200b', ''));
  if (prefix) return shown.length >= prefix && shown.every((t, i) => t === labels[i]);
  return shown.length === labels.length && shown.every((t, i) => t === labels[i]);
})
"""


def wait_for_labels(page, axis: str, labels: list[str], prefix: int | None = None, timeout_ms: int = 60_000) -> None:
    """Until some chart's ``axis`` tick labels are ``labels`` (or, with ``prefix``, at least that many
    of its first ones), zero-width spaces removed; an AssertionError naming what is shown otherwise."""
    try:
        wait_for(page, LABELS_JS, [axis, labels, prefix], timeout_ms)
    except Exception as exc:
        shown = [tick_texts(page, axis, i) for i in range(chart_count(page))]
        raise AssertionError(f"no chart with {axis} labels {labels} (prefix {prefix}); shown: {shown}") from exc
    wait_idle(page, settle_ms=300)


def wait_for_title(page, prefix: str, timeout_ms: int = TIMEOUT_MS) -> None:
    """Until a chart whose title starts with ``prefix`` has been drawn."""
    wait_for(
        page,
        "p => [...document.querySelectorAll('.js-plotly-plot .gtitle')].some((t) => t.textContent.startsWith(p))",
        prefix,
        timeout_ms,
    )
    wait_idle(page, settle_ms=300)


# ---------------------------------------------------------------- acting on it


def open_page(page, url: str, ready: str = "[data-testid=stMain] h1", charts: bool = True) -> None:
    """Go to ``url`` and wait until the page's title is shown, the script finished and the charts drew."""
    page.goto(url)
    page.wait_for_selector(ready, timeout=TIMEOUT_MS)
    if charts:
        page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT_MS)
    wait_idle(page)
    wait_for(page, ALL_DRAWN_JS)


def select_option(page, label: str, option: str) -> None:
    """Choose ``option`` in the selectbox labelled ``label`` (a react-aria combobox in Streamlit 1.67)."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def submit_text_area(page, label: str, text: str) -> None:
    """Replace a text area's text and apply it (Ctrl+Enter; a text area needs it)."""
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Control+Enter")
    wait_idle(page)


def upload(page, name: str, data: bytes, mime: str, index: int = 0) -> None:
    """Put a file into the ``index``-th file uploader of the page."""
    page.locator("[data-testid=stFileUploader] input[type=file]").nth(index).set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}]
    )
    page.locator("[data-testid=stFileChipName]").first.wait_for(timeout=TIMEOUT_MS)
    wait_idle(page)


def plot_point(page, chart: int, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of data point (x, y) of a chart (category index for categorical axes)."""
    return (
        page.locator(".js-plotly-plot")
        .nth(chart)
        .evaluate(
            """(g, [x, y]) => {
          const box = g.querySelector('.main-svg').getBoundingClientRect();
          const xa = g._fullLayout.xaxis, ya = g._fullLayout.yaxis;
          return [box.left + xa._offset + xa.l2p(x), box.top + ya._offset + ya.l2p(y)];
        }""",
            [x, y],
        )
    )


def click_grid_cell(page, chart: int, row: float, col: float, rows: int, cols: int) -> None:
    """Click cell (row, col) of a chart whose plot area (``.nsewdrag``) is a rows x cols grid."""
    box = page.locator(".js-plotly-plot").nth(chart).locator(".nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * (col + 0.5) / cols, box["y"] + box["height"] * (row + 0.5) / rows)
    wait_idle(page)


def edit_grid_cell(page, editor, row: int, x_fraction: float, value: str) -> None:
    """Type ``value`` into a cell of an ``st.data_editor`` (a glide-data-grid canvas).

    The cell is in data row ``row`` (rows are ~35 px under a ~35 px header) at ``x_fraction``
    of the editor's width (columns have no DOM position to ask). Double-click opens the cell's
    editor; Enter commits the value.
    """
    box = editor.locator("canvas[data-testid=data-grid-canvas]").bounding_box()
    page.mouse.dblclick(box["x"] + box["width"] * x_fraction, box["y"] + 35 + 35 * (row + 0.5))
    field = page.locator("input.gdg-input, textarea.gdg-input").first
    field.wait_for(timeout=10_000)
    field.fill(value)  # focuses the overlay editor and replaces its text
    field.press("Enter")
    wait_idle(page)


def screenshot(page, name: str) -> Path:
    """The whole page into ``test-output/screenshots/<name>.png``."""
    return whole_page(page, SCREENSHOTS / f"{name}.png")
