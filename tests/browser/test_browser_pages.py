"""Every page in real Chromium against the real app: it loads cleanly, and its main interaction works.

Each test ends with a whole-page screenshot in ``test-output/screenshots/``.
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import numpy as np
import pytest

from tests.browser.live_app import SCREENSHOTS, LiveApp, wait_idle
from tests.browser.page_tools import (
    alerts,
    assert_no_errors,
    chart_count,
    chart_titles,
    click_grid_cell,
    edit_grid_cell,
    hover_text,
    open_page,
    plot_point,
    screenshot,
    select_option,
    submit_text_area,
    tick_texts,
    upload,
    wait_for,
    wait_for_text,
    wait_for_title,
)

LINKS = {
    # link text starts with -> (path, page title)
    "Text attention": ("/text", "Text attention"),
    "Image attention": ("/image", "Image attention"),
    "Train on your images": ("/train_images", "Train on your own images"),
    "Worked example": ("/worked_example", "Worked example: one attention head, step by step"),
    "Head statistics": ("/head_stats", "Head statistics"),
    "Next tokens": ("/next_tokens", "Next tokens"),
}


def h1(page) -> str:
    return page.locator("[data-testid=stMain] h1").first.inner_text().strip()


def test_home_page_links_open_every_page(live_app, page, page_events):
    open_page(page, live_app.url(""), charts=False)
    page.locator("[data-testid=stDataFrame]").wait_for()
    assert h1(page) == "attnviz"
    assert_no_errors(page)
    wait_for_text(page, "Models run on the")
    screenshot(page, "home")
    for text, (path, title) in LINKS.items():
        link = page.locator("[data-testid=stMain] [data-testid=stPageLink] a").filter(has_text=text)
        assert link.count() == 1, f"no single link to {text} on the home page"
        link.click()
        # The path, whatever the query: a page may write its state into the address on its first run.
        page.wait_for_url(lambda url, path=path: urlsplit(url).path == path)
        wait_for(page, "t => document.querySelector('[data-testid=stMain] h1')?.textContent.trim() === t", title)
        wait_idle(page)
        assert_no_errors(page)
        # Home through the sidebar: a page that writes its state into the address (the worked example)
        # adds a history entry, so the browser's Back would land on that page again.
        page.locator("[data-testid=stSidebarNav] a").filter(has_text="Home").click()
        page.wait_for_url(live_app.url(""))
        wait_for(page, "() => document.querySelector('[data-testid=stMain] h1')?.textContent.trim() === 'attnviz'")
        wait_idle(page)
    page_events.assert_clean()


def test_text_page_sentence_layer_head_and_cell_click(live_app, page, page_events):
    open_page(page, live_app.url("text"))
    assert h1(page) == "Text attention"
    assert_no_errors(page)
    assert "animal" in tick_texts(page, "x")  # the default sentence

    # A new sentence: the matrix shows its tokens, on both axes.
    submit_text_area(page, "Sentence", "Zebras graze quietly near rivers.")
    wait_for(page, "() => [...document.querySelectorAll('.js-plotly-plot .xtick text')]"
                   ".some((t) => t.textContent === 'quietly')")  # fmt: skip
    keys, queries = tick_texts(page, "x"), tick_texts(page, "y")
    assert keys == queries
    assert keys[0] == "[CLS]" and keys[-1] == "[SEP]"
    assert {"quietly", "near", "rivers", "."} <= set(keys)
    assert "animal" not in keys
    wait_for_text(page, f"{len(keys)} tokens · 6 layers × 12 heads", "[data-testid=stCaptionContainer]")

    # Layer and head pickers: the chart's title follows.
    assert chart_titles(page)[0].startswith("Layer 0 · head 0")
    select_option(page, "Layer", "2")
    wait_for_title(page, "Layer 2 · head 0")
    select_option(page, "Head", "5")
    wait_for_title(page, "Layer 2 · head 5")

    # Hover, then click the cell (query "near", key "quietly"): "near" becomes the chosen query token.
    row, col = queries.index("near"), keys.index("quietly")
    x, y = plot_point(page, 0, col, row)
    page.mouse.move(x, y)
    wait_for(page, "() => !!document.querySelector('.hoverlayer .hovertext')")
    hover = hover_text(page)
    assert "query: near" in hover and "key: quietly" in hover and "weight: " in hover, hover
    page.mouse.click(x, y)
    wait_idle(page)
    # The chosen row is outlined (a red rectangle around row `row`).
    wait_for(
        page,
        # In the plot's fractions, rows from the top: row r of n spans 1 - (r + 1) / n to 1 - r / n.
        """([r, n]) => { const g = document.querySelector('.js-plotly-plot');
                  return (g.layout.shapes || []).some(
                    (s) => s.yref === 'paper' && Math.abs(s.y1 - (1 - r / n)) < 1e-6); }""",
        [row, len(queries)],
    )
    assert_no_errors(page)
    screenshot(page, "text")

    # "From one token" opens on the clicked query token.
    page.get_by_text("From one token", exact=True).click()
    wait_for_title(page, "From “near” in every layer and head")
    assert page.get_by_role("combobox", name="Query token").input_value() == f"{row}: near"
    assert_no_errors(page)
    screenshot(page, "text-from-token")
    page_events.assert_clean()


def _triangle_png() -> bytes:
    """The demo triangle, upscaled 3x (a new file: its own bytes and hash), as a PNG."""
    from attnviz.image import generated_shapes

    sample = next(s for s in generated_shapes.demo_samples() if s.label == "triangle")
    image = sample.image.resize((sample.image.width * 3, sample.image.height * 3), resample=0)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_image_page_upload_and_patch_click(live_app, page, page_events):
    open_page(page, live_app.url("image"))
    assert h1(page) == "Image attention"
    assert_no_errors(page)

    page.get_by_text("Upload", exact=True).click()
    wait_for_text(page, "Upload an image, or switch to a demo image.")
    wait_idle(page)
    assert chart_count(page) == 0  # nothing to show before a file arrives

    upload(page, "my triangle.png", _triangle_png(), "image/png")
    wait_for_title(page, "Class token, layer 1, mean of heads")
    assert page.locator("[data-testid=stFileChipName]").first.inner_text() == "my triangle.png"
    # The overlay draws the image (a layout image) with the map on top.
    overlay = page.locator(".st-key-image_overlay .js-plotly-plot")
    assert overlay.locator("image").count() >= 1
    # Predictions: five bars, the triangle's the longest.
    wait_for(page, "() => [...document.querySelectorAll('.js-plotly-plot')].some((g) => g.querySelector('.bars'))")
    bars = page.eval_on_selector_all(
        ".js-plotly-plot",
        "gs => gs.filter((g) => g.querySelector('.bars')).map((g) => ({y: [...g.data[0].y], x: [...g.data[0].x]}))",
    )[0]
    assert len(bars["y"]) == 5
    assert bars["y"][int(np.argmax(bars["x"]))] == "triangle", bars
    assert "triangle (" in page.get_by_role("combobox", name="Class to explain").input_value()

    # Click the patch in row 2, column 5 of the 8 x 8 grid: the page says which patch it shows.
    click_grid_cell(page, 1, 2, 5, 8, 8)  # chart 1: the image's column, with the predictions, comes first
    wait_for_title(page, "From patch (2, 5), layer 1, mean of heads")
    assert page.get_by_role("radio", name="From a clicked patch").is_checked()
    wait_for_text(page, "Where patch (2, 5) attends")
    assert_no_errors(page)
    screenshot(page, "image")
    page_events.assert_clean()


def following(page) -> str:
    return page.locator("[data-testid=stMarkdownContainer]").filter(has_text="Following the weight").inner_text()


def test_worked_example_toy_cell_edit_changes_the_weights(live_app, page, page_events):
    open_page(page, live_app.url("worked_example"))
    assert h1(page).startswith("Worked example")
    assert_no_errors(page)
    # Preset "Two tokens, worked by hand": X = [[1, 0], [1, 1]], W_Q = W_K = I; follow weight (1, 1).
    assert "query “b” (i = 1) on key “b” (j = 1): 0.6698" in following(page)

    # X row 1 (token "b"), column x0 (the 3rd of 4 columns after the row markers): 1 -> 3.
    editor = page.locator("[data-testid=stDataFrame]").first
    edit_grid_cell(page, editor, 1, 0.62, "3")
    wait_for(page, "() => document.querySelector('[data-testid=glide-cell-3-1]')?.textContent === '3'")
    x = np.array([[1.0, 0.0], [3.0, 1.0]])
    scores = x @ x.T / np.sqrt(2)  # Q = K = X
    weights = np.exp(scores[1]) / np.exp(scores[1]).sum()
    expected = f"query “b” (i = 1) on key “b” (j = 1): {weights[1]:.4f}"
    wait_for_text(page, expected)
    # Downstream: the softmax row worked through now shows the new score, 10 / √2.
    wait_for_text(page, f"{scores[1, 1]:.4f}")
    assert_no_errors(page)
    screenshot(page, "worked-example")
    page_events.assert_clean()


CORPUS = "The cat sat on the mat.\nDogs bark at night.\n\nBirds sing in the morning, loudly.\nIt rained.\n"


def test_head_stats_corpus_upload(live_app, page, page_events):
    open_page(page, live_app.url("head_stats"))
    assert h1(page) == "Head statistics"
    assert_no_errors(page)

    page.get_by_text("Corpus file", exact=True).click()
    wait_for_text(page, "Upload a corpus to see the statistics")
    upload(page, "corpus.txt", CORPUS.encode("utf-8"), "text/plain")
    wait_for_text(page, "corpus.txt: 4 sentences", "[data-testid=stCaptionContainer]")
    wait_idle(page)
    assert "1 blank line was skipped." in " ".join(alerts(page, "Info"))
    titles = chart_titles(page)
    assert any(t.startswith("entropy") for t in titles), titles
    assert any(t.startswith("What each head does") for t in titles), titles
    # The table: one row per head (6 layers x 12 heads), plus the header row.
    table = page.locator("[data-testid=stDataFrame] table[role=grid]").first
    assert table.get_attribute("aria-rowcount") == str(6 * 12 + 1)
    # The heatmap is layer x head.
    assert tick_texts(page, "y", 0)[:6] == [str(i) for i in range(6)]
    assert_no_errors(page)
    screenshot(page, "head-stats")
    page_events.assert_clean()


#: The router's page titles, in its order (app.py). Without the router Streamlit lists the files: app, home, text...
NAV = [
    "Home",
    "Text attention",
    "Image attention",
    "Train on your images",
    "Worked example",
    "Head statistics",
    "Next tokens",
]
TITLES = {
    "": "attnviz",
    "train_images": "Train on your own images",
    **{path.strip("/"): title for path, title in LINKS.values()},
}


@pytest.fixture
def first_visit_app():
    """An app server no one has visited yet.

    Streamlit decides once per server process, on its first visit, whether ``pages/`` is an old-style
    multipage folder (attnviz.ui.router). The session's shared server has been visited by other tests
    by then, so only a server of its own shows what a bookmark does right after a (re)start.
    """
    log = SCREENSHOTS / "streamlit-first-visit.log"
    with LiveApp(log_path=log, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}) as app:
        yield app


def nav_titles(page) -> list[str]:
    """The sidebar's page names (each link's last line: its first is the icon's ligature, e.g. "home")."""
    return [t.strip().splitlines()[-1] for t in page.locator("[data-testid=stSidebarNav] a").all_inner_texts()]


@pytest.mark.parametrize("path", ["text", "image", "train_images", "worked_example", "head_stats", "next_tokens", ""])
def test_a_bookmark_as_the_first_visit_after_a_start_goes_through_the_router(first_visit_app, page, page_events, path):
    """A bookmark to any page, opened first on a fresh server and in a fresh browser context: it draws
    through the router (its sidebar, its titles), with no exception, error or warning."""
    # the home page, next tokens and training draw no chart first
    open_page(page, first_visit_app.url(path), charts=path not in ("", "next_tokens", "train_images"))
    assert nav_titles(page) == NAV
    assert h1(page) == TITLES[path]
    # The same page; its address may gain the view's state (the worked example's mode and weight).
    assert urlsplit(page.url).path == urlsplit(first_visit_app.url(path)).path
    assert_no_errors(page)
    # Still the router's app after the first visit: the home link in the sidebar opens the home page.
    page.locator("[data-testid=stSidebarNav] a").filter(has_text="Home").click()
    wait_for(page, "() => document.querySelector('[data-testid=stMain] h1')?.textContent.trim() === 'attnviz'")
    wait_idle(page)
    assert nav_titles(page) == NAV
    assert_no_errors(page)
    page_events.assert_clean()
