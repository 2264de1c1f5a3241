"""The API's settings follow the environment at call time (the loader itself: common/tests/test_settings.py)."""

import os

import pytest

import settings
from helpers import API_DIR


def test_defaults(monkeypatch):
    for name in (
        "REDIS_HOST",
        "REDIS_PORT",
        "MAX_QUEUE_DEPTH",
        "REQUEST_TIMEOUT_S",
        "MAX_IMAGE_PIXELS",
        "FEEDBACK_FILEPATH",
        "REDIS_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    assert settings.REDIS_HOST == "localhost"
    assert settings.REDIS_PORT == 6379
    assert settings.MAX_QUEUE_DEPTH == 64
    assert settings.REQUEST_TIMEOUT_S == 30.0
    assert settings.MAX_IMAGE_PIXELS == 40_000_000
    assert settings.MAX_CONTENT_LENGTH == 16 * 1024 * 1024
    assert settings.REDIS_PASSWORD is None
    assert settings.FEEDBACK_FILEPATH.endswith("/feedback/feedback.csv")


def test_read_at_call_time(monkeypatch):
    monkeypatch.setenv("MAX_QUEUE_DEPTH", "3")
    assert settings.MAX_QUEUE_DEPTH == 3
    monkeypatch.setenv("MAX_QUEUE_DEPTH", "7")
    assert settings.MAX_QUEUE_DEPTH == 7


def test_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("REDIS_PORT", "six")
    with pytest.raises(ValueError, match="REDIS_PORT"):
        settings.REDIS_PORT  # noqa: B018


def test_unknown_setting_is_an_attribute_error():
    with pytest.raises(AttributeError):
        settings.NOT_A_SETTING  # noqa: B018


def test_debug_only_when_flask_debug_is_1(monkeypatch):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    assert settings.debug() is False
    monkeypatch.setenv("FLASK_DEBUG", "true")
    assert settings.debug() is False
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert settings.debug() is True


def test_snapshot_overrides_and_explicit_environment(monkeypatch):
    monkeypatch.setenv("MAX_QUEUE_DEPTH", "5")
    assert settings.load().MAX_QUEUE_DEPTH == 5
    assert settings.load(MAX_QUEUE_DEPTH=9).MAX_QUEUE_DEPTH == 9
    assert settings.load({"REQUEST_TIMEOUT_S": "2"}).REQUEST_TIMEOUT_S == 2.0


def test_empty_optional_value_means_none(monkeypatch):
    monkeypatch.setenv("GUNICORN_ACCESSLOG", "")
    assert settings.GUNICORN_ACCESSLOG is None  # gunicorn: no access log
    monkeypatch.delenv("GUNICORN_ACCESSLOG")
    assert settings.GUNICORN_ACCESSLOG == "-"
    monkeypatch.setenv("REDIS_PORT", "")
    assert settings.REDIS_PORT == 6379  # not optional: empty means the default


def test_gunicorn_conf_reads_the_api_settings(monkeypatch):
    import runpy

    monkeypatch.setenv("REQUEST_TIMEOUT_S", "7")
    monkeypatch.setenv("GUNICORN_THREADS", "3")
    monkeypatch.setenv("PORT", "5123")
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent-not-created-at-import")
    conf = runpy.run_path(os.path.join(API_DIR, "gunicorn.conf.py"))
    assert (conf["bind"], conf["threads"], conf["timeout"], conf["graceful_timeout"]) == ("127.0.0.1:5123", 3, 37, 12)
    monkeypatch.setenv("GUNICORN_WORKERS", "two")
    with pytest.raises(settings.SettingsError, match="GUNICORN_WORKERS"):
        runpy.run_path(os.path.join(API_DIR, "gunicorn.conf.py"))
