"""The "Train on your own images" page: a bad archive's message, the cap on concurrent trainings, a run
that is stopped and becomes the image page's model."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from apptest_helpers import assert_clean, start_clean
from PIL import Image

from attnviz.image.model_files import CARD_FILE
from attnviz.image.train import STOPPED_BY_STOP
from attnviz.ui import image_training
from attnviz.ui.image_training import JOB, SLOTS

PAGE = "pages/train_images.py"


def colour_zip(per_class: int = 6) -> bytes:
    """Red and blue squares, one folder per class, inside one top folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
            for i in range(per_class):
                pixels = np.full((32, 32, 3), colour, np.uint8)
                pixels[i : i + 5, 3:9] = 255
                png = io.BytesIO()
                Image.fromarray(pixels).save(png, "PNG")
                z.writestr(f"colours/{name}/{i}.png", png.getvalue())
    return buf.getvalue()


@pytest.fixture(autouse=True)
def free_slots():
    assert SLOTS.in_use() == 0
    yield
    assert SLOTS.in_use() == 0  # every path gives its slot back


def plain(markdown: str) -> str:
    """A message as read: the page escapes Markdown with backslashes."""
    return markdown.replace("\\", "")


def upload(at, name: str, data: bytes):
    at.file_uploader(key=image_training.UPLOAD).upload(name, data, "application/zip")
    return at.run()


def test_a_file_that_is_not_a_zip_gets_the_message_not_a_traceback():
    at = upload(start_clean(PAGE), "photos.zip", b"these bytes are no archive")
    at.button(key=image_training.START).click().run()
    assert_clean(at)
    shown = [plain(w.value) for w in at.warning]
    assert any("is not a .zip archive" in w and "one folder per class" in w for w in shown), shown
    assert JOB not in at.session_state


def test_an_archive_with_one_class_is_refused_with_what_to_do():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(6):
            png = io.BytesIO()
            Image.new("RGB", (8, 8), (i, 0, 0)).save(png, "PNG")
            z.writestr(f"cats/{i}.png", png.getvalue())
    at = upload(start_clean(PAGE), "cats.zip", buf.getvalue())
    at.button(key=image_training.START).click().run()
    assert_clean(at)
    assert any("one class ('cats')" in plain(w.value) for w in at.warning)


def test_a_second_visitor_is_told_that_the_cap_is_reached(monkeypatch):
    monkeypatch.delenv(image_training.MAX_TRAININGS_ENV, raising=False)
    assert SLOTS.acquire(image_training.max_trainings())  # another visitor's training
    try:
        at = upload(start_clean(PAGE), "colours.zip", colour_zip())
        assert_clean(at)
        assert any("1 training already running on this server" in plain(i.value) for i in at.info)
        assert at.button(key=image_training.START).disabled
    finally:
        SLOTS.release()
    at.run()  # the slot is free again: Start is offered
    assert not at.info and not at.button(key=image_training.START).disabled


def test_the_cap_follows_the_setting(monkeypatch):
    monkeypatch.setenv(image_training.MAX_TRAININGS_ENV, "2")
    assert image_training.max_trainings() == 2
    monkeypatch.setenv(image_training.MAX_TRAININGS_ENV, "many")
    assert image_training.max_trainings() == 1


def test_a_stopped_training_becomes_the_image_pages_model_with_its_card():
    at = upload(start_clean(PAGE), "colours.zip", colour_zip())
    at.button(key=image_training.START).click().run()
    assert_clean(at)
    job = at.session_state[JOB]
    assert SLOTS.in_use() == 1 or not job.running
    assert any("Training on colours" in plain(c.value) for c in at.caption)
    if job.running:
        at.button(key=image_training.STOP).click().run()  # the Stop button of the progress panel
    assert job.finished.wait(120)
    at.run()
    assert_clean(at)
    card = json.loads((job.out_dir / CARD_FILE).read_text())
    assert card == job.card and card["classes"] == ["blue", "red"]
    assert card["training"]["stopped"] == STOPPED_BY_STOP
    assert any("It is now the image page's model" in plain(s.value) for s in at.success)
    # The card as a table: the calibration's numbers are the card's own.
    table = at.table[0].value
    domain = table[table.iloc[:, 0] == "Domain check"].iloc[0, 1]
    assert f"calibrated on {card['domain_check']['calibration_images']} held-out ones" in domain
    assert at.session_state["image_model_name"] == job.model_name == str(job.out_dir.resolve())
    at.switch_page("pages/image.py").run()
    assert_clean(at)
    assert any(job.out_dir.name in plain(c.value) and "classes: blue, red" in plain(c.value) for c in at.caption)
    assert at.get("plotly_chart")  # the overlay of the new model's attention


def test_a_server_folder_is_offered_only_where_folders_load_and_only_inside_the_allowed_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNVIZ_LOCAL_MODELS", "off")
    at = start_clean(PAGE)
    assert not [r for r in at.radio if r.key == image_training.SOURCE]  # no folder option at all
    monkeypatch.setenv("ATTNVIZ_LOCAL_MODELS", "on")
    monkeypatch.setenv("ATTNVIZ_MODEL_DIRS", str(tmp_path / "allowed"))
    at = start_clean(PAGE)
    at.radio(key=image_training.SOURCE).set_value(image_training.FROM_FOLDER).run()
    at.text_input(key=image_training.FOLDER).input(str(tmp_path / "elsewhere")).run()
    at.button(key=image_training.START).click().run()
    assert_clean(at)
    assert any("reads folders only inside" in plain(w.value) for w in at.warning)
    assert JOB not in at.session_state
