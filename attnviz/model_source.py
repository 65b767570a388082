"""Where a model may be loaded from: the bundled one, a local folder, or a Hugging Face hub id.

:func:`resolve_model_source` classifies a typed name, normalises a path (``~`` expanded,
``..`` and symlinks resolved) and checks it against the server's policy, which three
environment variables set. The defaults suit a notebook user (any folder, any hub id); a
deployment for a class turns folders off or limits them, so a visitor cannot make the server
read arbitrary folders:

``ATTNVIZ_LOCAL_MODELS`` = ``on`` (default) | ``off``
    ``off``: no local folder loads, whatever ``ATTNVIZ_MODEL_DIRS`` says.
``ATTNVIZ_MODEL_DIRS`` = folders separated by ``os.pathsep`` (``:`` on Linux/macOS, ``;`` on Windows)
    When set, only folders inside one of these load (checked after resolving ``..`` and
    symlinks, so neither leads out). Unset or empty: any folder.
``ATTNVIZ_HUB_MODELS`` = ``on`` (default) | ``off``
    ``off``: hub ids are refused; nothing is downloaded.

``on``/``off`` also accept ``1``/``0``, ``true``/``false``, ``yes``/``no``. Any other value
refuses every model except the bundled ones, with a message naming the setting. The bundled
models always load. ``load_text_model`` and ``load_image_model`` apply the policy themselves,
so it holds however a loader is reached (the app's pickers, the library, a script).

Two more variables bound what a folder's or a hub model's config may ask for, checked before
the model is built (:mod:`attnviz.model_budget`; the bundled models are not counted):

``ATTNVIZ_MODEL_MEMORY_GB`` = gigabytes (10^9 bytes), default ``4``
    The model's weights in float32 plus the attention weights of one input (text: up to 512
    tokens; images: the class token and the grid). bert-large needs 1.7 GB and loads;
    ``hidden_size: 65536`` would need 138 GB and is refused with the numbers.
``ATTNVIZ_MODEL_MAX_LAYERS`` = a whole number, default ``128``
    Each layer costs time to build and to run, however narrow (10,000 took 92 s to build).

Weights load from safetensors files only: every file transformers would open is checked first
(:mod:`attnviz.weight_files`), including one that config.json names in ``transformers_weights``
and those an index's ``weight_map`` lists. ``trust_remote_code=False`` is passed to every loader.

A name is a folder when it starts with ``/``, ``./``, ``../`` or ``~`` (or is absolute on
Windows), when it exists, or when it has more than one ``/`` or a ``/`` after an existing
folder: such a name that does not exist gives "no such folder", not a hub look-up. Whether a
name exists is asked only where the policy lets a folder load: with folders off, or outside
``ATTNVIZ_MODEL_DIRS``, ``tests`` (which exists) and ``zzzz`` (which does not) are both hub ids,
so the answer never tells a visitor which paths exist on the server. Anything
else is a hub id. A hub id is tried from the local Hugging Face cache only when the hub cannot
be reached (``HF_HUB_OFFLINE`` set, or no connection within a few seconds), so a machine
without internet gets a clear message at once instead of waiting for retries.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from attnviz.errors import ModelLoadError

LOCAL_ENV = "ATTNVIZ_LOCAL_MODELS"
DIRS_ENV = "ATTNVIZ_MODEL_DIRS"
HUB_ENV = "ATTNVIZ_HUB_MODELS"

BUNDLED, FOLDER, HUB = "bundled", "folder", "hub"

_ON = {"on", "1", "true", "yes"}
_OFF = {"off", "0", "false", "no"}
#: Seconds to wait for a TCP connection to the hub before treating it as unreachable.
HUB_PROBE_TIMEOUT = 3.0
_PROBE_TTL = 60.0
_probe_lock = threading.Lock()
_probe_cache: dict[str, tuple[float, bool]] = {}
#: Folders this process wrote itself (a visitor's model trained in the app), by resolved path: they load
#: whatever the policy says about typed folders, since no visitor chose the path.
_app_folders: set[str] = set()
_app_folders_lock = threading.Lock()


def register_app_folder(folder: str | os.PathLike) -> str:
    """Let the model folder ``folder``, written by this process, load under any policy; returns its name."""
    name = str(Path(folder).resolve())
    with _app_folders_lock:
        _app_folders.add(name)
    return name


@dataclass(frozen=True)
class Policy:
    """Which model sources this process accepts (see the module docstring)."""

    local: bool = True
    dirs: tuple[Path, ...] = ()  # resolved; empty: any folder
    hub: bool = True
    problem: str = ""  # a malformed setting: every non-bundled name is refused with this message

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Policy:
        env = os.environ if env is None else env
        problems = []
        local = _switch(env, LOCAL_ENV, problems)
        hub = _switch(env, HUB_ENV, problems)
        dirs = []
        for entry in env.get(DIRS_ENV, "").split(os.pathsep):
            if entry.strip():
                try:
                    dirs.append(Path(entry.strip()).expanduser().resolve())
                except (OSError, RuntimeError, ValueError):
                    problems.append(f"{DIRS_ENV} holds {entry.strip()!r}, which is not a usable folder path")
        return cls(local=local, dirs=tuple(dirs), hub=hub, problem="; ".join(problems))

    def allowed(self, bundled: str) -> str:
        """What a person may type here, in words."""
        parts = [f"the bundled model {bundled!r}"]
        if self.local and self.dirs:
            parts.append("model folders inside " + " or ".join(str(d) for d in self.dirs))
        elif self.local:
            parts.append("any local model folder")
        if self.hub:
            parts.append("Hugging Face hub ids")
        return "Allowed here: " + "; ".join(parts) + "."


def _switch(env: Mapping[str, str], key: str, problems: list[str]) -> bool:
    value = env.get(key, "").strip().lower()
    if not value or value in _ON:
        return True
    if value not in _OFF:
        problems.append(f"{key} is {env[key]!r}; it must be on or off")
    return False  # off, or malformed: fail closed


@dataclass(frozen=True)
class ModelSource:
    """A classified, policy-checked model name.

    ``kind`` is ``"bundled"``, ``"folder"`` (``path`` is the resolved folder) or ``"hub"``
    (``offline``: the hub cannot be reached, so only the local Hugging Face cache may be used).
    """

    kind: str
    name: str
    path: Path | None = None
    offline: bool = False

    @property
    def location(self) -> str:
        """What ``from_pretrained`` gets: the resolved folder, or the hub id."""
        return str(self.path) if self.path is not None else self.name

    @property
    def hub_kwargs(self) -> dict:
        """Extra ``from_pretrained`` arguments: never touch the network when the hub is unreachable."""
        return {"local_files_only": True} if self.offline else {}


def resolve_model_source(
    name: str | None, bundled: str, what: str = "model", policy: Policy | None = None, *, probe_hub: bool = True
) -> ModelSource:
    """Classify ``name`` and check it against ``policy`` (default: from the environment).

    Raises:
        ModelLoadError: the name is refused by the policy, is a path that does not exist, is a
            file, or is neither a folder nor a valid hub id; the message says what is allowed
            and which setting changes it.
    """
    label = "" if name is None else str(name).strip()
    if not label or label == bundled:
        return ModelSource(BUNDLED, bundled)
    with _app_folders_lock:
        app_folder = label in _app_folders
    if app_folder:  # exact resolved paths only: nothing about other folders is learnt from this
        return ModelSource(FOLDER, label, path=Path(label))
    fallback = f"The bundled model {bundled!r} is always available."
    policy = Policy.from_env() if policy is None else policy
    if policy.problem:
        raise ModelLoadError(
            f"This server's model settings are not valid ({policy.problem}), so only the bundled model loads: "
            f"{label!r} was not opened. The person running the server can fix the setting. {fallback}"
        )
    if "\x00" in label or any(ord(c) < 32 for c in label):
        raise ModelLoadError(f"{label!r} contains control characters: it is not a folder or a hub id. {fallback}")
    if _looks_like_path(label, policy):
        return _folder(label, bundled, what, policy, fallback)
    return _hub(label, bundled, what, policy, fallback, probe_hub)


def check_model_name(name: str | None, bundled: str, what: str = "model") -> ModelSource:
    """Raise ``ModelLoadError`` when the policy refuses ``name`` (the app's pickers call this first).

    The policy only: the hub is not probed, since the pickers check on every rerun (a slider
    move) and a loaded hub model is already in the cache; the loader probes when it loads.
    """
    return resolve_model_source(name, bundled, what, probe_hub=False)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for the file system, say
        return False


def _may_probe(path: Path, policy: Policy) -> bool:
    """Whether the policy lets ``path`` load, so that whether it exists may decide what a name is.

    Outside that (folders off, or outside ``ATTNVIZ_MODEL_DIRS``) a name is classified by its
    spelling alone: an existing ``tests`` and a missing ``zzzz`` are both hub ids and get the
    same answer, so a visitor cannot learn which paths exist on the server.
    """
    if not policy.local:
        return False
    if not policy.dirs:
        return True
    try:
        resolved = path.expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return False
    return any(resolved == d or resolved.is_relative_to(d) for d in policy.dirs)


def _looks_like_path(label: str, policy: Policy) -> bool:
    """Whether a name is a folder path rather than a hub id (the rules are in the module docstring)."""
    if label in (".", "..", "~") or label.startswith(("/", "./", "../", "~")):
        return True
    seps = {os.sep, os.altsep or os.sep}
    if os.name == "nt" and label.startswith((".\\", "..\\")):
        return True
    path = Path(label)
    if path.is_absolute() or path.drive:
        return True
    if any(s in label for s in seps - {"/"}):  # a backslash on Windows: never in a hub id
        return True
    if _may_probe(path, policy) and _exists(path):
        return True
    if label.count("/") > 1:  # a hub id has at most one
        return True
    return "/" in label and path.parent != Path(".") and _may_probe(path.parent, policy) and _exists(path.parent)


def _folder(label: str, bundled: str, what: str, policy: Policy, fallback: str) -> ModelSource:
    if not policy.local:
        raise ModelLoadError(
            f"This server does not load models from local folders ({LOCAL_ENV}=off), so {label!r} was not opened. "
            f"{policy.allowed(bundled)} The person running the server can allow folders with {LOCAL_ENV}=on "
            f"(and limit them with {DIRS_ENV})."
        )
    try:
        resolved = Path(label).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # ~nosuchuser, a symlink loop
        raise ModelLoadError(f"Could not load {label!r}: no such folder ({exc}). {fallback}") from exc
    # Checked before existence: a visitor learns nothing about folders outside the allowed ones.
    if policy.dirs and not any(resolved == d or resolved.is_relative_to(d) for d in policy.dirs):
        raise ModelLoadError(
            f"{label!r} is outside the folders this server loads models from ("
            + ", ".join(str(d) for d in policy.dirs)
            + f"); '..' and symlinks are followed before this check. {policy.allowed(bundled)} "
            f"The allowed folders are set by {DIRS_ENV}."
        )
    if not _exists(resolved):
        raise ModelLoadError(
            f"Could not load {label!r}: no such folder. Type the path of a {what} folder on this server. {fallback}"
        )
    if not resolved.is_dir():
        raise ModelLoadError(
            f"{label!r} is a file, not a folder: give the folder that holds the model's files. {fallback}"
        )
    return ModelSource(FOLDER, label, path=resolved)


def _hub(label: str, bundled: str, what: str, policy: Policy, fallback: str, probe: bool) -> ModelSource:
    if not policy.hub:
        raise ModelLoadError(
            f"This server does not download models from the Hugging Face hub ({HUB_ENV}=off), so {label!r} "
            f"was not loaded. {policy.allowed(bundled)} The person running the server can allow hub ids with "
            f"{HUB_ENV}=on."
        )
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(label)
    except HFValidationError as exc:
        raise ModelLoadError(
            f"{label!r} is neither a folder on this server nor a Hugging Face hub id (hub ids look like "
            f"bert-base-uncased or org/model-name). {fallback}"
        ) from exc
    return ModelSource(HUB, label, offline=probe and not hub_reachable())


def hub_offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set for this process."""
    try:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return True
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        pass
    return any(os.environ.get(k, "").strip().lower() in _ON for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout`` seconds.

    False at once in offline mode. True without a probe behind a proxy (a direct connection
    says nothing there). The answer is remembered for a minute.
    """
    if hub_offline_mode():
        return False
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    key = f"{host}:{port}"
    with _probe_lock:
        cached = _probe_cache.get(key)
        if cached and time.monotonic() - cached[0] < _PROBE_TTL:
            return cached[1]
    result: list[bool] = []

    def probe() -> None:  # DNS look-ups have no timeout of their own: run in a thread, wait at most timeout
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="attnviz-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    ok = bool(result and result[0])
    with _probe_lock:
        _probe_cache[key] = (time.monotonic(), ok)
    return ok


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def hub_error(source: ModelSource, exc: BaseException, bundled: str) -> ModelLoadError:
    """The message for a hub id that did not load: unreachable hub, unknown id, or another failure.

    What to use instead follows the policy: a name typed for a folder that the policy does not
    probe (see :func:`_may_probe`) lands here too, so the message says how folders are given.
    """
    policy = Policy.from_env()
    if policy.local and policy.dirs:
        folders = "a model folder inside " + " or ".join(str(d) for d in policy.dirs) + " (type its full path)"
        todo = f"Use {folders} or the bundled model {bundled!r}, which is always available."
    elif policy.local:
        todo = (
            f"Use a local model folder (written by save_pretrained) or the bundled model {bundled!r}, "
            "which is always available."
        )
    else:
        todo = (
            f"This server loads no local folders ({LOCAL_ENV}=off); the bundled model {bundled!r} is always available."
        )
    names = {type(e).__name__ for e in _chain(exc)}
    if source.offline or names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectError", "ConnectTimeout"}:
        why = "HF_HUB_OFFLINE is set" if hub_offline_mode() else "no connection to the hub"
        return ModelLoadError(
            f"{source.name!r} looks like a Hugging Face hub id, but the hub cannot be reached from this server "
            f"({why}) and no downloaded copy is cached. {todo}"
        )
    if names & {"RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError"}:
        return ModelLoadError(f"There is no public model {source.name!r} on the Hugging Face hub. {todo}")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return ModelLoadError(
        f"Could not load {source.name!r} from the Hugging Face hub ({type(exc).__name__}: {first}). {todo}"
    )


def remote_code_error(source: ModelSource, exc: BaseException, bundled: str) -> ModelLoadError | None:
    """The message for a model that needs its own Python code (``auto_map``), or None for another failure.

    attnviz passes ``trust_remote_code=False`` everywhere, so transformers refuses such a model
    (a ``ValueError`` that mentions ``trust_remote_code``) instead of asking on the terminal.
    """
    custom = any("trust_remote_code" in str(e) for e in _chain(exc))
    if source.path is not None:
        try:
            import json

            custom = custom or "auto_map" in json.loads((source.path / "config.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, TypeError):
            pass
    if not custom:
        return None
    return ModelLoadError(
        f"{source.name!r} needs its own Python code to load (auto_map in its config.json names a model class that "
        "transformers does not have), and attnviz never runs code that comes with a model. Use a model of a "
        f"type transformers knows (bert, roberta, vit, ...), or the bundled model {bundled!r}, which is always "
        "available."
    )


#: Weight files that hold pickles (or other formats attnviz does not read).
UNSAFE_WEIGHTS = (
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "tf_model.h5",
    "flax_model.msgpack",
    "model.ckpt",
)


def weights_error(source: ModelSource, exc: BaseException, bundled: str) -> ModelLoadError:
    """The message for model weights that did not load; names a folder holding only pickled weights."""
    fallback = f"The bundled model {bundled!r} is always available."
    found: list[str] = []
    if source.path is not None:
        try:
            found = sorted(p.name for p in source.path.iterdir() if p.name in UNSAFE_WEIGHTS or p.suffix == ".bin")
            has_safetensors = any(p.suffix == ".safetensors" for p in source.path.iterdir())
        except OSError:
            has_safetensors = True
        if found and not has_safetensors:
            return ModelLoadError(
                f"{source.name!r} holds its weights only as {', '.join(found)}, which attnviz does not load: "
                "those files are pickles, and opening a pickle can run code. Convert the model to safetensors "
                "(load it in Python and call model.save_pretrained(folder), which writes model.safetensors). "
                f"{fallback}"
            )
    if "safetensors" in str(exc):
        return ModelLoadError(
            f"{source.name!r} has no weights in safetensors format (model.safetensors), the only format attnviz "
            f"loads: pickled weights (pytorch_model.bin) can run code. {fallback}"
        )
    return ModelLoadError(f"Could not load the weights of {source.name!r}: {type(exc).__name__}: {exc}. {fallback}")
