"""pytest fixtures shared by the suites (loaded with `pytest_plugins = ["testkit.fixtures"]` in a conftest).

Tests that need the real converted ResNet50 (the `real_model_dir` fixture or the e2e `stack`) get the marker
`real_model`; `make test-unit` deselects them with `-m "not real_model"`.
"""

from __future__ import annotations

import pytest
from resnet_common.repository_layout import CARD_NAME

from testkit.paths import converted_model_dir
from testkit.redis_server import RedisServer

REAL_MODEL_FIXTURES = {"real_model_dir", "stack", "make_stack"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_model: needs the converted ResNet50 (skipped by `make test-unit`)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_model)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server on a free port for the whole session; tests flush it (see `r`)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_factory(tmp_path):
    """Fresh servers a test owns (e.g. to stop and restart one)."""
    servers: list[RedisServer] = []

    def make() -> RedisServer:
        servers.append(RedisServer(tmp_path / f"redis{len(servers)}").start())
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def r(redis_server):
    """A client of the session's redis-server, flushed before and after the test."""
    client = redis_server.client()
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture(scope="session")
def real_model_dir() -> str:
    """The converted ResNet50 (`make test` converts it first); skips when there is none."""
    path = converted_model_dir()
    if not (path / CARD_NAME).exists():
        pytest.skip(f"no converted model in {path}: run `make test` (it converts first)")
    return str(path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A folder with the tiny stand-in model and its card (testkit/tiny_model.py)."""
    from testkit.tiny_model import make_tiny_model_dir

    return str(make_tiny_model_dir(tmp_path_factory.mktemp("tiny-model")))
