"""One rerun in the browser: the websocket bytes it brings and when its chart was last drawn."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .app_server import App
from .common import fmt_ms
from .cpu import CPU, wait_for_quiet_cpu
from .page_js import CHECK_JS, INIT_JS, VIEW_EXPECT


class WsCounter:
    """Counts bytes of websocket frames the page receives, and notes Streamlit's message types."""

    def __init__(self):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._ForwardMsg = ForwardMsg
        self.frames: list[tuple[float, int, str, int]] = []  # (time, bytes, type, status)

    def attach(self, page) -> None:
        page.on("websocket", lambda ws: ws.on("framereceived", self._on_frame))

    def _on_frame(self, payload) -> None:
        now = time.perf_counter()
        data = payload if isinstance(payload, bytes | bytearray) else str(payload).encode("utf-8")
        kind, status = "?", -1
        try:
            msg = self._ForwardMsg()
            msg.ParseFromString(bytes(data))
            kind = msg.WhichOneof("type") or "?"
            if kind == "script_finished":
                status = int(msg.script_finished)
        except Exception:  # not a ForwardMsg: count it anyway
            pass
        self.frames.append((now, len(data), kind, status))

    def since(self, t0: float) -> list[tuple[float, int, str, int]]:
        return [f for f in self.frames if f[0] >= t0 and f[2] != "heartbeat_ack"]


@dataclass
class Measure:
    ok: bool
    bytes: int = 0
    frames: int = 0
    refs: int = 0  # messages replaced by a reference to the browser's message cache
    deltas: int = 0
    drawn_s: float | None = None  # trigger -> last DOM mutation of the chart
    other_cpu: float | None = None  # share of the machine other processes used meanwhile
    note: str = ""

    def drawn_text(self) -> str:
        """For the progress log: the draw time, and what went wrong if the rerun did not settle."""
        return f"drawn {fmt_ms(self.drawn_s)} ms {'' if self.ok else self.note}"


def expect_for(view: str, caption: str) -> dict:
    """What ``wait_settled`` waits for: ``view``'s chart drawn and a page caption containing ``caption``."""
    title, layer = VIEW_EXPECT[view]
    return {"title": title, "layer": layer, "caption": caption}


def caption_for(n: int, tm) -> str:
    return f"{n} tokens · {tm.n_layers} layers × {tm.n_heads} heads"


def wait_settled(page, ws: WsCounter, t0: float, mark: dict, expect: dict, timeout: float = 240.0, quiet: float = 0.7):
    """Wait until the rerun started at ``t0`` has finished and its chart is drawn and quiet.

    Settled = a ``script_finished`` (successful) frame arrived after t0, Streamlit shows no
    running indicator and no stale element, the page caption says what ``expect`` asks, a
    chart with the expected title has its main layer, at least one chart mutation happened
    after t0, and neither frames nor chart mutations happened for ``quiet`` seconds.
    """
    deadline = time.perf_counter() + timeout
    state = None
    cpu_mark = CPU.start()
    while time.perf_counter() < deadline:
        frames = ws.since(t0)
        finished = [f for f in frames if f[2] == "script_finished" and f[3] in (0, 3)]
        state = page.evaluate(CHECK_JS, expect)
        now = time.perf_counter()
        last_frame = frames[-1][0] if frames else t0
        if (
            finished
            and not state["running"]
            and not state["stale"]
            and state["drawn"]
            and state["caption"]
            and state["count"] > mark["count"]
            and now - last_frame >= quiet
            and state["now"] - state["last"] >= quiet * 1000
        ):
            return Measure(
                ok=True,
                bytes=sum(f[1] for f in frames),
                frames=len(frames),
                refs=sum(1 for f in frames if f[2] == "ref_hash"),
                deltas=sum(1 for f in frames if f[2] == "delta"),
                drawn_s=(state["last"] - mark["now"]) / 1000.0,
                other_cpu=CPU.share(cpu_mark),
            )
        time.sleep(0.05)
    frames = ws.since(t0)
    return Measure(ok=False, bytes=sum(f[1] for f in frames), frames=len(frames), note=f"timeout; last state {state}")


def mark_now(page) -> dict:
    return page.evaluate("() => ({count: window.__plot.count, now: performance.now()})")


def act_and_settle(page, ws: WsCounter, action: Callable[[], object], expect: dict, timeout: float = 240.0) -> Measure:
    """Run ``action`` (the click or key press that starts a rerun) and measure that rerun until it settles."""
    mark = mark_now(page)
    t0 = time.perf_counter()
    action()
    return wait_settled(page, ws, t0, mark, expect, timeout=timeout)


def submit_sentence(page, ws: WsCounter, text: str, expect: dict, quiet_each: float) -> Measure:
    wait_for_quiet_cpu(quiet_each)
    area = page.locator('[data-testid="stTextArea"] textarea[aria-label="Sentence"]')
    area.fill(text)
    page.wait_for_timeout(300)  # let the browser settle after typing; nothing is sent before Ctrl+Enter
    return act_and_settle(page, ws, lambda: area.press("Control+Enter"), expect)


def click_view(page, ws: WsCounter, view: str, caption: str, quiet_each: float) -> Measure:
    option = page.locator('[role="radiogroup"][aria-label="View"] [data-testid="stRadioOption"]').filter(has_text=view)
    wait_for_quiet_cpu(quiet_each)
    option.first.scroll_into_view_if_needed()
    return act_and_settle(page, ws, option.first.click, expect_for(view, caption))


def open_text_page(browser, app: App, ws: WsCounter):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.add_init_script(INIT_JS)
    ws.attach(page)
    t0 = time.perf_counter()
    page.goto(app.url("text"))
    page.wait_for_selector(".js-plotly-plot .heatmaplayer image", timeout=120_000)
    page.wait_for_timeout(1500)
    frames = ws.since(t0)
    return page, sum(f[1] for f in frames)
