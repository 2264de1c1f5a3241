"""The worker's settings are read when asked for (the loader itself, and the queue names: common/tests/)."""

from __future__ import annotations

import dataclasses

import pytest

import settings


def test_environment_is_read_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv("UPLOAD_FOLDER", str(tmp_path))
    monkeypatch.setenv("BATCH_SIZE", "3")
    monkeypatch.setenv("CLAIM_INTERVAL_S", "0.5")
    assert settings.UPLOAD_FOLDER == str(tmp_path)
    cfg = settings.load()
    assert (cfg.BATCH_SIZE, cfg.CLAIM_INTERVAL_S) == (3, 0.5)
    monkeypatch.setenv("BATCH_SIZE", "5")
    assert settings.load().BATCH_SIZE == 5


def test_defaults(monkeypatch):
    for name in settings.Settings.__dataclass_fields__:
        monkeypatch.delenv(name, raising=False)
    cfg = settings.load()
    assert (
        cfg.BATCH_SIZE,
        cfg.BATCH_WAIT_MS,
        cfg.CLAIM_IDLE_MS,
        cfg.MAX_DELIVERIES,
        cfg.RESULT_TTL_S,
        cfg.HEARTBEAT_TTL_S,
        cfg.ORT_SPIN,
        cfg.REDIS_PORT,
    ) == (8, 0, 5000, 3, 60, 10.0, "auto", 6379)
    assert cfg.MODEL_DIR == "" and cfg.MODEL_REPOSITORY.endswith("repository") and cfg.REDIS_PASSWORD is None


def test_explicit_values_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("BATCH_SIZE", "7")
    assert settings.load().BATCH_SIZE == 7 and settings.BATCH_SIZE == 7
    assert settings.load(BATCH_SIZE=9).BATCH_SIZE == 9
    assert settings.load(BATCH_SIZE="4").BATCH_SIZE == 4  # strings are parsed like the environment's
    assert settings.load({"BATCH_SIZE": "3"}).BATCH_SIZE == 3  # an explicit environment instead of os.environ


def test_snapshot_is_frozen_and_typed_from_resolved_annotations():
    cfg = settings.load({"CLAIM_INTERVAL_S": "2", "REDIS_PASSWORD": "", "WORKER_NAME": ""})
    assert type(cfg.CLAIM_INTERVAL_S) is float and cfg.CLAIM_INTERVAL_S == 2.0
    assert cfg.REDIS_PASSWORD is None and cfg.WORKER_NAME == ""  # empty: None where allowed, else the default
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.BATCH_SIZE = 1  # type: ignore[misc]


def test_unknown_override_is_refused():
    with pytest.raises(TypeError, match="BATCH_SIZ"):
        settings.load(BATCH_SIZ=2)


def test_bad_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("BATCH_SIZE", "eight")
    with pytest.raises(settings.SettingsError, match="BATCH_SIZE='eight' is not a valid int"):
        settings.load()


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError):
        settings.NOT_A_SETTING  # noqa: B018


def test_worker_names_are_unique_per_index():
    cfg = settings.load(WORKER_NAME="")
    assert settings.worker_name(cfg, 0) != settings.worker_name(cfg, 1)
    assert settings.worker_name(settings.load(WORKER_NAME="gpu-box"), 3) == "gpu-box-3"


def test_lease_period_stays_well_inside_the_claim_idle_time():
    assert settings.lease_period_s(settings.load(HEARTBEAT_INTERVAL_S=2.0, CLAIM_IDLE_MS=5000)) == 5 / 3
    assert settings.lease_period_s(settings.load(HEARTBEAT_INTERVAL_S=0.5, CLAIM_IDLE_MS=5000)) == 0.5
    assert settings.problems(settings.load(HEARTBEAT_INTERVAL_S=2.0, CLAIM_IDLE_MS=5000, HEARTBEAT_TTL_S=10)) == []


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"CLAIM_IDLE_MS": 0}, "CLAIM_IDLE_MS=0 must be positive"),
        ({"CLAIM_IDLE_MS": 20}, "shorter than three lease refresh periods"),
        ({"HEARTBEAT_INTERVAL_S": 10, "HEARTBEAT_TTL_S": 10}, "not below HEARTBEAT_TTL_S"),
        ({"HEARTBEAT_INTERVAL_S": 0}, "HEARTBEAT_INTERVAL_S=0 must be positive"),
        ({"HEALTH_STALL_S": 8}, "HEALTH_STALL_S=8 is not above the 8.0 s one pass of the worker loop may wait"),
    ],
)
def test_timing_problems_are_reported(overrides, match):
    assert any(match in p for p in settings.problems(settings.load(**{"HEARTBEAT_TTL_S": 10, **overrides})))
