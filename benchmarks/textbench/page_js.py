"""JavaScript the benchmark runs in the page: a chart-mutation recorder, the "drawn" check, cell positions."""

# Installed in every page before Streamlit's scripts run. Records the time and count of DOM
# mutations inside Plotly charts (``.js-plotly-plot``), or of charts being added. The callback
# runs at the end of the task that changed the DOM, so ``last`` is when Plotly finished its
# (synchronous) drawing work for the last time. Node insertions/removals, text changes and a few
# attributes (image href, svg size) are observed; that catches every drawing task and adds ~2%
# to a heavy draw (observing all attributes added ~20%).
INIT_JS = """
(() => {
  window.__plot = {count: 0, last: 0};
  const inPlot = (n) => {
    const e = n && (n.nodeType === 1 ? n : n.parentElement);
    return !!(e && e.closest && e.closest('.js-plotly-plot'));
  };
  const addsPlot = (r) => {
    for (const a of r.addedNodes) {
      if (a.nodeType === 1 && (a.matches('.js-plotly-plot') || (a.querySelector && a.querySelector('.js-plotly-plot'))))
        return true;
    }
    return false;
  };
  new MutationObserver((records) => {
    const now = performance.now();
    for (const r of records) {
      if (inPlot(r.target) || addsPlot(r)) { window.__plot.count += 1; window.__plot.last = now; break; }
    }
  }).observe(document, {
    subtree: true, childList: true, characterData: true,
    // Only a few attributes: recording every attribute Plotly sets costs ~20% of a heavy chart's draw
    // time; any record of a task is enough, since the callback runs when that task ends.
    attributes: true, attributeFilter: ['href', 'xlink:href', 'width', 'height', 'viewBox'],
  });
})();
"""

# What "drawn" means for each view: a chart whose title starts with the prefix and whose main
# layer holds the given element.
VIEW_EXPECT = {
    "Single head": ("Layer 0 · head 0", ".heatmaplayer image"),
    "All heads of a layer": ("Layer 0: every head", ".imagelayer image, .layer-below image, image"),
    "Model overview": ("Every layer and head", ".imagelayer image, .layer-below image, image"),
    "Head lines": ("Layer 0: lines from queries", ".scatterlayer path.js-line"),
    "From one token": ("From “", ".heatmaplayer image"),
}

CHECK_JS = """
(expect) => {
  const running = !!document.querySelector(
    '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]');
  const stale = !!document.querySelector('[data-stale="true"]');
  let drawn = false;
  for (const g of document.querySelectorAll('.js-plotly-plot')) {
    const t = g.querySelector('.gtitle');
    const title = t ? t.textContent : '';
    if (title.startsWith(expect.title) && g.querySelector(expect.layer)) { drawn = true; break; }
  }
  let caption = true;
  if (expect.caption) {
    caption = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
      .some((c) => c.textContent.includes(expect.caption));
  }
  return {running, stale, drawn, caption, count: window.__plot.count, last: window.__plot.last,
          now: performance.now()};
}
"""

# Screen position of cell (row, col) in the page's first chart, and the matrix size.
CELL_JS = """
([row, col]) => {
  const g = document.querySelector('.js-plotly-plot');
  const box = g.querySelector('.nsewdrag').getBoundingClientRect();
  const nq = g._fullLayout.yaxis.tickvals ? g._fullLayout.yaxis.tickvals.length : 0;
  const nk = g._fullLayout.xaxis._categories.length;
  return {x: box.left + (col + 0.5) / nk * box.width, y: box.top + (row + 0.5) / nq * box.height, nq, nk};
}
"""

# The shapes of the page's first chart (the outline of a clicked row) as [y0, y1] pairs.
SHAPES_JS = """
() => {
  const g = document.querySelector('.js-plotly-plot');
  return (g && g.layout && g.layout.shapes) ? g.layout.shapes.map((s) => [s.y0, s.y1]) : [];
}
"""
