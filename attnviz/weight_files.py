"""Every weight file transformers would open for a model, and the refusal of any that is not safetensors.

``from_pretrained(..., use_safetensors=True)`` does not keep pickles out by itself. In
transformers 5 (``modeling_utils._get_resolved_checkpoint_files``) a local folder's weights are:

1. the files of a distributed checkpoint (``shard-NNNNN-model-NNNNN-of-NNNNN.safetensors``),
   when the folder has one: only its ``.safetensors`` files are read;
2. else the file that ``config.json`` names in ``transformers_weights``, which transformers
   accepts when it is ``adapter_model.bin``, a pickle;
3. else ``model.safetensors``; else ``model.safetensors.index.json``;
4. for an index (3, or a ``*.safetensors.index.json`` named in 2): every file its
   ``weight_map`` lists, whatever its suffix, joined to the folder (``..`` and absolute paths
   included);
5. plus the files a config class lists in ``extra_files`` (fixed by the class, not the folder).

A file that does not end in ``.safetensors`` goes to ``torch.load``. :func:`check_weight_files`
lists those files the same way, before any ``from_pretrained``, and refuses anything else, so the
text and the image loaders share one rule. A hub id's files are not on disk before download;
its ``transformers_weights`` is checked, and :func:`safetensors_only` checks the list
transformers resolves, for any route, before a file is opened.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import os
import re
import threading
from pathlib import Path

from attnviz.errors import ModelLoadError

SAFE_SUFFIX = ".safetensors"
SAFE_INDEX_SUFFIX = ".safetensors.index.json"
SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
_DISTRIBUTED_SHARD = re.compile(r"^shard-[0-9]{5}-model-[0-9]{5}-of-[0-9]{5}\.safetensors$")


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file, read in chunks (a bundled model's weights are checked with it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()

CONVERT = (
    "If you trust the file, convert the weights to safetensors: load the model with transformers yourself and call "
    "model.save_pretrained(folder), which writes model.safetensors, and remove the other weight files "
    "(and any transformers_weights entry in config.json that names them)."
)


def _refuse(label: str, why: str, fallback: str) -> ModelLoadError:
    return ModelLoadError(
        f"{label!r} was not loaded: {why}. attnviz reads weights only from safetensors files, because opening a "
        f"pickle (.bin, .pt, .ckpt) can run code. {CONVERT} {fallback}"
    )


def _weight_map(index: Path, label: str, fallback: str) -> list[str]:
    """The file names an index's ``weight_map`` lists, each once, as written in the index."""
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(
            f"{label!r} was not loaded: its weight index {index.name} cannot be read ({type(exc).__name__}: {exc}). "
            f"Save the model again with save_pretrained. {fallback}"
        ) from exc
    mapping = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ModelLoadError(
            f"{label!r} was not loaded: its weight index {index.name} has no weight_map of file names. "
            f"Save the model again with save_pretrained. {fallback}"
        )
    return sorted(set(mapping.values()))


def folder_weight_files(folder: Path, config, label: str = "model", fallback: str = "") -> list[str]:
    """The weight files transformers would open for ``folder``, as names relative to it (see the module docstring).

    Empty when the folder has no safetensors weights at all (transformers then fails with
    ``use_safetensors=True``). Indexes are followed; the index files themselves are not listed.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    shards = sorted(n for n in names if _DISTRIBUTED_SHARD.match(n))
    if shards:
        return [n for n in names if n.endswith(SAFE_SUFFIX)]
    explicit = getattr(config, "transformers_weights", None)
    if explicit is not None:
        first = str(explicit)
    elif (folder / SAFE_WEIGHTS).is_file():
        first = SAFE_WEIGHTS
    elif (folder / SAFE_INDEX).is_file():
        first = SAFE_INDEX
    else:
        first = None
    files = []
    if first is not None and first.endswith(SAFE_INDEX_SUFFIX) and _inside(folder, first):
        files = _weight_map(folder / first, label, fallback)
    elif first is not None:
        files = [first]
    extra = [str(n) for n in getattr(type(config), "extra_files", ()) if (folder / str(n)).exists()]
    return files + [n for n in extra if n not in files]


def _inside(folder: Path, name: str) -> bool:
    """``folder/name`` stays inside ``folder`` after ``..`` is applied (as transformers joins it: no symlinks)."""
    base = os.path.abspath(folder)
    try:
        return os.path.commonpath([base, os.path.abspath(os.path.join(base, name))]) == base
    except ValueError:  # another drive on Windows
        return False


def check_weight_files(source, config, fallback: str) -> None:
    """Refuse a model whose weights transformers would read from anything but a safetensors file in its folder.

    ``source`` is an :class:`attnviz.model_source.ModelSource`; ``config`` what ``AutoConfig``
    read from it. Call before any ``from_pretrained`` of the model.

    Raises:
        ModelLoadError: a weight file is not ``.safetensors`` (a pickle), or lies outside the
            folder; the message names the file and says how to convert the weights.
    """
    label = source.name
    explicit = getattr(config, "transformers_weights", None)
    if explicit is not None and not str(explicit).endswith((SAFE_SUFFIX, SAFE_INDEX_SUFFIX)):
        raise _refuse(label, f"its config.json names {str(explicit)!r} as its weights (transformers_weights)", fallback)
    if source.path is None:  # a hub id: the rest is checked by safetensors_only() once transformers lists the files
        return
    files = folder_weight_files(source.path, config, label, fallback)
    outside = [n for n in files if not _inside(source.path, n)]
    if outside:
        raise ModelLoadError(
            f"{label!r} was not loaded: its weights point outside its folder ({', '.join(outside)}), so loading "
            f"would read files elsewhere on this server. Keep every weight file inside the model folder. {fallback}"
        )
    unsafe = [n for n in files if not n.endswith(SAFE_SUFFIX)]
    if unsafe:
        raise _refuse(label, f"its weights would be read from {', '.join(unsafe)}, which is not safetensors", fallback)


# ------------------------------------------------------------------- the backstop inside transformers

#: (label, fallback) of the load in progress in this thread or task; None: no check.
_active: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("attnviz_safetensors", default=None)
_install_lock = threading.Lock()


def _install() -> None:
    """Wrap transformers' checkpoint resolution once; the wrapper checks only inside :func:`safetensors_only`.

    Outside it (a notebook user's own ``from_pretrained`` in the same process) transformers
    behaves as shipped. If a future transformers renames the function, the folder check of
    :func:`check_weight_files` still holds; only the hub backstop is lost.
    """
    from transformers import modeling_utils

    with _install_lock:
        original = getattr(modeling_utils, "_get_resolved_checkpoint_files", None)
        if original is None or getattr(original, "_attnviz_backstop", False):
            return

        @functools.wraps(original)
        def resolved_safetensors_only(*args, **kwargs):
            files, metadata = original(*args, **kwargs)
            active = _active.get()
            if active is not None:
                unsafe = [os.path.basename(str(f)) for f in files or () if not str(f).endswith(SAFE_SUFFIX)]
                if unsafe:
                    why = f"transformers would read its weights from {', '.join(unsafe)}, which is not safetensors"
                    raise _refuse(active[0], why, active[1])
            return files, metadata

        resolved_safetensors_only._attnviz_backstop = True
        modeling_utils._get_resolved_checkpoint_files = resolved_safetensors_only


@contextlib.contextmanager
def safetensors_only(label: str, fallback: str = ""):
    """Inside this block, a ``from_pretrained`` whose resolved weight files are not all safetensors raises.

    The check runs after transformers has listed (for a hub id, downloaded) the files and
    before it opens any; it raises ``ModelLoadError`` naming ``label``, ending with ``fallback``. Per thread and task
    (a context variable), so other users of transformers in the process are not affected.
    """
    _install()
    token = _active.set((label, fallback))
    try:
        yield
    finally:
        _active.reset(token)
