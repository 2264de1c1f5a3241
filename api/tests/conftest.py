"""Fixtures: isolated upload/feedback folders per test, the Flask app and client, a real redis-server (testkit)."""

import os

import pytest

from testkit import free_port

pytest_plugins = ["testkit.fixtures"]

# No SECRET_KEY here on purpose: `from app import app` must work with nothing exported (secret_key.py).
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test writes uploads and feedback under its own tmp dir; Redis points at a closed port by default."""
    monkeypatch.setenv("UPLOAD_FOLDER", str(tmp_path / "uploads"))
    monkeypatch.setenv("FEEDBACK_FILEPATH", str(tmp_path / "feedback" / "feedback.csv"))
    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    monkeypatch.setenv("REDIS_PORT", str(free_port()))
    return tmp_path


@pytest.fixture(autouse=True)
def fresh_fleet_reading():
    """Each test reads the heartbeats afresh: a process keeps its reading for a second (fleet)."""
    import fleet

    fleet.forget_reading()
    yield
    fleet.forget_reading()


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
    from testkit import photo

    return photo


@pytest.fixture
def redis_env(redis_server, monkeypatch):
    """Point the API at the test Redis and start from an empty database."""
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    r = redis_server.client()
    r.flushdb()
    yield r
    r.flushdb()
