"""The KEDA trigger's metric tracks the backlog, measured against a real redis-server with the real protocol.

The ScaledObject (deploy/k8s/base/model-scaledobject.yaml) is read as shipped and its metric computed the way
KEDA's redis-streams scaler does: no consumerGroup → XLEN; consumerGroup → XPENDING count (or the group's lag
with lagCount). N jobs queued with no worker must read N, a killed worker's unanswered jobs must still count,
and a drained queue must read 0. The scaling modifier's formula is evaluated over the triggers' metrics by name,
as KEDA does, to check that a backlog split between the streams gets the replicas the whole backlog needs.
"""

from __future__ import annotations

import ast
import math
import os
import time

import redis
import yaml

from resnet_common import protocol
from helpers import enqueue, photo
from job_queue import JobQueue, connect

SCALED_OBJECT = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "k8s", "base", "model-scaledobject.yaml")


def scaled_object() -> dict:
    with open(SCALED_OBJECT) as fh:
        return yaml.safe_load(fh)


def trigger_metadata(stream: str = protocol.JOB_STREAM) -> dict:
    """The metadata of the shipped trigger on `stream`."""
    [trigger] = [t for t in scaled_object()["spec"]["triggers"] if t["metadata"]["stream"] == stream]
    assert trigger["type"] == "redis-streams"
    return trigger["metadata"]


def keda_metric(r: redis.Redis, meta: dict) -> int:
    """What KEDA's redis-streams scaler reads for this trigger metadata."""
    stream = meta["stream"]
    if "consumerGroup" not in meta:
        return r.xlen(stream)
    if "lagCount" in meta:
        return group_lag(r, stream, meta["consumerGroup"])
    return r.xpending(stream, meta["consumerGroup"])["pending"]


def composite_metric(r: redis.Redis, so: dict) -> int:
    """The scaling modifier's formula over the triggers' metrics, by trigger name. Only sums of names are
    evaluated here: any other part of a formula fails the test rather than being guessed at."""
    values = {t["name"]: keda_metric(r, t["metadata"]) for t in so["spec"]["triggers"]}

    def value(node: ast.expr) -> int:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return value(node.left) + value(node.right)
        if isinstance(node, ast.Name):
            return values[node.id]
        raise AssertionError(f"a formula part this test does not evaluate: {ast.dump(node)}")

    return value(ast.parse(so["spec"]["advanced"]["scalingModifiers"]["formula"], mode="eval").body)


def group_lag(r: redis.Redis, stream: str, group: str) -> int:
    [info] = [g for g in r.xinfo_groups(stream) if g["name"].decode() == group]
    return int(info["lag"] or 0)


def create_group(r: redis.Redis) -> None:
    """As the API does before its first XADD (job_client._prepare)."""
    r.xgroup_create(protocol.JOB_STREAM, protocol.CONSUMER_GROUP, id="0", mkstream=True)


def test_stream_length_counts_queued_and_orphaned_jobs_and_reads_zero_when_drained(r, make_cfg, make_worker):
    meta = trigger_metadata()
    assert meta["stream"] == protocol.JOB_STREAM and "consumerGroup" not in meta and "streamLength" in meta
    create_group(r)
    image, n = photo(), 12
    for _ in range(n):
        enqueue(r, image)
    # No worker at all: the metric sees every job. (XPENDING, the consumerGroup flavour, would read 0 here.)
    assert keda_metric(r, meta) == n
    assert keda_metric(r, {**meta, "consumerGroup": protocol.CONSUMER_GROUP}) == 0

    # A worker takes 5 and is killed before answering: those stay pending and must still count.
    dead = JobQueue(connect(make_cfg(), 100), make_cfg(), "killed-worker")
    assert len(dead.read(5, None)) == 5
    assert keda_metric(r, meta) == n
    assert r.xpending(protocol.JOB_STREAM, protocol.CONSUMER_GROUP)["pending"] == 5
    # The lag flavour leaves the killed worker's jobs out: it cannot see that backlog.
    assert group_lag(r, protocol.JOB_STREAM, protocol.CONSUMER_GROUP) == n - 5

    worker = make_worker("live-worker", CLAIM_IDLE_MS=300, CLAIM_INTERVAL_S=0.05)
    # A live worker drains the queue (and reclaims the orphans after CLAIM_IDLE_MS): the metric falls to 0.
    deadline = time.monotonic() + 30
    while keda_metric(r, meta) and time.monotonic() < deadline:
        worker.step(block=False)
        time.sleep(0.02)
    assert keda_metric(r, meta) == 0
    assert r.xpending(protocol.JOB_STREAM, protocol.CONSUMER_GROUP)["pending"] == 0
    assert worker.jobs == n  # every job answered once, the reclaimed 5 included


def test_jobs_that_name_the_served_version_are_seen_by_their_own_trigger(r, make_worker):
    """Requests that name the version a baked-in model is served as wait in that version's stream, which the
    shared stream's trigger cannot see; the second trigger does, and a worker serving that model drains it."""
    shared, named = trigger_metadata(), trigger_metadata(protocol.version_stream(protocol.DEFAULT_VERSION))
    create_group(r)
    n = 6
    for _ in range(n):
        enqueue(r, photo(), stream=named["stream"])
    assert keda_metric(r, shared) == 0 and keda_metric(r, named) == n
    worker = make_worker("baked-model-worker")
    deadline = time.monotonic() + 30
    while keda_metric(r, named) and time.monotonic() < deadline:
        worker.step(block=False)
    assert keda_metric(r, named) == 0 and worker.jobs == n


def test_a_backlog_split_between_the_streams_gets_the_replicas_of_the_whole_backlog(r):
    """Without the modifier KEDA follows the larger trigger: 6 + 6 jobs would ask for ceil(6 / 8) = 1 replica."""
    so = scaled_object()
    shared, named = trigger_metadata(), trigger_metadata(protocol.version_stream(protocol.DEFAULT_VERSION))
    create_group(r)
    for stream in (shared["stream"], named["stream"]):
        for _ in range(6):
            enqueue(r, photo(), stream=stream)
    modifier = so["spec"]["advanced"]["scalingModifiers"]
    assert modifier.get("metricType", "AverageValue") == "AverageValue"  # replicas = ceil(metric / target)
    metric = composite_metric(r, so)
    assert metric == 12 and math.ceil(metric / int(modifier["target"])) == 2
    assert max(math.ceil(keda_metric(r, m) / int(m["streamLength"])) for m in (shared, named)) == 1
