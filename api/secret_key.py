"""SECRET_KEY when none is exported: generated once into the app's instance folder (mode 0600) and shared by every
gunicorn worker, so sessions and flash messages work across workers and restarts. Compose and Kubernetes still
require SECRET_KEY explicitly (docker-compose.yml fails without it)."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile

log = logging.getLogger(__name__)
FILENAME = "secret_key"


def load_or_create(instance_path: str) -> str:
    """Read instance_path/secret_key, creating it first if missing; concurrent workers all end with one key."""
    path = os.path.join(instance_path, FILENAME)
    try:
        with open(path, encoding="ascii") as fh:
            key = fh.read().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    os.makedirs(instance_path, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=instance_path, prefix=".secret_key-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)  # atomic and refuses to overwrite: the first worker's key wins
            log.warning("SECRET_KEY not set: generated one in %s (export SECRET_KEY in production)", path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    with open(path, encoding="ascii") as fh:
        return fh.read().strip()
