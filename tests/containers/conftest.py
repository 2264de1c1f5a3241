"""The compose stack for tests/containers: built by scripts/compose_test.sh, started once per module."""

from __future__ import annotations

import os

import pytest

from testkit.compose_stack import ComposeStack

PROJECT = os.environ.get("COMPOSE_PROJECT_NAME", "resnet-compose-test")


@pytest.fixture(scope="module")
def compose():
    """Redis, the API and two model containers at `cpus: 1` each; always taken down with its volumes."""
    if os.environ.get("COMPOSE_ENGINE_UNAVAILABLE"):
        pytest.skip(f"no Docker engine can run here: {os.environ['COMPOSE_ENGINE_UNAVAILABLE']}")
    # The tests' clients all reach nginx from one address (the bridge's gateway): the per-client bound is raised
    # explicitly above their concurrency, or it, not the service, would be what they measure.
    stack = ComposeStack(PROJECT, PER_CLIENT_INFLIGHT="64")
    stack.down()  # leftovers of an interrupted run
    try:
        stack.up(models=2)
    except Exception:
        print(stack.logs())
        stack.down()
        raise
    yield stack
    stack.down()
