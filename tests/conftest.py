"""Fixtures for the end-to-end suite: the real stack on free ports, built from the converted model in MODEL_DIR."""

from __future__ import annotations

import os

import pytest

from testkit import TEST_ENV, Stack, converted_model_dir

pytest_plugins = ["testkit.fixtures"]

# tests/containers needs images built first: it runs from `make compose-test` (scripts/compose_test.sh).
collect_ignore = [] if os.environ.get("COMPOSE_TEST") else ["containers"]


def pytest_collection_modifyitems(config, items):
    model_dir = converted_model_dir()
    if not (model_dir / "model_card.json").exists():
        skip = pytest.mark.skip(reason=f"no converted model in {model_dir}: run `make test` (it converts first)")
        for item in items:
            if {"stack", "make_stack", "sup"} & set(getattr(item, "fixturenames", ())):
                item.add_marker(skip)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`make run` (nginx, gunicorn, one model worker, Redis) shared by the tests of a module that break nothing."""
    s = Stack(tmp_path_factory.mktemp("stack"), env=TEST_ENV, workers=1).start()
    yield s
    s.stop()


@pytest.fixture
def make_stack(tmp_path):
    """A fresh stack per test, for the fault tests that kill or stop its parts; workers=0: no model service."""
    stacks: list[Stack] = []

    def make(workers: int = 1, **env) -> Stack:
        stacks.append(
            Stack(tmp_path / f"stack{len(stacks)}", env=TEST_ENV | env, workers=workers or None, model=workers > 0)
        )
        return stacks[-1].start()

    yield make
    for s in stacks:
        s.stop()


@pytest.fixture(scope="module")
def triton_client(sup):
    """Triton's own HTTP client (tritonclient) on the module's stack `sup`, through nginx."""
    import tritonclient.http as triton

    c = triton.InferenceServerClient(sup.url.removeprefix("http://"), network_timeout=60, connection_timeout=10)
    yield c
    c.close()
