"""The live version policy hash: read past anything that is not a version, written back whole."""

from __future__ import annotations

import redis

from resnet_common import model_control, protocol
from resnet_common.model_control import Control


def test_the_hash_is_read_and_anything_not_a_version_ignored():
    assert Control.from_hash({b"pin": b"2", b"unloaded": b"3,4,"}) == Control(2, frozenset({3, 4}))
    assert Control.from_hash({"pin": "2"}) == Control(2)  # a client that decodes its replies
    assert Control.from_hash({}) == Control()
    assert Control.from_hash({b"pin": b"x"}) == Control()
    weird = {b"pin": "²".encode(), b"unloaded": "٣,2,\xff".encode() + b"\xff"}  # not versions: ignored, never raised
    assert Control.from_hash(weird) == Control(None, frozenset({2}))


def test_pinning_and_unloading():
    policy = Control(None, frozenset({2, 3}))
    assert policy.pinned(3) == Control(3, frozenset({2}))  # a pinned version is no longer unloaded
    assert policy.pinned(3).unloading(3) == Control(None, frozenset({2, 3}))  # nor pinned once unloaded
    assert Control(4).unloading(10) == Control(4, frozenset({10}))  # another version's pin stays
    assert Control(None, frozenset({10, 9})).to_hash() == {"unloaded": "9,10"}  # numeric order
    assert Control(1).to_hash() == {"pin": "1"} and Control().to_hash() == {}


def test_write_replaces_the_whole_policy_and_an_empty_one_deletes_it(redis_server):
    r = redis.Redis(port=redis_server.port)
    key = protocol.model_control_key("m")
    r.hset(key, mapping={"pin": "1", "stray": "x"})
    model_control.write(r, "m", Control(None, frozenset({1})))
    assert r.hgetall(key) == {b"unloaded": b"1"}
    assert model_control.read(r, "m") == Control(None, frozenset({1}))
    model_control.write(r, "m", Control())
    assert not r.exists(key)
