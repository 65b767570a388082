"""A click on a patch of the image page's overlay reruns the overlay and the heads' row alone
(attnviz.ui.image_page.RERUNS): the server sends those two views and neither the page's title, the
image's pickers nor the comparison with the gradient maps; the address still follows the map."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.browser.page_tools import assert_no_errors, click_grid_cell, open_page, wait_for_text, wait_for_title

#: Every websocket message from the server, kept as text (Streamlit's protobuf carries strings as UTF-8).
RECORD_JS = """
(() => {
  const W = window.WebSocket;
  window.__received = [];
  function Wrapped(...args) {
    const ws = new W(...args);
    ws.addEventListener('message', async (e) => {
      const d = e.data instanceof Blob ? await e.data.arrayBuffer() : e.data;
      window.__received.push(typeof d === 'string' ? d : new TextDecoder('utf-8', {fatal: false}).decode(d));
    });
    return ws;
  }
  Wrapped.prototype = W.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Wrapped[k] = W[k];
  window.WebSocket = Wrapped;
})();
"""


def test_a_patch_click_sends_the_overlay_and_the_heads_only(live_app, page, page_events):
    page.add_init_script(RECORD_JS)
    open_page(page, live_app.url("image"))
    wait_for_title(page, "Class token, layer 1, mean of heads")
    wait_for_text(page, "Attention beside gradient attributions")
    first_run = "".join(page.evaluate("() => window.__received.splice(0)"))
    assert "held-out generated shapes" in first_run and "Integrated Gradients" in first_run  # the record works

    click_grid_cell(page, 1, 2, 5, 8, 8)  # chart 1: the image's column, with the predictions, comes first
    wait_for_title(page, "From patch (2, 5), layer 1, mean of heads")
    wait_for_text(page, "Where patch (2, 5) attends")
    sent = "".join(page.evaluate("() => window.__received.splice(0)"))
    assert "From patch (2, 5)" in sent and "head 3" in sent  # the overlay and the heads' row
    # The page caption (the navigation, with the page names, comes with every run).
    for absent in ("held-out generated shapes", "Class to explain", "Integrated Gradients", "Does each map point"):
        assert absent not in sent, f"{absent!r} was sent again after a patch click"
    # The comparison is still on the page, and the address follows the map.
    wait_for_text(page, "Attention beside gradient attributions")
    assert parse_qs(urlsplit(page.url).query).get("view") == ["from-a-clicked-patch"]
    assert_no_errors(page)
    page_events.assert_clean()
