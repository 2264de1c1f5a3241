"""The original app's contract of utils: allowed_file and get_file_hash; plus the atomic upload store."""

import hashlib
import io
import os

import pytest
from werkzeug.datastructures import FileStorage

import utils
from helpers import PHOTOS


@pytest.mark.parametrize(
    "name, expected",
    [
        ("cat.jpg", True),
        ("cat.JPG", True),
        ("cat.jpeg", True),
        ("cat.Png", True),
        ("cat.gif", True),
        ("../../car.PNG", True),
        ("/usr/var/src/car.gif", True),
        ("фото.jpg", True),
        ("cat", False),
        ("cat.", False),
        ("cat.gif/", False),
        ("cat.bmp", False),
        ("cat.jpg.exe", False),
        ("cat.pdf", False),
        (".jpg", False),
        ("", False),
        ("cat.jpg ", False),
    ],
)
def test_allowed_file(name, expected):
    assert utils.allowed_file(name) is expected


def test_get_file_hash_is_md5_plus_original_extension_and_rewinds():
    path = os.path.join(PHOTOS, "cat.jpg")
    with open(path, "rb") as fh:
        content = fh.read()
        fh.seek(0)
        storage = FileStorage(fh, filename="My Cat.JPG")
        name = utils.get_file_hash(storage)
        assert name == hashlib.md5(content).hexdigest() + ".JPG"
        assert storage.read() == content  # readable from the start


def test_hashed_name_of_bytes_matches_get_file_hash():
    storage = FileStorage(io.BytesIO(b"abcdef"), filename="dir/x.PNG")
    assert (
        utils.hashed_name(b"abcdef", "dir/x.PNG")
        == utils.get_file_hash(storage)
        == hashlib.md5(b"abcdef").hexdigest() + ".PNG"
    )


def test_get_file_hash_from_a_stream_read_halfway():
    storage = FileStorage(io.BytesIO(b"abcdef"), filename="x.png")
    storage.read(3)
    assert utils.get_file_hash(storage) == hashlib.md5(b"abcdef").hexdigest() + ".png"
    assert storage.stream.tell() == 0


def test_get_file_hash_uses_the_path_of_a_plain_file(tmp_path):
    """FileStorage(fp) takes its name from fp.name, as in the original app's test."""
    target = tmp_path / "dog.jpeg"
    target.write_bytes(b"woof")
    with open(target, "rb") as fh:
        assert utils.get_file_hash(FileStorage(fh)) == hashlib.md5(b"woof").hexdigest() + ".jpeg"


def test_store_upload_writes_atomically(tmp_path):
    folder = tmp_path / "up"
    path = utils.store_upload(str(folder), "abc.jpg", b"data")
    assert open(path, "rb").read() == b"data"
    assert os.listdir(folder) == ["abc.jpg"]  # no temp file left behind
    utils.store_upload(str(folder), "abc.jpg", b"data2")
    assert open(path, "rb").read() == b"data2"


@pytest.mark.parametrize("name", ["../x.jpg", "a/b.jpg", "/etc/x.jpg", "", ".."])
def test_store_upload_refuses_paths(tmp_path, name):
    with pytest.raises(ValueError):
        utils.store_upload(str(tmp_path), name, b"x")
