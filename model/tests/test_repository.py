"""The repository's layout and version policy: which folders are versions, which one is served, what pruning keeps."""

from __future__ import annotations

import pytest

import repository
from repository import choose
from resnet_common.model_control import Control


def publish(root, version: int | str, card: bool = True):
    folder = root / "resnet50" / str(version)
    folder.mkdir(parents=True)
    if card:
        (folder / "model_card.json").write_text("{}")
    return folder


def test_versions_are_numeric_folders_with_a_card(tmp_path):
    for v in (2, 10, 1):
        publish(tmp_path, v)
    publish(tmp_path, 11, card=False)  # a folder without its card is not a version (yet)
    publish(tmp_path, ".tmp-abc")  # a publication in progress
    publish(tmp_path, "latest")
    assert repository.versions(tmp_path, "resnet50") == [1, 2, 10]
    assert repository.versions(tmp_path / "missing", "resnet50") == []


def test_policy_newest_then_pins_then_unloads():
    assert choose([1, 2, 3], None) == 3
    assert choose([1, 2, 3], env_pin=2) == 2
    assert choose([1, 2, 3], env_pin=2, control=Control(pin=1)) == 1  # the live pin wins over MODEL_VERSION
    assert choose([1, 2, 3], None, Control(unloaded=frozenset({3}))) == 2
    assert choose([1, 2, 3], None, Control(pin=3, unloaded=frozenset({3}))) == 3  # an explicit pin is obeyed
    assert choose([1, 2], env_pin=7) == 2  # a pin to a missing version never stops serving
    assert choose([1], None, Control(unloaded=frozenset({1}))) is None
    assert choose([], None) is None


def test_env_pin_must_be_a_number():
    assert repository.parse_env_pin("") is None and repository.parse_env_pin(" 3 ") == 3
    with pytest.raises(ValueError, match="MODEL_VERSION"):
        repository.parse_env_pin("latest")
    with pytest.raises(ValueError, match="MODEL_VERSION"):
        repository.parse_env_pin("²")


def test_prune_keeps_the_newest_and_the_served_and_nothing_when_unsure(tmp_path):
    for v in range(1, 6):
        publish(tmp_path, v)
    assert repository.prune(tmp_path, "resnet50", keep=2, in_use=None) == []  # Redis did not answer: keep all
    assert repository.versions(tmp_path, "resnet50") == [1, 2, 3, 4, 5]
    assert repository.prune(tmp_path, "resnet50", keep=2, in_use={2}) == [1, 3]
    assert repository.versions(tmp_path, "resnet50") == [2, 4, 5]
    assert not [p for p in (tmp_path / "resnet50").iterdir() if p.name.startswith(".")]


def test_served_versions_come_from_live_heartbeats(r):
    import time

    from resnet_common import protocol

    r.zadd(protocol.HEARTBEATS_KEY, {"a": time.time(), "b": time.time(), "old": time.time() - 60})
    r.zadd(protocol.HEARTBEATS_KEY, {b"\xff": time.time()})  # not a worker's name: skipped, not "unsure"
    r.hset(protocol.worker_key("a"), "model_version", "2")
    r.hset(protocol.worker_key("b"), "model_version", "3")
    r.hset(protocol.worker_key("old"), "model_version", "1")
    assert repository.served_versions(r, ttl_s=10) == {2, 3}
    r.delete(protocol.worker_key("b"))
    r.set(protocol.worker_key("b"), "a hand edit")  # live, serving a version nobody can read: unsure
    assert repository.served_versions(r, ttl_s=10) is None
    import redis

    assert repository.served_versions(redis.Redis(port=1, socket_timeout=0.5), ttl_s=10) is None
