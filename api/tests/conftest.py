"""Fixtures: isolated upload/feedback folders per test, the Flask app and client, a real redis-server."""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import redis

API_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if API_DIR not in sys.path:
    sys.path.insert(0, API_DIR)
# No SECRET_KEY here on purpose: `from app import app` must work with nothing exported (secret_key.py).
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

PHOTOS = os.path.join(os.path.dirname(API_DIR), "tests", "data", "photos")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test writes uploads and feedback under its own tmp dir; Redis points at a closed port by default."""
    monkeypatch.setenv("UPLOAD_FOLDER", str(tmp_path / "uploads"))
    monkeypatch.setenv("FEEDBACK_FILEPATH", str(tmp_path / "feedback" / "feedback.csv"))
    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    monkeypatch.setenv("REDIS_PORT", str(free_port()))
    return tmp_path


@pytest.fixture
def app():
    from app import create_app

    return create_app({"TESTING": True, "SECRET_KEY": "test"})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def photo():
    """Bytes of a real JPEG photo."""
    def read(name: str = "cat.jpg") -> bytes:
        with open(os.path.join(PHOTOS, name), "rb") as fh:
            return fh.read()
    return read


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on a free port in a temp dir, for the whole session."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
         "--appendonly", "no", "--protected-mode", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = redis.Redis(port=port)
    for _ in range(100):
        try:
            r.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_env(redis_server, monkeypatch):
    """Point the API at the test Redis and start from an empty database."""
    monkeypatch.setenv("REDIS_PORT", str(redis_server))
    r = redis.Redis(host="127.0.0.1", port=redis_server)
    r.flushdb()
    yield r
    r.flushdb()
