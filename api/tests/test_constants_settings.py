"""The Redis names are a contract with the model service; settings follow the environment at call time."""

import pytest

import constants
import settings


def test_queue_names_match_the_protocol():
    assert constants.JOB_STREAM == "ml:jobs"
    assert constants.CONSUMER_GROUP == "ml:workers"
    assert constants.result_key("abc") == "ml:result:abc"
    assert constants.DEADLETTER_STREAM == "ml:deadletter"
    assert constants.HEARTBEATS_KEY == "ml:heartbeats"
    assert constants.worker_key("host-1-0") == "ml:worker:host-1-0"
    assert (constants.ERROR_INVALID_IMAGE, constants.ERROR_INFERENCE_FAILED, constants.ERROR_DEAD_LETTER) == (
        "invalid_image", "inference_failed", "dead_letter")


def test_defaults(monkeypatch):
    for name in ("REDIS_HOST", "REDIS_PORT", "MAX_QUEUE_DEPTH", "REQUEST_TIMEOUT_S", "MAX_IMAGE_PIXELS",
                 "FEEDBACK_FILEPATH", "REDIS_PASSWORD"):
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
        settings.REDIS_PORT


def test_unknown_setting_is_an_attribute_error():
    with pytest.raises(AttributeError):
        settings.NOT_A_SETTING


def test_debug_only_when_flask_debug_is_1(monkeypatch):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    assert settings.debug() is False
    monkeypatch.setenv("FLASK_DEBUG", "true")
    assert settings.debug() is False
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert settings.debug() is True
