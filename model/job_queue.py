"""The worker's side of the Redis Streams protocol (docs/queue-protocol.md): read, reclaim, answer, drop.

Delivery is at-least-once: an entry stays in the group's pending list until its answer is written in the
same MULTI transaction that acknowledges and deletes it, so a worker dying mid-batch loses nothing.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import constants as C
from jobs import Job, parse_job, text
from settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
DEADLETTER_MAXLEN = 10_000


def connect(cfg: Settings, block_ms: int) -> redis.Redis:
    """A client whose socket timeout outlasts the longest blocking read (BLOCK or the batch wait); retries are the
    worker loop's business.

    RESP2 pinned: the reply shapes parsed here (XREADGROUP as [[stream, entries]]) are RESP2's.
    """
    return redis.Redis(host=cfg.REDIS_HOST, port=cfg.REDIS_PORT, db=cfg.REDIS_DB, password=cfg.REDIS_PASSWORD,
                       socket_timeout=max(block_ms, cfg.BATCH_WAIT_MS) / 1000 + 5, socket_connect_timeout=2,
                       retry=Retry(NoBackoff(), 0), health_check_interval=0, protocol=2)


class JobQueue:
    """Consumer `name` of group ml:workers on stream ml:jobs."""

    def __init__(self, client: redis.Redis, cfg: Settings, name: str) -> None:
        self.r, self.cfg, self.name = client, cfg, name

    def ensure_group(self) -> None:
        """Create the group (and the stream) from the start of the stream, so jobs added before are served."""
        try:
            self.r.xgroup_create(C.JOB_STREAM, C.CONSUMER_GROUP, id="0", mkstream=True)
            log.info("created consumer group %s on %s", C.CONSUMER_GROUP, C.JOB_STREAM)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _grouped(self, call: Callable[[], T]) -> T:
        """Run a group command; if Redis lost the group (restart without persistence), recreate it once."""
        try:
            return call()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("consumer group missing (Redis restarted?); recreating it")
            self.ensure_group()
            return call()

    def _parse(self, entries: list, now: float) -> list[Job]:
        jobs, orphans = [], []
        for entry_id, fields in entries:
            if not fields:  # deleted from the stream while pending: nothing to answer
                orphans.append(entry_id)
                continue
            job = parse_job(entry_id, fields, self.cfg.TOP_K, now)
            if job.id:
                jobs.append(job)
            else:
                log.error("stream entry %s has no job id; dropping it", job.entry_id)
                orphans.append(entry_id)
        if orphans:
            self.r.pipeline(transaction=True).xack(C.JOB_STREAM, C.CONSUMER_GROUP, *orphans).xdel(
                C.JOB_STREAM, *orphans).execute()
        return jobs

    def read(self, count: int, block_ms: int | None) -> list[Job]:
        """New entries for this consumer, up to `count`; blocks up to `block_ms` (None: do not block)."""
        if count <= 0:
            return []
        reply = self._grouped(lambda: self.r.xreadgroup(
            C.CONSUMER_GROUP, self.name, {C.JOB_STREAM: ">"}, count=count,
            block=max(1, block_ms) if block_ms is not None else None))
        entries = reply[0][1] if reply else []
        return self._parse(entries, time.time())

    def read_batch(self, count: int, block_ms: int) -> list[Job]:
        """What is waiting, up to `count`; with BATCH_WAIT_MS > 0, keeps topping up a partial batch until it is
        full or BATCH_WAIT_MS have passed since its first job was picked."""
        jobs = self.read(count, block_ms)
        wait_ms = self.cfg.BATCH_WAIT_MS
        if not jobs or wait_ms <= 0:
            return jobs
        deadline = jobs[0].picked + wait_ms / 1000
        while len(jobs) < count:
            remaining_ms = int((deadline - time.time()) * 1000)
            if remaining_ms < 1:
                break
            jobs += self.read(count - len(jobs), remaining_ms)
        return jobs

    def claim_stale(self, count: int) -> tuple[list[Job], bool]:
        """Take over jobs idle longer than CLAIM_IDLE_MS (their worker died); returns (jobs, isolate).

        XPENDING (extended, IDLE filter) shows each stale job's delivery count before claiming, so a job that
        already failed twice (likely the poison that killed its workers) is claimed alone — `isolate` tells
        the caller to run it without neighbours — while jobs that failed once (a killed worker's batch) are
        batched; jobs at MAX_DELIVERIES are claimed too and come back with deliveries > MAX (dead letter).
        XCLAIM with the idle threshold makes concurrent claimers take each job at most once.
        """
        stale = self._grouped(lambda: self.r.xpending_range(
            C.JOB_STREAM, C.CONSUMER_GROUP, min="-", max="+", count=max(100, 4 * count),
            idle=self.cfg.CLAIM_IDLE_MS))
        delivered = {text(p["message_id"]): int(p["times_delivered"]) for p in stale}
        limit = self.cfg.MAX_DELIVERIES
        dead = [i for i, n in delivered.items() if n >= limit]
        once = [i for i, n in delivered.items() if n < min(2, limit)]
        suspects = [i for i, n in delivered.items() if min(2, limit) <= n < limit]
        isolate = not once and bool(suspects)
        chosen = dead[:count] + (suspects[:1] if isolate else once[:count])
        if not chosen:
            return [], False
        claimed = self.r.xclaim(C.JOB_STREAM, C.CONSUMER_GROUP, self.name, self.cfg.CLAIM_IDLE_MS, chosen)
        jobs = self._parse(claimed, time.time())
        for job in jobs:
            job.deliveries = delivered.get(job.entry_id, 0) + 1
        return jobs, isolate and any(job.deliveries <= limit for job in jobs)

    def answer(self, answers: list[tuple[Job, dict[str, Any]]]) -> None:
        """Per job, atomically: RPUSH the result, EXPIRE it, XACK and XDEL the entry."""
        if not answers:
            return
        pipe = self.r.pipeline(transaction=True)
        for job, result in answers:
            key = C.result_key(job.id)
            pipe.rpush(key, json.dumps(result)).expire(key, self.cfg.RESULT_TTL_S)
        ids = [job.entry_id for job, _ in answers]
        pipe.xack(C.JOB_STREAM, C.CONSUMER_GROUP, *ids).xdel(C.JOB_STREAM, *ids).execute()

    def drop(self, jobs: list[Job]) -> None:
        """Acknowledge and delete without an answer (expired: nobody waits for it)."""
        if jobs:
            ids = [job.entry_id for job in jobs]
            self.r.pipeline(transaction=True).xack(C.JOB_STREAM, C.CONSUMER_GROUP, *ids).xdel(
                C.JOB_STREAM, *ids).execute()

    def dead_letter(self, job: Job, reason: str, result: dict[str, Any]) -> None:
        """Move a job aside (its fields minus the image, plus the reason) and answer it, in one transaction."""
        fields = {**job.fields, "reason": reason, "deliveries": str(job.deliveries), "worker": self.name}
        key = C.result_key(job.id)
        (self.r.pipeline(transaction=True)
         .xadd(C.DEADLETTER_STREAM, fields, maxlen=DEADLETTER_MAXLEN, approximate=True)
         .rpush(key, json.dumps(result)).expire(key, self.cfg.RESULT_TTL_S)
         .xack(C.JOB_STREAM, C.CONSUMER_GROUP, job.entry_id).xdel(C.JOB_STREAM, job.entry_id).execute())

    def prune_consumers(self) -> int:
        """Remove consumers of dead processes (no heartbeat for 3 TTLs) that have nothing pending.

        Idle time alone is no proof of death (Redis 7.0 does not reset it on empty reads), so a consumer is
        removed only when its heartbeat is gone too; names are unique per process, so it never reads again.
        """
        now, removed = time.time(), 0
        for consumer in self._grouped(lambda: self.r.xinfo_consumers(C.JOB_STREAM, C.CONSUMER_GROUP)):
            name = text(consumer["name"])
            if name == self.name or int(consumer["pending"]) or int(consumer["idle"]) < self.cfg.CLAIM_IDLE_MS:
                continue
            beat = self.r.zscore(C.HEARTBEATS_KEY, name)
            if beat is None or beat < now - 3 * self.cfg.HEARTBEAT_TTL_S:
                self.r.xgroup_delconsumer(C.JOB_STREAM, C.CONSUMER_GROUP, name)
                removed += 1
        return removed
