"""Upload helpers from the original app's contract: which names are accepted, and the content-addressed stored name."""

import hashlib
import os
import tempfile
from typing import BinaryIO

from werkzeug.datastructures import FileStorage

from constants import ALLOWED_EXTENSIONS


def allowed_file(filename: str) -> bool:
    """True for .png .jpg .jpeg .gif (any case), paths allowed; no extension, 'x.' or 'x.gif/' are False."""
    return os.path.splitext(filename)[1].lower() in ALLOWED_EXTENSIONS


def get_file_hash(file: FileStorage) -> str:
    """md5 hex digest of the content + the original extension, leaving the stream at position 0."""
    file.seek(0)
    digest = hashlib.md5()
    for chunk in iter(lambda: file.read(1 << 20), b""):
        digest.update(chunk)
    file.seek(0)
    return _name(digest, file.filename)


def hashed_name(data: bytes, filename: str | None) -> str:
    """get_file_hash() for content already in memory (the upload path reads it once)."""
    return _name(hashlib.md5(data), filename)


def _name(digest, filename: str | None) -> str:
    return f"{digest.hexdigest()}{os.path.splitext(filename or '')[1]}"


def store_upload(folder: str, name: str, data: bytes) -> str:
    """Write `data` as folder/name atomically (temp file + rename), so a concurrent reader never sees half a file."""
    if os.path.basename(name) != name or name in ("", ".", ".."):
        raise ValueError(f"refusing to store under {name!r}")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_upload(stream: BinaryIO) -> bytes:
    """Whole upload content from the start (the size is already bounded by MAX_CONTENT_LENGTH)."""
    stream.seek(0)
    return stream.read()
