"""Which keys hold another type of value than expected, against a real redis-server."""

from __future__ import annotations

import redis

from resnet_common import key_types


def test_wrong_types_names_each_key_of_another_type_and_not_the_absent_ones(redis_server):
    r = redis.Redis(port=redis_server.port)
    r.flushdb()
    r.xadd("a-stream", {"f": "v"})
    r.set("a-string", "x")
    r.hset("a-hash", "f", "v")
    found = key_types.wrong_types(r, ["a-stream", "a-string", "a-hash", "absent"], "stream")
    assert found == {"a-string": "string", "a-hash": "hash"}
    assert key_types.wrong_types(r, ["a-hash", "absent"], "hash") == {}


def test_a_wrongtype_error_is_told_from_others(redis_server):
    r = redis.Redis(port=redis_server.port)
    r.flushdb()
    r.set("a-string", "x")
    try:
        r.xlen("a-string")
    except redis.ResponseError as exc:
        assert key_types.is_wrong_type(exc)
    pipe = r.pipeline(transaction=False).xlen("a-string")
    assert key_types.is_wrong_type(pipe.execute(raise_on_error=False)[0])  # as redis-py quotes it in a pipeline
    assert not key_types.is_wrong_type(redis.ResponseError("BUSYGROUP Consumer Group name already exists"))
