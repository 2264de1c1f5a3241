"""Fixtures for the end-to-end suite: the real stack on free ports, built from the converted model in MODEL_DIR."""

from __future__ import annotations

import os

import pytest

from testkit.stack import MODEL_DIR, Stack

pytest_plugins = ["testkit.fixtures"]

# tests/containers needs images built first: it runs from `make compose-test` (scripts/compose_test.sh).
collect_ignore = [] if os.environ.get("COMPOSE_TEST") else ["containers"]


def pytest_collection_modifyitems(config, items):
    if not (MODEL_DIR / "model_card.json").exists():
        skip = pytest.mark.skip(reason=f"no converted model in {MODEL_DIR}: run `make test` (it converts first)")
        for item in items:
            if {"stack", "make_stack", "sup"} & set(getattr(item, "fixturenames", ())):
                item.add_marker(skip)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One worker and gunicorn shared by the tests of a module that do not break anything."""
    s = Stack(tmp_path_factory.mktemp("stack"))
    try:
        s.start(workers=1)
    except Exception:
        print(s.logs())
        s.stop()
        raise
    yield s
    s.stop()


@pytest.fixture
def make_stack(tmp_path):
    """A fresh stack per test, for the fault tests that kill or stop its parts."""
    stacks: list[Stack] = []

    def make(workers: int = 1, wait_workers: bool = True, **env) -> Stack:
        s = Stack(tmp_path / f"stack{len(stacks)}", env_overrides=env)
        stacks.append(s)
        try:
            s.start(workers=workers, wait_workers=wait_workers)
        except Exception:
            print(s.logs())
            raise
        return s

    yield make
    for s in stacks:
        s.stop()
