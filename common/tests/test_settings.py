"""The settings loader both services use: typed fields read from the environment, errors that name the variable."""

from __future__ import annotations

import dataclasses
import enum
import types

import pytest

from resnet_common.settings import SettingsError, SettingsLoader, SharedSettings


class Engine(enum.StrEnum):
    FAST = "fast"
    EXACT = "exact"


@dataclasses.dataclass(frozen=True)
class Example(SharedSettings):
    BATCH_SIZE: int = 8
    WAIT_S: float = 1.0
    MERGE: bool = True
    NAME: str = ""
    SECRET: str | None = None
    ENGINE: Engine = Engine.FAST


@pytest.fixture
def loader() -> SettingsLoader[Example]:
    return SettingsLoader(Example, "example_settings")


def test_a_service_inherits_the_shared_fields_with_one_default_each(loader, monkeypatch):
    for name in loader.types:
        monkeypatch.delenv(name, raising=False)
    cfg = loader.load()
    assert (cfg.REDIS_HOST, cfg.REDIS_PORT, cfg.REDIS_DB, cfg.REDIS_PASSWORD) == ("localhost", 6379, 0, None)
    assert (cfg.REDIS_SENTINELS, cfg.REDIS_SENTINEL_MASTER, cfg.REDIS_SOCKET_TIMEOUT_S) == (None, "mymaster", 2.0)
    assert (cfg.HEARTBEAT_TTL_S, cfg.MAX_IMAGE_PIXELS, cfg.LOG_LEVEL) == (10.0, 40_000_000, "info")
    assert type(cfg.HEARTBEAT_TTL_S) is float and cfg.BATCH_SIZE == 8


def test_read_follows_the_environment_at_access_time(loader, monkeypatch):
    monkeypatch.setenv("BATCH_SIZE", "3")
    assert loader.read("BATCH_SIZE") == 3
    monkeypatch.setenv("BATCH_SIZE", "5")
    assert loader.read("BATCH_SIZE") == 5 and loader.load().BATCH_SIZE == 5
    monkeypatch.delenv("BATCH_SIZE")
    assert loader.read("BATCH_SIZE") == 8


def test_overrides_win_over_the_environment_and_strings_are_parsed(loader, monkeypatch):
    monkeypatch.setenv("BATCH_SIZE", "7")
    assert loader.load(BATCH_SIZE=9).BATCH_SIZE == 9
    assert loader.load(BATCH_SIZE="4").BATCH_SIZE == 4
    assert loader.load({"BATCH_SIZE": "3"}).BATCH_SIZE == 3  # an explicit environment instead of os.environ


def test_types_come_from_the_resolved_annotations(loader):
    cfg = loader.load({"WAIT_S": "2", "HEARTBEAT_TTL_S": "3", "REDIS_PORT": "6380"})
    assert (type(cfg.WAIT_S), type(cfg.HEARTBEAT_TTL_S), type(cfg.REDIS_PORT)) == (float, float, int)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.WAIT_S = 1.0  # type: ignore[misc]


def test_an_enum_field_takes_its_values_only(loader):
    assert loader.load({"ENGINE": "exact"}).ENGINE is Engine.EXACT
    assert loader.load(ENGINE=Engine.EXACT).ENGINE is Engine.EXACT
    with pytest.raises(
        SettingsError, match=r"ENGINE='EXACT' is not a valid Engine: expected one of \['fast', 'exact'\]"
    ):
        loader.load({"ENGINE": "EXACT"})


@pytest.mark.parametrize("raw, expected", [("1", True), ("yes", True), (" On ", True), ("0", False), ("off", False)])
def test_booleans(loader, raw, expected):
    assert loader.load({"MERGE": raw}).MERGE is expected


def test_empty_means_none_where_allowed_else_the_default(loader):
    cfg = loader.load({"SECRET": "", "REDIS_SENTINELS": "", "NAME": "", "BATCH_SIZE": ""})
    assert (cfg.SECRET, cfg.REDIS_SENTINELS, cfg.NAME, cfg.BATCH_SIZE) == (None, None, "", 8)


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("BATCH_SIZE", "eight", "BATCH_SIZE='eight' is not a valid int"),
        ("WAIT_S", "soon", "WAIT_S='soon' is not a valid float"),
        ("MERGE", "maybe", "MERGE='maybe' is not a valid bool"),
    ],
)
def test_a_bad_value_names_the_variable(loader, monkeypatch, name, raw, message):
    monkeypatch.setenv(name, raw)
    with pytest.raises(SettingsError, match=message):
        loader.load()
    with pytest.raises(SettingsError, match=message):
        loader.read(name)


def test_unknown_names_are_refused(loader):
    with pytest.raises(TypeError, match="BATCH_SIZ"):
        loader.load(BATCH_SIZ=2)
    with pytest.raises(AttributeError, match="example_settings.*NOT_A_SETTING"):
        loader.read("NOT_A_SETTING")


def test_a_module_bound_to_a_loader_reads_its_settings_as_attributes(loader, monkeypatch):
    """What api/settings.py and model/settings.py do: PEP 562 __getattr__ and __dir__ from the loader."""
    module = types.ModuleType("example_settings")
    module.__getattr__ = loader.read
    module.__dir__ = loader.module_dir(vars(module))
    monkeypatch.setenv("NAME", "worker-a")
    assert module.NAME == "worker-a" and module.REDIS_PORT == 6379
    assert {"NAME", "REDIS_PORT", "__getattr__"} <= set(dir(module))
    with pytest.raises(AttributeError):
        module.NOT_A_SETTING  # noqa: B018
