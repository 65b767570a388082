"""Every bad .zip a visitor can upload for training is refused with a message, and nothing is left on disk;
a good one unpacks into one folder per class, skipping what is not an image."""

from __future__ import annotations

import io
import stat
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from attnviz.errors import InputError
from attnviz.image import training_archive
from attnviz.image.training_archive import MIN_IMAGES_PER_CLASS, unpack_training_zip


def png(value: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def make_zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def classes(n_per_class=MIN_IMAGES_PER_CLASS, names=("cats", "dogs"), prefix="") -> dict[str, bytes]:
    return {f"{prefix}{c}/{i}.png": png(40 * k + i) for k, c in enumerate(names) for i in range(n_per_class)}


@pytest.fixture
def parent(tmp_path):
    """The folder archives unpack into; each test checks that a refusal leaves it empty."""
    p = tmp_path / "unpacked"
    p.mkdir()
    return p


def refused(data: bytes, parent, **kw) -> str:
    with pytest.raises(InputError) as info:
        unpack_training_zip(data, parent, **kw)
    assert list(parent.iterdir()) == []  # nothing left behind
    return str(info.value)


def test_a_good_zip_unpacks_one_folder_per_class_and_skips_what_is_not_an_image(parent):
    members = classes(6, prefix="holiday/")  # one top folder around the classes, as "compress folder" makes
    members |= {
        "holiday/cats/notes.txt": b"hello",
        "holiday/.DS_Store": b"x",
        "__MACOSX/holiday/cats/._0.png": b"x",
        "holiday/dogs/deeper/extra.PNG": png(200),
    }
    with unpack_training_zip(make_zip(members), parent) as tf:
        assert tf.classes == ["cats", "dogs"]
        assert tf.images == {"cats": 6, "dogs": 7}
        assert tf.skipped == {"non-image files": 1, "hidden or __MACOSX files": 2}
        assert sorted(p.name for p in (tf.folder / "cats").iterdir()) == [f"{i}.png" for i in range(6)]
        assert (tf.folder / "dogs" / "deeper__extra.PNG").read_bytes() == members["holiday/dogs/deeper/extra.PNG"]
        # Bytes written are the images' own, counted.
        images = [v for k, v in members.items() if k.lower().endswith(".png") and "__MACOSX" not in k]
        assert tf.unpacked_bytes == sum(len(v) for v in images)
        assert "2 classes, 13 images" in tf.summary() and "1 non-image files skipped" in tf.summary()
    assert list(parent.iterdir()) == []  # removed on leaving the with block


def test_not_a_zip(parent):
    assert "not a .zip archive" in refused(b"PK\x03\x04 but not really a zip", parent)
    assert "not a .zip archive" in refused(png(), parent)


def test_too_many_members(parent):
    message = refused(make_zip(classes(10)), parent, max_files=15)
    assert "20 members" in message and "at most 15" in message


def test_zip_bomb_by_declared_size(parent):
    # 8 MB of zeros compress to a few kB: refused from the directory, before anything is written.
    data = make_zip(classes() | {"cats/big.png": b"\0" * 8_000_000})
    assert len(data) < 100_000
    message = refused(data, parent, max_bytes=2_000_000)
    assert "would unpack to 8 MB" in message and "at most 2 MB" in message


def _lie_about_sizes(data: bytes, member: str, size: int) -> bytes:
    """Rewrite ``member``'s uncompressed size in its local header and central directory entry."""
    out = bytearray(data)
    name = member.encode()
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (i := out.find(sig, start)) >= 0:
            name_at = i + (30 if sig == b"PK\x03\x04" else 46)
            if out[name_at : name_at + len(name)] == name:
                out[i + offset : i + offset + 4] = struct.pack("<I", size)
            start = i + 4
    return bytes(out)


def test_zip_bomb_whose_directory_lies_about_the_size(parent):
    """A member that declares 100 bytes but inflates to 8 MB: extraction stops, the folder is removed."""
    data = _lie_about_sizes(make_zip(classes() | {"cats/big.png": b"\0" * 8_000_000}), "cats/big.png", 100)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert sum(i.file_size for i in z.infolist()) < 2_000_000  # the directory passes the declared check
    message = refused(data, parent, max_bytes=2_000_000)
    assert "cats/big.png" in message and "damaged" in message


def test_bytes_are_counted_while_extracting(parent):
    """Extraction counts the bytes it writes and stops at the cap, whatever the directory said."""
    members = classes()
    data = make_zip(members)
    total = sum(len(v) for v in members.values())
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        planned, _ = training_archive._plan(z.infolist())
        with pytest.raises(InputError, match="more than its directory declares"):
            training_archive._extract(z, planned, parent, total - 1, "The upload")
        assert training_archive._extract(z, planned, parent / "again", total, "The upload") == total


@pytest.mark.parametrize(
    "evil",
    ["../escape.png", "cats/../../escape.png", "/etc/cron.d/x.png", "C:/windows/x.png", "..\\..\\escape.png"],
)
def test_path_traversal_in_member_names(parent, evil):
    message = refused(make_zip(classes() | {evil: png()}), parent)
    assert "outside the folder" in message
    assert not (parent.parent / "escape.png").exists()


def test_symbolic_link(parent):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in classes().items():
            z.writestr(name, data)
        link = zipfile.ZipInfo("cats/link.png")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "/etc/passwd")
    assert "symbolic link" in refused(buf.getvalue(), parent)


def test_nested_archive(parent):
    inner = make_zip(classes())
    assert "holds another archive ('cats/more.zip')" in refused(make_zip(classes() | {"cats/more.zip": inner}), parent)


def test_one_class_only(parent):
    message = refused(make_zip(classes(names=("cats",))), parent)
    assert "one class ('cats')" in message and "at least 2 classes" in message


def test_images_without_class_folders(parent):
    message = refused(make_zip({f"{i}.png": png(i) for i in range(12)}), parent)
    assert "no class folder" in message and "12 images lay outside any folder" in message


def test_a_class_with_fewer_than_five_images(parent):
    members = classes(6) | classes(MIN_IMAGES_PER_CLASS - 1, names=("birds",))
    message = refused(make_zip(members), parent)
    assert f"'birds' ({MIN_IMAGES_PER_CLASS - 1})" in message and "at least 5 images" in message


def test_non_image_files_do_not_count_as_images(parent):
    """A class of text files is a class with no images: refused, named."""
    members = classes(names=("cats",)) | {f"dogs/{i}.txt": b"woof" for i in range(10)}
    message = refused(make_zip(members), parent)
    assert "one class ('cats')" in message


def test_encrypted_member(parent):
    data = bytearray(make_zip(classes(), compression=zipfile.ZIP_STORED))
    # Set the "encrypted" flag bit on every entry, local and central.
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (i := data.find(sig, start)) >= 0:
            data[i + offset] |= 1
            start = i + 4
    assert "encrypted" in refused(bytes(data), parent)


def test_damaged_member(parent):
    data = bytearray(make_zip(classes(), compression=zipfile.ZIP_DEFLATED))
    i = data.find(b"PK\x03\x04") + 30 + len("cats/0.png") + 5
    data[i : i + 20] = b"\xff" * 20  # inside the first member's compressed bytes
    message = refused(bytes(data), parent)
    assert "damaged" in message or "not a .zip" in message


def test_train_from_zip_trains_on_the_unpacked_classes_and_removes_them(parent, tmp_path):
    card, unpacked = training_archive.train_from_zip(
        make_zip(classes(6)), tmp_path / "model", steps=2, time_budget=None, parent=parent, name="pets.zip"
    )
    assert card["classes"] == ["cats", "dogs"] and card["data"].startswith("pets.zip: ")
    assert card["training"]["steps"] == 2 and unpacked.images == {"cats": 6, "dogs": 6}
    assert list(parent.iterdir()) == []  # the unpacked images are gone, the model stays
    assert (tmp_path / "model" / "model.safetensors").is_file()


def test_a_server_folder_is_checked_like_an_archive_and_left_in_place(tmp_path):
    for name, n in (("cats", 6), ("dogs", 5)):
        (tmp_path / name).mkdir()
        for i in range(n):
            (tmp_path / name / f"{i}.png").write_bytes(png(i))
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    assert training_archive.check_training_folder(tmp_path) == {"cats": 6, "dogs": 5}
    assert len(list((tmp_path / "dogs").iterdir())) == 6  # nothing removed or written
    with pytest.raises(InputError, match="holds more than 10 files"):
        training_archive.check_training_folder(tmp_path, max_files=10)
    (tmp_path / "dogs" / "0.png").unlink()
    with pytest.raises(InputError, match=r"too few in 'dogs' \(4\)"):
        training_archive.check_training_folder(tmp_path)
    with pytest.raises(InputError, match="not a folder on this server"):
        training_archive.check_training_folder(tmp_path / "missing")
