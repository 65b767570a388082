"""Unpacking a visitor's .zip of class folders into a fresh temporary folder, safely.

The archive must hold one folder per class (``cats/1.png``, ``dogs/7.jpg``; a single top folder
around them, as "compress this folder" makes, is fine). Before anything is written the central
directory is read and refused when it:

- is not a zip, or is damaged or encrypted;
- lists more than ``max_files`` members, or declares more than ``max_bytes`` unpacked
  (a zip bomb: a 50 kB file can declare gigabytes);
- names a member by an absolute path, a drive, or with ``..`` (path traversal, "zip slip"),
  or holds a symbolic link;
- holds another archive (``.zip``, ``.tar``, ``.gz``, ...): unpacking it would be a second bomb;
- leaves fewer than two classes, or a class with fewer than :data:`MIN_IMAGES_PER_CLASS` images.

:func:`train_from_zip` is what the "Train on your own images" page (:mod:`attnviz.ui.image_training`)
runs: unpack, train with the app's settings (:func:`train_folder`, :mod:`attnviz.image.train`), remove the
unpacked images. A server folder (where the deployment allows folders) is checked by
:func:`check_training_folder` and trained on by the same :func:`train_folder`.

Non-image files (by extension), hidden files and macOS's ``__MACOSX`` folder are skipped and
counted. While extracting, the bytes actually written are counted too (declared sizes can lie),
and the whole folder is removed on any refusal. Every refusal is an
:class:`~attnviz.errors.InputError` whose message says what to do.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from attnviz.errors import InputError

#: Image file extensions a class folder may hold (the formats attnviz.image.decoding opens).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"})
#: Members refused because they are archives themselves.
ARCHIVE_SUFFIXES = frozenset({".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".lz", ".lzma"})
MAX_FILES = 2_000
MAX_UNPACKED_BYTES = 200 * 2**20
MIN_CLASSES = 2
MIN_IMAGES_PER_CLASS = 5
_CHUNK = 1 << 16
#: The app's training settings: a small batch (CPU), steps bounded by the time budget rather than a count.
APP_BATCH = 32
APP_MAX_STEPS = 100_000
#: Where trained models are written: the app's one new folder per training, and under COMMAND_LINE_DIR the
#: command line's when it is given no --out. A temporary folder: the app keeps its own 8 newest only.
TRAINED_ROOT = Path(tempfile.gettempdir()) / "attnviz-trained"
COMMAND_LINE_DIR = "command-line"  # the app's housekeeping leaves this subfolder alone
_HOW = (
    "Make one folder per class with the images inside (cats/1.png, dogs/2.jpg, ...), select the folders and "
    "compress them into one .zip."
)


@dataclass
class TrainingFolder:
    """An unpacked archive: ``folder`` holds one subfolder of images per class.

    ``images`` counts each class's image files (by extension; a file that does not decode is
    skipped later, by the training's reader). ``skipped`` counts what was left out, by reason.
    Call :meth:`remove` (or use it as a context manager) when training has read it.
    """

    folder: Path
    images: dict[str, int]
    skipped: dict[str, int] = field(default_factory=dict)
    unpacked_bytes: int = 0

    @property
    def classes(self) -> list[str]:
        return sorted(self.images)

    def summary(self) -> str:
        """One line for a person: classes, images, and what was skipped."""
        parts = [f"{len(self.images)} classes, {sum(self.images.values())} images"]
        parts += [f"{n} {why} skipped" for why, n in sorted(self.skipped.items()) if n]
        return "; ".join(parts)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TrainingFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _member_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The member's path as parts; InputError for a path that could leave the folder."""
    raw = info.filename
    name = raw.replace("\\", "/")
    if "\x00" in name:
        raise InputError(f"The archive names a member with a NUL character ({raw!r}); it was not unpacked. {_HOW}")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InputError(
            f"The archive names a member by an absolute path ({raw!r}), which would be written outside the folder "
            f"it is unpacked into; it was not unpacked. {_HOW}"
        )
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise InputError(
            f"The archive names a member with '..' ({raw!r}), which would be written outside the folder it is "
            f"unpacked into (path traversal); it was not unpacked. {_HOW}"
        )
    return parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _plan(infos: list[zipfile.ZipInfo]) -> tuple[list[tuple[zipfile.ZipInfo, tuple[str, str]]], dict[str, int]]:
    """Which members to write, as (info, (class, file name)), and what is skipped, by reason."""
    skipped = {"non-image files": 0, "hidden or __MACOSX files": 0, "images outside a class folder": 0}
    files = []
    for info in infos:
        parts = _member_parts(info)
        if _is_symlink(info):
            raise InputError(
                f"The archive holds a symbolic link ({info.filename!r}); links can point outside the folder, so "
                f"it was not unpacked. {_HOW}"
            )
        if info.is_dir() or not parts:
            continue
        if info.flag_bits & 0x1:
            raise InputError(
                f"{info.filename!r} in the archive is encrypted (password-protected). Make the .zip again without "
                "a password."
            )
        suffix = PurePosixPath(parts[-1]).suffix.lower()
        if suffix in ARCHIVE_SUFFIXES:
            raise InputError(
                f"The archive holds another archive ({info.filename!r}); archives inside archives are not "
                f"unpacked (each layer could be a zip bomb). Unpack it first. {_HOW}"
            )
        if any(p.startswith(".") for p in parts) or parts[0] == "__MACOSX":
            skipped["hidden or __MACOSX files"] += 1
            continue
        if suffix not in IMAGE_SUFFIXES:
            skipped["non-image files"] += 1
            continue
        files.append((info, parts))
    # One top folder around the class folders ("compress this folder"): strip it.
    while files and all(len(p) >= 3 for _, p in files) and len({p[0] for _, p in files}) == 1:
        files = [(info, p[1:]) for info, p in files]
    planned = []
    for info, parts in files:
        if len(parts) < 2:
            skipped["images outside a class folder"] += 1
            continue
        # Images deeper inside a class folder belong to that class; the file name keeps the subfolders apart.
        planned.append((info, (parts[0], "__".join(parts[1:]))))
    return planned, skipped


def _check_classes(images: dict[str, int], skipped: dict[str, int], what: str = "The archive") -> None:
    loose = skipped.get("images outside a class folder", 0)
    if len(images) < MIN_CLASSES:
        found = f"one class ({next(iter(images))!r})" if images else "no class folder with images"
        extra = f" ({loose} images lay outside any folder)" if loose else ""
        raise InputError(
            f"{what} holds {found}{extra}; training needs at least {MIN_CLASSES} classes, one folder each. {_HOW}"
        )
    small = {c: n for c, n in sorted(images.items()) if n < MIN_IMAGES_PER_CLASS}
    if small:
        listed = ", ".join(f"{c!r} ({n})" for c, n in small.items())
        raise InputError(
            f"Every class needs at least {MIN_IMAGES_PER_CLASS} images (some are held out to measure accuracy); "
            f"too few in {listed}. Add images to {'that class' if len(small) == 1 else 'those classes'}, or leave "
            f"{'it' if len(small) == 1 else 'them'} out of the .zip."
        )


def unpack_training_zip(
    data: bytes | str | os.PathLike,
    parent: str | os.PathLike | None = None,
    *,
    max_files: int = MAX_FILES,
    max_bytes: int = MAX_UNPACKED_BYTES,
    name: str = "The upload",
) -> TrainingFolder:
    """Unpack a .zip of class folders into a new folder under ``parent`` (default: the temp folder).

    ``data`` is the archive's bytes or its path; ``name`` is how messages call it.

    Raises:
        InputError: the archive is refused (see the module docstring); nothing is left on disk.
    """
    source = io.BytesIO(bytes(data)) if isinstance(data, bytes | bytearray | memoryview) else Path(data)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"{name} is not a .zip archive ({exc}). {_HOW}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > max_files:
            raise InputError(
                f"{name} lists {len(infos):,} members; this server unpacks at most {max_files:,}. Use fewer images "
                "(a few hundred per class is plenty here), or train from the command line: "
                "python -m attnviz.train --data FOLDER --out OUT."
            )
        declared = sum(i.file_size for i in infos)
        if declared > max_bytes:
            raise InputError(
                f"{name} would unpack to {declared / 2**20:,.0f} MB; this server unpacks at most "
                f"{max_bytes / 2**20:,.0f} MB. Use fewer or smaller images (they are shrunk to at most 224 x 224 "
                "anyway), or train from the command line."
            )
        planned, skipped = _plan(infos)
        images: dict[str, int] = {}
        for _, (cls, _) in planned:
            images[cls] = images.get(cls, 0) + 1
        _check_classes(images, skipped)
        folder = Path(tempfile.mkdtemp(prefix="attnviz-zip-", dir=parent))
        try:
            written = _extract(archive, planned, folder, max_bytes, name)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return TrainingFolder(folder, images, {k: v for k, v in skipped.items() if v}, written)


def _extract(archive: zipfile.ZipFile, planned: list, folder: Path, max_bytes: int, name: str) -> int:
    """Write the planned members, counting the bytes really written; returns that count."""
    written = 0
    for info, (cls, file_name) in planned:
        target_dir = folder / cls
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / file_name
        if target.exists():  # two members whose names differ only by separators
            target = target_dir / f"{len(os.listdir(target_dir))}-{file_name}"
        try:
            with archive.open(info) as src, open(target, "xb") as dst:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise InputError(
                            f"{name} unpacks to more than {max_bytes / 2**20:,.0f} MB (more than its directory "
                            "declares); it was not used. Make the .zip again from your image folders."
                        )
                    dst.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(
                f"{info.filename!r} in {name} could not be unpacked ({type(exc).__name__}: {exc}): the archive is "
                "damaged or uses an unsupported compression. Make the .zip again (standard 'deflate' compression)."
            ) from exc
    return written


def train_from_zip(
    data: bytes | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    size: int = 64,
    time_budget: float | None = 60.0,
    steps: int = APP_MAX_STEPS,
    progress: Callable | None = None,
    stop: threading.Event | None = None,
    name: str = "The upload",
    model_name: str | None = None,
    parent: str | os.PathLike | None = None,
    seed: int = 0,
    augment: str | None = None,
    log: Callable[[str], None] = lambda message: None,
    **limits,
) -> tuple[dict, TrainingFolder]:
    """Unpack ``data`` (a .zip of class folders), train a model on it and save it in ``out_dir``.

    The app's settings: batch :data:`APP_BATCH`, at least :data:`MIN_IMAGES_PER_CLASS` readable images per
    class, 10 % held out; ``progress``, ``stop``, ``size`` and ``time_budget`` as in
    :func:`attnviz.image.train.train`. ``augment``: ``"dihedral"`` when the classes look the same rotated by
    90° or mirrored (shapes, cells, textures), default ``"hflip"`` (mirrored left to right only).
    ``limits``: ``max_files``, ``max_bytes`` of :func:`unpack_training_zip`.
    Returns (the model card, the unpacked archive's summary; its folder is already removed).

    Raises:
        InputError: the archive is refused, or a class has too few images that open.
    """
    with unpack_training_zip(data, parent, name=name, **limits) as unpacked:
        card = train_folder(
            unpacked.folder,
            out_dir,
            size=size,
            time_budget=time_budget,
            steps=steps,
            progress=progress,
            stop=stop,
            name=name,
            model_name=model_name,
            seed=seed,
            augment=augment,
            log=log,
        )
    return card, unpacked


def train_folder(
    folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    size: int = 64,
    time_budget: float | None = 60.0,
    steps: int = APP_MAX_STEPS,
    progress: Callable | None = None,
    stop: threading.Event | None = None,
    name: str | None = None,
    model_name: str | None = None,
    seed: int = 0,
    augment: str | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """Train with the app's settings on ``folder`` (one subfolder of images per class); returns the card.

    What :func:`train_from_zip` runs once the archive is unpacked, and what the app's panel runs on an
    unpacked upload or a server folder (after :func:`check_training_folder`). ``name``: what the card's
    ``data`` calls the folder.
    """
    from attnviz.image.train import train  # torch and the model only when training

    return train(
        Path(out_dir),
        data_dir=Path(folder),
        data_name=name,
        name=model_name,
        size=size,
        time_budget=time_budget,
        steps=steps,
        batch=APP_BATCH,
        progress=progress,
        stop=stop,
        min_per_class=MIN_IMAGES_PER_CLASS,
        seed=seed,
        augment=augment,
        log=log,
    )


def new_model_folder(data: str | os.PathLike, size: int, root: str | os.PathLike | None = None) -> Path:
    """A new, empty folder for a model trained on ``data`` at ``size``: ``<root>/<data's name>-<size>``, or
    ``-2``, ``-3``, ... after it when that exists (created here, so that two runs never share one). ``root``:
    default ``TRAINED_ROOT / COMMAND_LINE_DIR``, what ``python -m attnviz.train --data FOLDER`` uses without --out.
    """
    root = Path(root) if root is not None else TRAINED_ROOT / COMMAND_LINE_DIR
    name = Path(os.path.abspath(data)).name
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:60].strip("-.") or "data"
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        folder = root / (f"{stem}-{size}" if n == 1 else f"{stem}-{size}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise InputError(f"{root} already holds 9,999 models trained on {name!r}: give --out, or remove some.")


def check_training_folder(folder: str | os.PathLike, *, max_files: int = MAX_FILES) -> dict[str, int]:
    """A server folder of class folders, checked as an archive is: at most ``max_files`` images, at least
    two classes, each with :data:`MIN_IMAGES_PER_CLASS`; returns the images per class (by extension).

    Nothing is written or removed. Raises InputError with what to do.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(
            f"{folder} is not a folder on this server. Give a folder with one subfolder of images per class "
            "(cats/1.png, dogs/2.jpg, ...)."
        )
    images: dict[str, int] = {}
    seen = 0
    for sub in sorted(root.iterdir()):
        if not sub.is_dir() or sub.name.startswith(".") or sub.name == "__MACOSX":
            continue
        for path in sub.iterdir():
            seen += 1
            if seen > max_files:
                raise InputError(
                    f"{folder} holds more than {max_files:,} files in its class folders; the app trains on at most "
                    f"{max_files:,}. Use fewer images, or train from the command line: "
                    "python -m attnviz.train --data FOLDER --out OUT."
                )
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
                images[sub.name] = images.get(sub.name, 0) + 1
    _check_classes(images, {}, what=str(folder))
    return images
