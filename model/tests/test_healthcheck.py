"""The model container's health check against a real Redis: healthy only when this host's workers are all warm."""

from __future__ import annotations

import socket

import pytest

import healthcheck
from heartbeat import Heartbeat

HOST = socket.gethostname()


def beat(r, make_cfg, name: str, ready: str, host: str = HOST) -> None:
    hb = Heartbeat(r, make_cfg(), name, {"threads": "1"})
    hb.info.update(host=host, ready=ready)
    hb.beat()


def test_counts_only_this_hosts_warm_workers(r, make_cfg):
    beat(r, make_cfg, "w-warm", "1")
    beat(r, make_cfg, "w-cold", "0")
    beat(r, make_cfg, "w-elsewhere", "1", host="another-container")
    assert healthcheck.ready_workers(r, HOST, ttl_s=10) == 1


def test_stale_heartbeats_do_not_count(r, make_cfg):
    beat(r, make_cfg, "w-old", "1")
    r.zadd("ml:heartbeats", {"w-old": 1.0})  # last beat long ago: the worker died
    assert healthcheck.ready_workers(r, HOST, ttl_s=10) == 0


def test_a_member_that_is_not_a_workers_name_is_skipped(r, make_cfg):
    beat(r, make_cfg, "w-warm", "1")
    r.zadd("ml:heartbeats", {b"\xff\xfe": 2e9})  # a hand edit: not UTF-8, so no worker of ours
    r.hset("ml:worker:w-warm", "host", b"\xff")  # nor is a host that is not UTF-8 this one
    assert healthcheck.ready_workers(r, HOST, ttl_s=10) == 0
    beat(r, make_cfg, "w-warm", "1")
    assert healthcheck.ready_workers(r, HOST, ttl_s=10) == 1


def test_a_status_key_holding_another_type_counts_that_worker_only_as_not_ready(r, make_cfg):
    beat(r, make_cfg, "w-warm", "1")
    beat(r, make_cfg, "w-edited", "1")
    r.delete("ml:worker:w-edited")
    r.set("ml:worker:w-edited", "a hand edit")
    assert healthcheck.ready_workers(r, HOST, ttl_s=10) == 1


@pytest.mark.parametrize("workers,warm,code", [(1, 1, 0), (2, 1, 1), (2, 2, 0), (1, 0, 1)])
def test_exit_code_needs_every_expected_worker(r, make_cfg, redis_server, monkeypatch, workers, warm, code):
    for i in range(warm):
        beat(r, make_cfg, f"w{i}", "1")
    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    monkeypatch.setenv("REDIS_PORT", str(redis_server.port))
    monkeypatch.setenv("WORKERS", str(workers))
    assert healthcheck.main() == code


def test_unreachable_redis_is_unhealthy(monkeypatch, redis_server):
    monkeypatch.setenv("REDIS_HOST", "127.0.0.1")
    monkeypatch.setenv("REDIS_PORT", "1")
    assert healthcheck.main() == 1
