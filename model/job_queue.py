"""The worker's side of the Redis Streams protocol (docs/queue-protocol.md): read, reclaim, answer, drop.

Delivery is at-least-once: an entry stays in the group's pending list until its answer is written in the
same MULTI transaction that acknowledges and deletes it, so a worker dying mid-batch loses nothing.

A worker reads two streams in one XREADGROUP: the shared ml:jobs, and the stream of the model version it serves
(ml:jobs:v<N>), where the API puts the jobs of requests that named that version. Each job is acknowledged on the
stream it came from.

One of those keys holding another type of value (a hand edit, a stray client) fails every command that names it,
the XREADGROUP of both streams included. The worker moves that value out of the way (key_types.move_aside) and reads
on: the group is recreated on a fresh stream. Where Redis refuses the move, the stream is set aside for
WRONG_TYPE_RETRY_S and the other is served meanwhile; the API answers the requests bound for it 503 at once (its XLEN
fails), so nobody waits for a timeout.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from resnet_common import protocol
from resnet_common import bounded_store, key_types, redis_conn
from jobs import Job, parse_job, text
from settings import Settings, redis_timeout_s

log = logging.getLogger(__name__)
T = TypeVar("T")
DEADLETTER_MAXLEN = 10_000
STOP_POLL_MS = 100  # with a stop event, the batch-wait top-up blocks at most this long per read
GROUP_ATTEMPTS = 3  # runs of a group command, with the group recreated between them (_grouped)
WRONG_TYPE_RETRY_S = 5.0  # a stream key found holding another type of value is tried again after this long

# Lease refresh, atomically: of the given entry ids, keep those still pending *for this consumer* and reset their
# idle time with XCLAIM <min-idle 0> JUSTID (JUSTID: the delivery counter is not raised). XCLAIM alone would
# change ownership, so min-idle 0 without the XPENDING check could steal back an entry another worker has
# already claimed (if this worker stalled past CLAIM_IDLE_MS); inside one script nothing can claim it between the
# check and the refresh. Acked entries are no longer pending, so a refresh racing an answer never revives one.
# KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3..] entry ids. Returns the ids refreshed.
_REFRESH_LUA = """
local owned = {}
for i = 3, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) > 0 then
    owned[#owned + 1] = ARGV[i]
  end
end
if #owned > 0 then
  owned[#owned + 1] = 'JUSTID'
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(owned))
  owned[#owned] = nil
end
return owned
"""


# This worker's fair share of what waits, the one definition of it: ceil(unanswered / live workers), at most the
# count and at least 1; the count itself with ARGV[5] "0" (BATCH_SHARE=0), one live worker, nothing waiting, or a
# heartbeat set that cannot be counted (pcall: the heartbeat thread reports that key, jobs keep being served). A
# stream of another type fails the script with WRONGTYPE (the caller's _on_streams sets it aside). KEYS: the
# streams read (the version's first), then the heartbeat set; ARGV[1] group, ARGV[2] consumer, ARGV[3] count,
# ARGV[4] oldest live heartbeat, ARGV[5] "1" to share. Leaves `count` and `streams` for what follows it.
_SHARE_LUA = """
local streams = #KEYS - 1
local count = tonumber(ARGV[3])
if ARGV[5] == '1' then
  local unanswered = 0
  for i = 1, streams do
    unanswered = unanswered + redis.call('XLEN', KEYS[i])
  end
  local counted, workers = pcall(redis.call, 'ZCOUNT', KEYS[#KEYS], ARGV[4], '+inf')
  if counted and workers > 1 and unanswered > 0 then
    count = math.max(1, math.min(count, math.ceil(unanswered / workers)))
  end
end
"""
_FAIR_SHARE_LUA = _SHARE_LUA + "return count\n"
# The next batch, read in the transaction that answers the last one: the share, read without blocking. Its answers
# are acked and deleted before it runs, so they are not counted as unanswered. Replies as XREADGROUP does (nil when
# nothing waits).
_READ_AHEAD_LUA = (
    _SHARE_LUA
    + """
local args = {'XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', count, 'STREAMS'}
for i = 1, streams do args[#args + 1] = KEYS[i] end
for i = 1, streams do args[#args + 1] = '>' end
return redis.call(unpack(args))
"""
)


def connect(cfg: Settings, block_ms: int) -> redis.Redis:
    """A client whose socket timeout outlasts the longest blocking read (BLOCK or the batch wait); retries are the
    worker loop's business.

    RESP2 pinned: the reply shapes parsed here (XREADGROUP as [[stream, entries]]) are RESP2's.
    """
    return redis_conn.make_client(
        cfg,
        socket_timeout=redis_timeout_s(cfg, block_ms),
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        protocol=2,
    )


def by_stream(entries: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(stream, entry id) pairs → the entry ids of each stream, in order."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for stream, entry_id in entries:
        grouped[stream].append(entry_id)
    return grouped


class JobQueue:
    """Consumer `name` of group ml:workers on stream ml:jobs and on the stream of the version it serves (`serve`).

    Every job it hands out (read or claimed) is *held* until it is answered, dropped or dead-lettered (or the
    caller `release()`s it after an error): `refresh_leases()` — called from a lease.LeaseKeeper thread — keeps
    held jobs' idle time low so that claim_stale in other workers never mistakes a slow batch for a dead one.
    """

    def __init__(
        self,
        client: redis.Redis,
        cfg: Settings,
        name: str,
        version: str = "",
        on_moved_aside: Callable[[], None] | None = None,
    ) -> None:
        self.r, self.cfg, self.name, self.version = client, cfg, name, version
        self.on_moved_aside = on_moved_aside  # called for each stream key moved aside (a metric)
        self._held: set[tuple[str, str]] = set()  # (stream, entry id)
        self._held_lock = threading.Lock()  # the worker thread adds/removes, the lease thread reads
        # Read beyond the count asked (XREADGROUP's COUNT is per stream): still held, handed out first next time.
        self._carried: list[Job] = []
        self._refresh = client.register_script(_REFRESH_LUA)
        self._cache_store = client.register_script(bounded_store.STORE_LUA)
        self._set_aside: dict[str, float] = {}  # stream → when (monotonic) to try it again

    @property
    def wanted(self) -> tuple[str, str]:
        """The shared stream, then the stream of the version served."""
        return protocol.JOB_STREAM, protocol.version_stream(self.version)

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams read now: those wanted, less any set aside for holding another type of value."""
        now = time.monotonic()
        return tuple(s for s in self.wanted if self._set_aside.get(s, 0.0) <= now)

    def _move_aside(self, streams: tuple[str, ...]) -> None:
        """After a first WRONGTYPE: move those of `streams` holding another type of value to their set-aside keys
        (key_types.move_aside checks each type itself). One Redis refuses to move is set aside on the next failure."""
        for stream in streams:
            try:
                moved = key_types.move_aside(self.r, stream, "stream")
            except redis.ResponseError as exc:
                if stream not in self._set_aside:
                    log.error("%s holds another type of value and could not be moved aside: %s", stream, exc)
                continue
            if moved and self.on_moved_aside:
                self.on_moved_aside()

    def _set_aside_wrong_types(self, streams: tuple[str, ...]) -> bool:
        """After a WRONGTYPE that moving did not cure: set aside those of `streams` whose key holds something else;
        True if any was."""
        wrong = key_types.wrong_types(self.r, streams, "stream")
        for stream, kind in wrong.items():
            if stream not in self._set_aside:
                log.error(
                    "%s holds a %s, not a stream: its jobs cannot be read until it is one again (tried every %g s); "
                    "the other stream is still served",
                    stream,
                    kind,
                    WRONG_TYPE_RETRY_S,
                )
            self._set_aside[stream] = time.monotonic() + WRONG_TYPE_RETRY_S
        return bool(wrong)

    def _on_streams(self, run: Callable[[tuple[str, ...]], T], empty: T) -> T:
        """`run(streams read now)`; on a WRONGTYPE, move the keys found holding another type out of the way and run
        again, or run without them when they cannot be moved (`empty` when none is left). A stream set aside that
        `run` succeeds on is back."""
        move = True  # once per call: a stray client rewriting the key at once gets it set aside, not a busy loop
        while streams := self.streams:
            try:
                result = self._grouped(run, streams)
            except redis.ResponseError as exc:
                if not key_types.is_wrong_type(exc):
                    raise
                if move:  # run again even if nothing is moved now: another worker may have moved it first
                    self._move_aside(streams)
                    move = False
                elif not self._set_aside_wrong_types(streams):
                    raise
                continue
            for stream in self._set_aside.keys() & set(streams):
                del self._set_aside[stream]
                log.info("%s is a stream again: reading it", stream)
            return result
        return empty

    def serve(self, version: str) -> None:
        """Read the stream of `version` from now on (a rolling switch, between two batches)."""
        if version != self.version:
            self.version = version
            self.ensure_group()

    # leases --------------------------------------------------------------------------------------------
    def _hold(self, jobs: list[Job]) -> list[Job]:
        with self._held_lock:
            self._held.update(job.key for job in jobs)
        return jobs

    def release(self, jobs: Iterable[Job] | None = None) -> None:
        """Stop refreshing these jobs (all but the carried ones when None): they were acked, or are left to be
        reclaimed."""
        with self._held_lock:
            if jobs is None:
                self._held = {job.key for job in self._carried}
            else:
                self._held.difference_update(job.key for job in jobs)

    def held(self) -> list[str]:
        """The entry ids held, sorted."""
        with self._held_lock:
            return sorted(entry_id for _, entry_id in self._held)

    def refresh_leases(self) -> int:
        """Reset the idle time of the held entries still owned by this consumer; returns how many were refreshed.

        Entries found owned by someone else (this worker stalled longer than CLAIM_IDLE_MS and another claimed
        them) are let go: never stolen back; this worker still answers them (at-least-once).
        """
        with self._held_lock:
            held = sorted(self._held)
        if not held:
            return 0
        kept = {
            (stream, text(i))
            for stream, ids in by_stream(held).items()
            for i in self._refresh(keys=[stream], args=[protocol.CONSUMER_GROUP, self.name, *ids])
        }
        with self._held_lock:
            lost = [h for h in held if h not in kept and h in self._held]  # not just answered meanwhile
            self._held.difference_update(lost)
        if lost:
            log.warning("lost the lease on %d job(s) (taken over by another worker after a stall): %s", len(lost), lost)
        return len(kept)

    def ensure_group(self) -> None:
        """Create the group (and the streams) from the start of each stream, so jobs added before are served."""

        def create(streams: tuple[str, ...]) -> None:
            for stream in streams:
                try:
                    self.r.xgroup_create(stream, protocol.CONSUMER_GROUP, id="0", mkstream=True)
                    log.info("created consumer group %s on %s", protocol.CONSUMER_GROUP, stream)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

        self._on_streams(create, None)

    def _grouped(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a group command; if the group is gone (Redis restarted without persistence, or a stream key deleted or
        replaced while a read waited on it), recreate it and run the command again, up to GROUP_ATTEMPTS times in
        all (a key deleted, then written again, interrupts the read twice)."""
        for _ in range(GROUP_ATTEMPTS - 1):
            try:
                return call(*args, **kwargs)
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    log.warning("consumer group missing (Redis restarted?); recreating it")
                elif "UNBLOCKED" in str(exc):
                    log.warning("a stream went away while this worker waited on it (%s); recreating its group", exc)
                else:
                    raise
                self.ensure_group()
        return call(*args, **kwargs)

    def _parse(self, stream: str, entries: list, now: float) -> list[Job]:
        jobs, orphans = [], []
        for entry_id, fields in entries:
            if not fields:  # deleted from the stream while pending: nothing to answer
                orphans.append(entry_id)
                continue
            job = parse_job(entry_id, fields, now, stream)
            if job.id:
                jobs.append(job)
            else:
                log.error("stream entry %s has no job id; dropping it", job.entry_id)
                orphans.append(entry_id)
        if orphans:
            self.r.pipeline(transaction=True).xack(stream, protocol.CONSUMER_GROUP, *orphans).xdel(
                stream, *orphans
            ).execute()
        return jobs

    def read(self, count: int, block_ms: int | None) -> list[Job]:
        """New entries for this consumer from both streams (the version's first), up to `count`; blocks up to
        `block_ms` (None: do not block). Jobs carried over from the last read come first and are not re-read."""
        if count <= 0:
            return []
        if self._carried:
            return self.take_carried(count)
        reply = self._on_streams(
            lambda streams: self.r.xreadgroup(
                protocol.CONSUMER_GROUP,
                self.name,
                {stream: ">" for stream in reversed(streams)},  # the version's first
                count=count,
                block=max(1, block_ms) if block_ms is not None else None,
            ),
            None,
        )
        if not self.streams:  # every stream set aside: wait as long as a blocking read would have
            time.sleep((block_ms or 0) / 1000)
        now = time.time()
        jobs = self._hold([job for stream, entries in reply or () for job in self._parse(text(stream), entries, now)])
        jobs, self._carried = jobs[:count], jobs[count:]
        return jobs

    def take_carried(self, count: int) -> list[Job]:
        """Up to `count` of the jobs carried over from the last read, reading nothing new (a worker stopping)."""
        jobs, self._carried = self._carried[:count], self._carried[count:]
        return jobs

    @property
    def carried(self) -> int:
        """How many jobs this worker holds beyond its batches, to be handed out first."""
        return len(self._carried)

    def fair_share(self, count: int) -> int:
        """At most this worker's share of the unanswered jobs (_SHARE_LUA): ceil(XLEN / live workers), at least 1.

        A greedy XREADGROUP COUNT BATCH_SIZE lets one worker take every job in flight while its peers idle (with
        8 clients and 2 workers at batch 8, one core sat idle between batches); sharing keeps all of them busy.
        One round trip; a single worker, or a queue deeper than the batch, reads `count` as before."""
        return self._on_streams(
            lambda streams: int(self.r.eval(_FAIR_SHARE_LUA, *self._share_args(streams, count))), count
        )

    def _share_args(self, streams: tuple[str, ...], count: int) -> list[Any]:
        """EVAL's numkeys, keys and arguments for _SHARE_LUA and what builds on it."""
        keys = (*reversed(streams), protocol.HEARTBEATS_KEY)
        cutoff = repr(time.time() - self.cfg.HEARTBEAT_TTL_S)
        share = "1" if self.cfg.BATCH_SHARE else "0"
        return [len(keys), *keys, protocol.CONSUMER_GROUP, self.name, count, cutoff, share]

    def read_batch(self, count: int, block_ms: int | None, stop: threading.Event | None = None) -> list[Job]:
        """What is waiting, up to `count` (and, with BATCH_SHARE=1, to this worker's fair share of it); with
        BATCH_WAIT_MS > 0, keeps topping up a partial batch until it is full or BATCH_WAIT_MS have passed since its
        first job was picked — or `stop` is set (SIGTERM): then the jobs in hand are returned at once (each top-up
        read blocks at most STOP_POLL_MS to notice it)."""
        if self.cfg.BATCH_SHARE and not self._carried:  # carried jobs were read as this worker's share
            count = self.fair_share(count)
        jobs = self.read(count, block_ms)
        wait_ms = self.cfg.BATCH_WAIT_MS
        if not jobs or wait_ms <= 0:
            return jobs
        deadline = jobs[0].picked + wait_ms / 1000
        while len(jobs) < count and not (stop and stop.is_set()):
            remaining_ms = int((deadline - time.time()) * 1000)
            if remaining_ms < 1:
                break
            jobs += self.read(count - len(jobs), min(remaining_ms, STOP_POLL_MS) if stop else remaining_ms)
        return jobs

    def claim_stale(self, count: int) -> tuple[list[Job], bool]:
        """Take over jobs idle longer than CLAIM_IDLE_MS (their worker died); returns (jobs, isolate).

        XPENDING (extended, IDLE filter) shows each stale job's delivery count before claiming, so a job that
        already failed twice (likely the poison that killed its workers) is claimed alone — `isolate` tells
        the caller to run it without neighbours — while jobs that failed once (a killed worker's batch) are
        batched; jobs at MAX_DELIVERIES are claimed too and come back with deliveries > MAX (dead letter).
        XCLAIM with the idle threshold makes concurrent claimers take each job at most once. Both streams this
        worker reads are looked at: a version's jobs are only ever taken over by a worker serving that version.
        """

        def stale(streams: tuple[str, ...]) -> dict[tuple[str, str], int]:
            delivered: dict[tuple[str, str], int] = {}
            for stream in streams:
                pending = self.r.xpending_range(
                    stream,
                    protocol.CONSUMER_GROUP,
                    min="-",
                    max="+",
                    count=max(100, 4 * count),
                    idle=self.cfg.CLAIM_IDLE_MS,
                )
                delivered |= {(stream, text(p["message_id"])): int(p["times_delivered"]) for p in pending}
            return delivered

        delivered = self._on_streams(stale, {})
        limit = self.cfg.MAX_DELIVERIES
        dead = [i for i, n in delivered.items() if n >= limit]
        once = [i for i, n in delivered.items() if n < min(2, limit)]
        suspects = [i for i, n in delivered.items() if min(2, limit) <= n < limit]
        isolate = not once and bool(suspects)
        jobs: list[Job] = []
        for stream, ids in by_stream(dead[:count] + (suspects[:1] if isolate else once[:count])).items():
            claimed = self.r.xclaim(stream, protocol.CONSUMER_GROUP, self.name, self.cfg.CLAIM_IDLE_MS, ids)
            jobs += self._hold(self._parse(stream, claimed, time.time()))
        for job in jobs:
            job.deliveries = delivered.get(job.key, 0) + 1
        return jobs, isolate and any(job.deliveries <= limit for job in jobs)

    def answer(self, answers: list[tuple[Job, dict[str, Any]]], model_sha256: str = "", read_ahead: int = 0) -> None:
        """Per job, atomically: RPUSH the result, EXPIRE it, XACK and XDEL the entry; a successful answer whose
        job asked for it is also stored in the response cache under this worker's model hash. With `read_ahead`,
        the same transaction reads this worker's share of the next jobs (up to that many per stream), carried
        into the next read: one round trip per batch instead of three (answer, share, read), during which the
        worker's core would sit idle."""
        if not answers:
            return
        pipe = self.r.pipeline(transaction=True)
        now = time.time()
        for job, result in answers:
            key = protocol.result_key(job.id)
            value = json.dumps(result)
            pipe.rpush(key, value).expire(key, self.cfg.RESULT_TTL_S)
            if job.cache and model_sha256 and result.get("ok") and self.cfg.CACHE_TTL_S > 0:
                pipe.eval(  # EVAL: a registered script in a pipeline costs a SCRIPT EXISTS round trip per batch
                    bounded_store.STORE_LUA,
                    4,
                    protocol.cache_key(model_sha256, job.cache),
                    protocol.CACHE_INDEX_KEY,
                    protocol.CACHE_SIZES_KEY,
                    protocol.CACHE_BYTES_KEY,
                    value,
                    self.cfg.CACHE_TTL_S,
                    repr(now),
                    self.cfg.CACHE_MAX_MB * 2**20,
                )
        self._acknowledge(pipe, [job for job, _ in answers], read_ahead)

    def drop(self, jobs: list[Job]) -> None:
        """Acknowledge and delete without an answer (expired: nobody waits for it)."""
        if jobs:
            self._acknowledge(self.r.pipeline(transaction=True), jobs)

    def dead_letter(self, job: Job, reason: str, result: dict[str, Any]) -> None:
        """Move a job aside (its fields minus the image, plus the reason) and answer it, in one transaction."""
        fields = {**job.fields, "reason": reason, "deliveries": str(job.deliveries), "worker": self.name}
        key = protocol.result_key(job.id)
        pipe = (
            self.r.pipeline(transaction=True)
            .xadd(protocol.DEADLETTER_STREAM, fields, maxlen=DEADLETTER_MAXLEN, approximate=True)
            .rpush(key, json.dumps(result))
            .expire(key, self.cfg.RESULT_TTL_S)
        )
        self._acknowledge(pipe, [job])

    def _acknowledge(self, pipe: redis.client.Pipeline, jobs: list[Job], read_ahead: int = 0) -> None:
        """XACK and XDEL `jobs` (on the stream each came from) at the end of `pipe`, and run it. The lease keeper
        stops holding them first: a refresh between the XACK and a later release would find them no longer
        pending while still held, and report leases lost for jobs this worker has just finished. `read_ahead`:
        see answer(); only when nothing is carried already. A read that fails (a stream of another type, the group
        gone) carries nothing: the next read meets the same fault and mends it (_on_streams, _grouped)."""
        self.release(jobs)
        for stream, ids in by_stream(job.key for job in jobs).items():
            pipe.xack(stream, protocol.CONSUMER_GROUP, *ids).xdel(stream, *ids)
        streams = self.streams if read_ahead > 0 and not self._carried else ()
        if not streams:
            pipe.execute()
            return
        pipe.eval(_READ_AHEAD_LUA, *self._share_args(streams, read_ahead))
        *replies, ahead = pipe.execute(raise_on_error=False)
        for reply in replies:  # the answers' own faults are the caller's, as without the read
            if isinstance(reply, Exception):
                raise reply
        if isinstance(ahead, Exception):
            log.debug("reading ahead failed (the next read retries): %s", ahead)
            return
        now = time.time()
        for stream, entries in ahead or ():
            fields = [(entry_id, dict(zip(kv[::2], kv[1::2])) if kv else None) for entry_id, kv in entries]
            self._carried += self._hold(self._parse(text(stream), fields, now))

    def prune_consumers(self) -> int:
        """Remove consumers of dead processes (no heartbeat for 3 TTLs) that have nothing pending.

        Idle time alone is no proof of death (Redis 7.0 does not reset it on empty reads), so a consumer is
        removed only when its heartbeat is gone too; names are unique per process, so it never reads again. A
        heartbeat set that cannot be read (another type of value at its key) proves nothing: none is removed.
        """
        now, removed = time.time(), 0
        consumers = self._on_streams(
            lambda streams: {s: self.r.xinfo_consumers(s, protocol.CONSUMER_GROUP) for s in streams}, {}
        )
        for stream, of_stream in consumers.items():
            for consumer in of_stream:
                name = text(consumer["name"])
                if name == self.name or int(consumer["pending"]) or int(consumer["idle"]) < self.cfg.CLAIM_IDLE_MS:
                    continue
                try:
                    beat = self.r.zscore(protocol.HEARTBEATS_KEY, name)
                except redis.ResponseError:
                    return removed
                if beat is None or beat < now - 3 * self.cfg.HEARTBEAT_TTL_S:
                    self.r.xgroup_delconsumer(stream, protocol.CONSUMER_GROUP, name)
                    removed += 1
        return removed
