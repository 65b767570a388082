"""attnviz: see where attention models look.

The notebook user's API (names are stable)::

    import attnviz
    tm = attnviz.load_text_model()              # bundled all-MiniLM-L6-v2, a hub id, or a folder
    ta = attnviz.text_attention(tm, "The cat sat on the mat.")
    ta.tokens, ta.weights                       # list[str], float32 [layers, heads, n, n]
    lm = attnviz.load_text_model("SmolLM2-135M-Instruct")      # the bundled decoder (GPT-2, Llama, ... load too)
    attnviz.text_attention(lm, "The cat sat").causal           # True: zeros above the diagonal
    attnviz.induction_scores(lm)                # (layer, head, score): random tokens repeated twice
    attnviz.attention_sinks(ta), attnviz.hide_first_token(ta.weights)
    attnviz.next_tokens(lm, "The cat sat on the", k=5)       # [(" mat", 0.3), ...]
    attnviz.generate(lm, "The cat", max_new_tokens=10)        # tokens + every step's attention
    view = attnviz.make_view(ta, words=True)    # word level, pair blocks, hide [CLS]/[SEP]
    attnviz.figures.head_matrix(view, layer=0, head=2).show()
    attnviz.rollout(ta.weights)                 # [n, n] attention composed across layers
    attnviz.head_stats(ta)                      # one row per (layer, head), with a behaviour label
    attnviz.token_attributions(tm, "The cat sat.")              # captum integrated gradients
    attnviz.explain_head(tm, "The cat sat.", layer=1, head=3)   # every Q/K/V intermediate
    attnviz.qkv.attention_steps(x, w_q, w_k, w_v, n_heads=2)    # the same maths on any numbers

    im = attnviz.load_image_model()             # the bundled CNN-attention model (assets/)
    ia = attnviz.image_attention(im, attnviz.open_image("photo.jpg"))
    ia.predictions, ia.weights, ia.grid         # [(label, p)], float32 [layers, heads, t, t], (8, 8)

    scores = attnviz.score_explanations(lm, "The cat sat on the")   # or (tm, text), (im, image)
    scores.table, scores.summary()              # deletion/insertion areas per method; does it beat random?

The code lives in wings: ``attnviz.text`` (text models), ``attnviz.image`` (image models),
``attnviz.maths`` (formulas on arrays, no model), ``attnviz.export`` (files), ``attnviz.figures``
(Plotly figures) and ``attnviz.ui`` (the Streamlit app's parts); at the top only what every wing
shares. ``docs/architecture.md`` is the map. Names are imported lazily so that ``import attnviz``
stays fast (torch and transformers load on first use).
"""

from __future__ import annotations

import importlib

# public name -> module that defines it. No module may be named like an export: importing a
# submodule binds its name on the package, which would shadow the lazily exported object.
_EXPORTS = {
    "InputError": "attnviz.errors",
    "ModelLoadError": "attnviz.errors",
    "pick_device": "attnviz.device",
    "TextModel": "attnviz.text.loading",
    "load_text_model": "attnviz.text.loading",
    "BUNDLED_TEXT_MODEL": "attnviz.text.loading",
    "TextAttention": "attnviz.text.extraction",
    "text_attention": "attnviz.text.extraction",
    "AttentionView": "attnviz.text.views",
    "make_view": "attnviz.text.views",
    # images
    "open_image": "attnviz.image.decoding",
    "ImageModel": "attnviz.image.loading",
    "load_image_model": "attnviz.image.loading",
    "ImageAttention": "attnviz.image.extraction",
    "image_attention": "attnviz.image.extraction",
    # the worked example on a real model
    "HeadSteps": "attnviz.text.worked_example",
    "explain_head": "attnviz.text.worked_example",
    # analysis
    "rollout": "attnviz.maths.attention_rollout",
    "head_stats": "attnviz.maths.head_statistics",
    "corpus_head_stats": "attnviz.text.corpus",
    "token_attributions": "attnviz.text.attribution",
    # decoders
    "BUNDLED_DECODER": "attnviz.text.bundled_decoder",
    "induction_scores": "attnviz.text.induction",
    "induction_probe": "attnviz.text.induction",
    "InductionProbe": "attnviz.text.induction",
    "attention_sinks": "attnviz.text.sinks",
    "AttentionSinks": "attnviz.text.sinks",
    "hide_first_token": "attnviz.maths.decoder_heads",
    "next_tokens": "attnviz.text.generation",
    "generate": "attnviz.text.generation",
    "Generation": "attnviz.text.generation",
    "next_token_attributions": "attnviz.text.next_token_attribution",
    # long inputs (issue 13): one head, one token or one layer at a time
    "WeightsNotHeld": "attnviz.errors",
    "pooled_head": "attnviz.text.long_views",
    "zoom_window": "attnviz.text.long_views",
    "strongest_from": "attnviz.text.long_views",
    "strongest_edges": "attnviz.text.long_views",
    "pooled_layer": "attnviz.text.long_views",
    "rollout_from": "attnviz.text.token_rollout",
    # is this picture faithful? (issue 14): deletion and insertion scores of every explanation
    "score_explanations": "attnviz.scoreboard",
    "ExplanationScores": "attnviz.maths.explanation_table",
}
# public submodule name -> module. "qkv" and "static" are the short names the README has always
# shown for the step-by-step maths and the PNG export.
_SUBMODULES = {
    "text": "attnviz.text",
    "image": "attnviz.image",
    "maths": "attnviz.maths",
    "figures": "attnviz.figures",
    "export": "attnviz.export",
    "examples": "attnviz.examples",
    "qkv": "attnviz.maths.qkv",
    "static": "attnviz.export.png",
    "long_views": "attnviz.text.long_views",
}

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(_SUBMODULES[name])
    raise AttributeError(f"module 'attnviz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
