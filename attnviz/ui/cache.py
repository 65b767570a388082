"""The cache room: every Streamlit cache of the app (``st.cache_resource``, ``st.cache_data``).

Pages and ui modules never cache on their own: they call the ``cached_*`` functions here, and
pass the model object they hold (never its name for a second look-up) with the inputs.

The keying rule
---------------
Every cache key is ``(model name, device, *inputs)``, primitives only:

* the model's name (``model.name``);
* the device the model runs on. For a loader that is the configured device
  (:func:`configured_device`), where the model is created. For a result it is where the model
  passed in runs now (:func:`run_device`, ``str(model.device)``): the configured device until the
  GPU runs out of memory and :func:`attnviz.device.falls_back_to_cpu` moves the shared model to
  the CPU for good. After that, every new result key says ``"cpu"``, so no result computed on the
  GPU is mixed with the CPU's, while the loader's key is unchanged and keeps finding the one shared
  (moved) model instead of loading a second copy;
* the inputs as the user gave them: text and second sentence, options, layer and head; an image
  by its SHA-256 (:func:`digest`).

What follows from the key rides along as an argument whose name starts with ``_``, which
Streamlit leaves out of the hash: the model (``_model``), the :class:`TextAttention` a view or a
statistic is made from (``_ta``), an upload's bytes (``_data``), a decoded image (``_image``).
``st.cache_data`` cannot hash tensors and samples large arrays when it hashes them, and hashing a
20 MB upload or a 75 MB attention array on every rerun would cost more than the work it saves.
Passing ``_ta`` also means a page runs the attention cache once per run: a view, the rollout and
the statistics never ask for the attention again.

The device is read once per run: the router (app.py) calls :func:`read_device` first, which shows
a bad ``ATTNVIZ_DEVICE`` as one warning on every page and keeps the answer for the run;
:func:`configured_device` returns it to everything else without a second warning.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image
from streamlit.runtime.scriptrunner import get_script_run_ctx

from attnviz.device import pick_device
from attnviz.errors import InputError
from attnviz.figures.overlay import display_image
from attnviz.image import generated_shapes
from attnviz.image.attribution import PixelMap, gradcam, integrated_gradients
from attnviz.image.decoding import open_image
from attnviz.image.extraction import ImageAttention, image_attention
from attnviz.image.loading import ImageModel, load_image_model
from attnviz.image.medical_images import GreyInfo, Window, read_grey, windowed_png
from attnviz.maths.divergence import head_divergence
from attnviz.maths.head_statistics import head_stats
from attnviz.maths.pooling import PooledMatrix
from attnviz.text import long_views
from attnviz.text.attribution import TokenAttributions, token_attributions
from attnviz.text.extraction import TextAttention, text_attention
from attnviz.text.generation import Generation, generate, next_tokens
from attnviz.text.induction import InductionProbe, induction_probe
from attnviz.text.loading import TextModel, load_text_model
from attnviz.text.long_views import PooledHead
from attnviz.text.sinks import AttentionSinks, attention_sinks
from attnviz.text.views import AttentionView, make_view, rollout_view
from attnviz.text.worked_example import HeadSteps, explain_head

#: Session-state key of this run's configured device (written by :func:`read_device`).
DEVICE_KEY = "_attnviz_device"
#: Uploads are decoded at most this large: enough for the display, fast for a 12 MP JPEG.
DECODE_SIDE = 1024


# ---------------------------------------------------------------- the device


def _device_setting() -> tuple[str, str | None]:
    """(device, problem): a bad ATTNVIZ_DEVICE gives the CPU and the message that says why."""
    try:
        return str(pick_device()), None
    except InputError as exc:
        return "cpu", f"{exc} Using the CPU."


def read_device() -> str:
    """Read the configured device for this run, with a visible warning when ATTNVIZ_DEVICE is bad.

    The router calls it once, before the page: every page shows the warning exactly once.
    """
    device, problem = _device_setting()
    if problem:
        st.warning(problem, icon=":material/warning:")
    st.session_state[DEVICE_KEY] = device
    return device


def configured_device() -> str:
    """Where models are configured to run, as :func:`read_device` read it for this run (no warning).

    Outside a Streamlit run (a test, a notebook) the setting is read on the spot.
    """
    if get_script_run_ctx(suppress_warning=True) is None:
        return _device_setting()[0]
    device = st.session_state.get(DEVICE_KEY)
    return device if device is not None else _device_setting()[0]


def run_device(model) -> str:
    """Where ``model`` (a TextModel or ImageModel) runs now: the device part of every result key."""
    return str(model.device)


# ---------------------------------------------------------------- models


@st.cache_resource(show_spinner="Loading the text model…", max_entries=4)
def text_model(name: str, device: str) -> TextModel:
    """The one text model ``name`` that every session shares (``device``: :func:`configured_device`)."""
    return load_text_model(name, device=device)


@st.cache_resource(show_spinner="Loading the image model…", max_entries=2)
def image_model(name: str, device: str) -> ImageModel:
    """The one image model ``name`` that every session shares (``device``: :func:`configured_device`)."""
    return load_image_model(name, device=device)


# ---------------------------------------------------------------- text results


#: Bytes of text results every session shares (recorded queries and keys, held weights): two
#: 8,192-token results of the bundled decoder (755 MB each), or many short ones.
RESULTS_BYTES = 1600 * 2**20


def result_bytes(ta: TextAttention) -> int:
    held = ta.weights.nbytes if ta.holds_weights else 0
    return held + (ta.recorded.nbytes if ta.recorded is not None else 0)


class SharedResults:
    """Text results shared by every session, least recently used dropped past ``budget`` bytes.

    Not ``st.cache_data``: that pickles a result into the cache and out again on every read (755 MB
    of queries and keys at 8,192 tokens), and a page must know whether a result is there before
    it runs the model, to say how long the run will take and show its progress. Results are frozen,
    so one object serves every session. Things computed from a result (the sweep of every head)
    live beside it and leave with it.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self._lock = threading.Lock()
        self._results: OrderedDict[tuple, TextAttention] = OrderedDict()
        self._derived: dict[tuple, dict] = {}

    def get(self, key: tuple) -> TextAttention | None:
        with self._lock:
            ta = self._results.get(key)
            if ta is not None:
                self._results.move_to_end(key)
            return ta

    def put(self, key: tuple, ta: TextAttention) -> None:
        with self._lock:
            self._results[key] = ta
            self._results.move_to_end(key)
            while len(self._results) > 1 and sum(map(result_bytes, self._results.values())) > self.budget:
                old, _ = self._results.popitem(last=False)
                self._derived.pop(old, None)

    def derived(self, key: tuple) -> dict:
        """What has been computed from the result under ``key`` (kept while the result is)."""
        with self._lock:
            return self._derived.setdefault(key, {})


@st.cache_resource
def shared_results() -> SharedResults:
    return SharedResults(RESULTS_BYTES)


def text_key(tm: TextModel, text: str, text_pair: str | None) -> tuple:
    return (tm.name, run_device(tm), text, text_pair)


def stored_text_attention(tm: TextModel, text: str, text_pair: str | None) -> TextAttention | None:
    """The result already computed for these inputs, or None (nothing runs)."""
    return shared_results().get(text_key(tm, text, text_pair))


def computed_text_attention(
    tm: TextModel, text: str, text_pair: str | None, *, progress=None, stop=None
) -> TextAttention:
    """Run ``tm`` on the inputs (with ``progress``/``stop``) and store the result for every session.

    The page asks :func:`stored_text_attention` first, so that a new input's run can say how long
    it will take; this does not look again."""
    ta = text_attention(tm, text, text_pair, progress=progress, stop=stop)
    shared_results().put(text_key(tm, text, text_pair), ta)
    return ta


def result_derived(tm: TextModel, ta: TextAttention) -> dict:
    """A place for what is computed from ``ta`` once (the sweep of every head), shared and kept
    as long as ``ta`` is."""
    return shared_results().derived(text_key(tm, ta.text, ta.text_pair))


@st.cache_resource(max_entries=16, show_spinner=False)
def _pooled_head(
    name: str, device: str, text: tuple, layer: int, head: int, how: str, hide_first: bool, _ta: TextAttention
) -> PooledHead:
    return long_views.pooled_head(_ta, layer, head, how=how, hide_first=hide_first)


def cached_pooled_head(tm: TextModel, ta: TextAttention, layer: int, head: int, how: str, hide_first: bool):
    return _pooled_head(tm.name, run_device(tm), (ta.text, ta.text_pair), layer, head, how, hide_first, ta)


@st.cache_resource(max_entries=8, show_spinner=False)
def _pooled_layer(name: str, device: str, text: tuple, layer: int, how: str, _ta: TextAttention) -> PooledMatrix:
    return long_views.pooled_layer(_ta, layer, how=how)


def cached_pooled_layer(tm: TextModel, ta: TextAttention, layer: int, how: str) -> PooledMatrix:
    return _pooled_layer(tm.name, run_device(tm), (ta.text, ta.text_pair), layer, how, ta)


@st.cache_resource(max_entries=8, show_spinner=False)
def _strongest_edges(
    name: str, device: str, text: tuple, layer: int, head: int, k: int, skip_first: bool, _ta: TextAttention
) -> long_views.StrongestEdges:
    return long_views.strongest_edges(_ta, layer, head, k, skip_first=skip_first)


def cached_strongest_edges(tm: TextModel, ta: TextAttention, layer: int, head: int, k: int, skip_first: bool):
    return _strongest_edges(tm.name, run_device(tm), (ta.text, ta.text_pair), layer, head, k, skip_first, ta)


def cached_view(
    tm: TextModel, ta: TextAttention, words: bool, block: str, hide: bool, hide_first: bool = False
) -> AttentionView:
    """The view of ``ta`` (the attention of ``tm`` for ``ta.text``, ``ta.text_pair``)."""
    return _view(tm.name, run_device(tm), ta.text, ta.text_pair, words, block, hide, hide_first, ta)


@st.cache_resource(max_entries=8, show_spinner=False)
def _view(
    name: str,
    device: str,
    text: str,
    pair: str | None,
    words: bool,
    block: str,
    hide: bool,
    hide_first: bool,
    _ta: TextAttention,
) -> AttentionView:
    # Shared, never mutated; cache_resource avoids copying up to 283 MB (a decoder's 512 tokens) on every rerun.
    return make_view(_ta, words=words, block=block, hide_special=hide, hide_first=hide_first)


def cached_rollout_view(
    tm: TextModel,
    ta: TextAttention,
    fusion: str,
    discard: float,
    words: bool,
    block: str,
    hide: bool,
    causal_normalised: bool = False,
    hide_first: bool = False,
) -> AttentionView:
    return _rollout_view(
        tm.name,
        run_device(tm),
        ta.text,
        ta.text_pair,
        fusion,
        discard,
        words,
        block,
        hide,
        causal_normalised,
        hide_first,
        ta,
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _rollout_view(
    name: str,
    device: str,
    text: str,
    pair: str | None,
    fusion: str,
    discard: float,
    words: bool,
    block: str,
    hide: bool,
    causal_normalised: bool,
    hide_first: bool,
    _ta: TextAttention,
) -> AttentionView:
    return rollout_view(
        _ta,
        head_fusion=fusion,
        discard_ratio=discard,
        words=words,
        block=block,
        hide_special=hide,
        causal_normalised=causal_normalised,
        hide_first=hide_first,
    )


def cached_sinks(tm: TextModel, ta: TextAttention) -> AttentionSinks:
    return _sinks(tm.name, run_device(tm), ta.text, ta.text_pair, ta)


@st.cache_data(max_entries=32, show_spinner=False)
def _sinks(name: str, device: str, text: str, pair: str | None, _ta: TextAttention) -> AttentionSinks:
    return attention_sinks(_ta)


def cached_next_tokens(tm: TextModel, text: str, k: int, position: int) -> list[tuple[str, float]]:
    return _next_tokens(tm.name, run_device(tm), text, k, position, tm)


@st.cache_data(max_entries=64, show_spinner=False)
def _next_tokens(
    name: str, device: str, text: str, k: int, position: int, _model: TextModel
) -> list[tuple[str, float]]:
    return next_tokens(_model, text, k=k, position=position)


def cached_generation(
    tm: TextModel, prompt: str, max_new_tokens: int, temperature: float, top_k: int | None, seed: int
) -> Generation:
    return _generation(tm.name, run_device(tm), prompt, max_new_tokens, temperature, top_k, seed, tm)


# 8 entries: 64 new tokens after a 448-token prompt of the bundled decoder hold 283 MB of attention.
@st.cache_data(max_entries=8, show_spinner="Generating…")
def _generation(
    name: str,
    device: str,
    prompt: str,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    seed: int,
    _model: TextModel,
) -> Generation:
    return generate(_model, prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)


def cached_induction_probe(tm: TextModel, seed: int) -> InductionProbe:
    return _induction_probe(tm.name, run_device(tm), seed, tm)


@st.cache_data(max_entries=8, show_spinner="Running the induction probe…")
def _induction_probe(name: str, device: str, seed: int, _model: TextModel) -> InductionProbe:
    return induction_probe(_model, seed=seed)


def cached_head_stats(tm: TextModel, ta: TextAttention) -> pd.DataFrame:
    return _head_stats(tm.name, run_device(tm), ta.text, ta.text_pair, ta)


@st.cache_data(max_entries=32, show_spinner=False)
def _head_stats(name: str, device: str, text: str, pair: str | None, _ta: TextAttention) -> pd.DataFrame:
    return head_stats(_ta)


def cached_divergence(tm: TextModel, ta: TextAttention) -> np.ndarray:
    return _divergence(tm.name, run_device(tm), ta.text, ta.text_pair, ta)


@st.cache_data(max_entries=16, show_spinner=False)
def _divergence(name: str, device: str, text: str, pair: str | None, _ta: TextAttention) -> np.ndarray:
    return head_divergence(_ta.weights)


def cached_attributions(
    tm: TextModel, text: str, pair: str | None, n_steps: int, target: str | None = None
) -> TokenAttributions:
    """``target``: a decoder's next token to explain (text of one token); None: its top-1 (an
    encoder's output is chosen by its head)."""
    return _attributions(tm.name, run_device(tm), text, pair, n_steps, target, tm)


@st.cache_data(max_entries=16, show_spinner=False)
def _attributions(
    name: str, device: str, text: str, pair: str | None, n_steps: int, target: str | None, _model: TextModel
) -> TokenAttributions:
    # The model's lock is held inside: other sessions' forward passes wait, never see the hooks.
    return token_attributions(_model, text, pair, target, n_steps=n_steps)


def cached_explain_head(tm: TextModel, text: str, layer: int, head: int) -> HeadSteps:
    return _explain_head(tm.name, run_device(tm), text, layer, head, tm)


@st.cache_data(show_spinner="Computing the head's steps…", max_entries=16)
def _explain_head(name: str, device: str, text: str, layer: int, head: int, _model: TextModel) -> HeadSteps:
    return explain_head(_model, text, layer, head)


# ---------------------------------------------------------------- image results


@dataclass(frozen=True)
class Picked:
    """An image the user chose: its bytes, its cache key (:func:`digest`), and its mask when it is a demo."""

    data: bytes
    key: str
    name: str
    mask: np.ndarray | None  # bool (64, 64) for demos: where the shape is


@dataclass(frozen=True)
class ImageRun:
    attention: ImageAttention
    shown: Image.Image  # what the browser gets (<= 512 px a side)
    original_size: tuple[int, int]  # (width, height) as uploaded, after EXIF rotation


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@st.cache_data(max_entries=1)
def cached_demo_images() -> list[Picked]:
    """The demo images, as PNG bytes with their masks (the same for every model: no model in the key)."""
    out = []
    for sample in generated_shapes.demo_samples():
        buf = io.BytesIO()
        sample.image.save(buf, format="PNG")
        data = buf.getvalue()
        out.append(Picked(data, digest(data), f"demo-{sample.label}", sample.mask))
    return out


def cached_image_run(model: ImageModel, picked: Picked) -> ImageRun:
    """The forward pass of ``picked``, keyed on its SHA-256; the bytes are never hashed."""
    return _image_run(model.name, run_device(model), picked.key, picked.data, model)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_grey_info(key: str, _raw: bytes) -> GreyInfo | None:
    """An upload's high-bit grey header and default window (a DICOM, a 16-bit PNG or TIFF), or None for an
    ordinary image; keyed by the upload's SHA-256. Small: the values are not kept."""
    grey = read_grey(_raw)
    return None if grey is None else grey.info


@st.cache_data(show_spinner=False, max_entries=16)
def cached_windowed_png(key: str, centre: float, width: float, _raw: bytes) -> bytes:
    """The upload (SHA-256 ``key``) through the window (``centre``, ``width``), as 8-bit PNG bytes."""
    return windowed_png(_raw, Window(centre, width))


@st.cache_data(show_spinner="Running the image model…", max_entries=16)
def _image_run(name: str, device: str, key: str, _data: bytes, _model: ImageModel) -> ImageRun:
    image = open_image(_data, max_side=DECODE_SIDE)
    return ImageRun(image_attention(_model, image), display_image(image), image.size)


def cached_gradient_maps(
    model: ImageModel, picked: Picked, target: str, run: ImageRun, n_steps: int = 128, layer: str | None = None
) -> tuple[PixelMap | None, PixelMap]:
    """(Grad-CAM on ``layer`` (None: the last convolution layer), or None when the model offers no
    Grad-CAM; Integrated Gradients over ``n_steps``). Each is cached on its own, Grad-CAM keyed by its
    layer, so a new layer does not run Integrated Gradients again.

    The run's model-input image (``run.attention.image``) is used: the upload is not decoded a
    second time, and the model sees exactly the pixels the attention came from.
    """
    cam = cached_gradcam(model, picked, target, run, layer) if model.has_conv else None
    ig = _integrated_gradients(model.name, run_device(model), picked.key, target, n_steps, run.attention.image, model)
    return cam, ig


def cached_gradcam(model: ImageModel, picked: Picked, target: str, run: ImageRun, layer: str | None) -> PixelMap:
    """Grad-CAM of ``target`` on the convolution layer ``layer`` (None: the last), keyed by the layer."""
    layer = layer or model.family.default_layer
    return _gradcam(model.name, run_device(model), picked.key, target, layer, run.attention.image, model)


@st.cache_data(show_spinner="Computing Grad-CAM…", max_entries=32)
def _gradcam(name: str, device: str, key: str, target: str, layer: str, _image: Image.Image, _model: ImageModel):
    return gradcam(_model, _image, target, layer=layer)


@st.cache_data(show_spinner="Computing Integrated Gradients…", max_entries=32)
def _integrated_gradients(
    name: str, device: str, key: str, target: str, n_steps: int, _image: Image.Image, _model: ImageModel
) -> PixelMap:
    return integrated_gradients(_model, _image, target, n_steps=n_steps)


# ---------------------------------------------------------------- explanation scores


@dataclass(frozen=True)
class ScoredInput:
    """An explanation scoreboard (``attnviz.ExplanationScores``), the server's seconds to make it, and
    its files once made (name -> bytes)."""

    scores: object
    seconds: float
    files: dict = field(default_factory=dict, compare=False)


class ScoreStore:
    """Explanation scoreboards shared by every session, the least recently used dropped past ``size``.

    Not ``st.cache_data``: a scoreboard runs only on a click, with a progress bar fed from inside
    the run, and the panel must know whether one exists for the current input before offering the
    button (a rerun from a slider move then draws it and never scores again). A scoreboard is
    frozen and small (curves of ``steps + 1`` points per method), so one object serves every session.
    """

    def __init__(self, size: int):
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, ScoredInput] = OrderedDict()

    def get(self, key: tuple) -> ScoredInput | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple, item: ScoredInput) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


@st.cache_resource
def score_store() -> ScoreStore:
    return ScoreStore(64)


def scores_key(model, *inputs) -> tuple:
    """``(model name, device, *inputs)``: the input (text and pair, or an image's SHA-256), target and settings."""
    return (model.name, run_device(model), *inputs)


def stored_explanation_scores(key: tuple) -> ScoredInput | None:
    """The scoreboard already made for ``key`` (:func:`scores_key`), or None (nothing runs)."""
    return score_store().get(key)


def computed_explanation_scores(key: tuple, model, inp, **options) -> ScoredInput:
    """Score the explanations of ``inp`` (``attnviz.score_explanations(model, inp, **options)``, with
    its ``progress``) and keep the result under ``key`` for every session."""
    import attnviz  # the public name, looked up at call time (tests count the calls through it)

    start = time.perf_counter()
    scores = attnviz.score_explanations(model, inp, **options)
    item = ScoredInput(scores, time.perf_counter() - start)
    score_store().put(key, item)
    return item
