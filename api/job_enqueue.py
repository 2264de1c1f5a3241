"""One round trip from a request's jobs to the queue: group, queue depth, response cache lookups and the XADDs.

A Lua script does, atomically: make sure the consumer group exists on the job stream (at id 0, so jobs queued
before any worker starts or after Redis lost its data are not skipped); read the queue depth (the shared stream's,
plus a version stream's); look each given request digest up in the response cache (the model is the one every
live worker serves, from their heartbeats: none, or two different ones during a rollout, means no lookup); then,
when depth + the jobs not answered from the cache fit in MAX_QUEUE_DEPTH, XADD those jobs, else queue none.
A script that enqueues must never be sent twice: callers run it on a client that does not retry.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import redis

from resnet_common import protocol

# ARGV: 1 shared stream, 2 job stream, 3 consumer group, 4 max queue depth, 5 heartbeats key, 6 alive cutoff
# (unix s), 7 worker key prefix, 8 cache key prefix, 9 number of jobs; then per job: its request digest ('' = not
# looked up), the number of field names and values that follow, and those.
# Returns {depth, 1 if the misses were queued else 0, per job {outcome, cached value | entry id | nil}} with
# outcome hit | miss | no_model (not looked up: no single live model) | none (no digest).
ENQUEUE_LUA = """
local shared, stream, group = ARGV[1], ARGV[2], ARGV[3]
redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
local depth = redis.call('XLEN', shared)
if stream ~= shared then depth = depth + redis.call('XLEN', stream) end
local model, resolved = false, false
local function served_model()
  if resolved then return model end
  resolved = true
  for _, name in ipairs(redis.call('ZRANGEBYSCORE', ARGV[5], ARGV[6], '+inf')) do
    local sha = redis.call('HGET', ARGV[7] .. name, 'model_sha256')
    if not sha or (model and sha ~= model) then model = false return model end
    model = sha
  end
  return model
end
local replies, misses, at = {}, {}, 10
for job = 1, tonumber(ARGV[9]) do
  local digest, count = ARGV[at], tonumber(ARGV[at + 1])
  local reply = {'none'}
  if digest ~= '' then
    local sha = served_model()
    if not sha then
      reply = {'no_model'}
    else
      local value = redis.call('GET', ARGV[8] .. sha .. ':' .. digest)
      if value then reply = {'hit', value} else reply = {'miss'} end
    end
  end
  if reply[1] ~= 'hit' then misses[#misses + 1] = {job, at + 2, count} end
  replies[job] = reply
  at = at + 2 + count
end
if #misses > 0 and depth + #misses > tonumber(ARGV[4]) then return {depth, 0, replies} end
for _, miss in ipairs(misses) do
  local fields = {}
  for i = miss[2], miss[2] + miss[3] - 1 do fields[#fields + 1] = ARGV[i] end
  replies[miss[1]][2] = redis.call('XADD', stream, '*', unpack(fields))
end
return {depth, 1, replies}
"""


class Enqueued(NamedTuple):
    depth: int  # unanswered jobs before these: the shared stream's plus the version stream's
    queued: bool  # False: the misses did not fit in the queue and nothing was added
    outcomes: list[str]  # per job: hit | miss | no_model | none
    cached: list[bytes | None]  # per job: the cache entry of a hit
    entry_ids: list[bytes | None]  # per job: the stream entry of a queued job


def enqueue(
    r: redis.Redis,
    stream: str,
    jobs: list[dict[str, Any]],
    digests: list[str | None],
    max_depth: int,
    heartbeat_ttl_s: float,
) -> Enqueued:
    """Run ENQUEUE_LUA for `jobs` (field dicts, XADDed as they are) on `r`, which must not retry."""
    args: list[Any] = [
        protocol.JOB_STREAM,
        stream,
        protocol.CONSUMER_GROUP,
        max_depth,
        protocol.HEARTBEATS_KEY,
        repr(time.time() - heartbeat_ttl_s),
        protocol.WORKER_KEY_PREFIX,
        protocol.CACHE_KEY_PREFIX,
        len(jobs),
    ]
    for fields, digest in zip(jobs, digests, strict=True):
        args += [digest or "", 2 * len(fields)]
        for name, value in fields.items():
            args += [name, value]
    depth, queued, replies = r.register_script(ENQUEUE_LUA)(args=args)
    outcomes = [reply[0].decode() for reply in replies]
    values = [reply[1] if len(reply) > 1 else None for reply in replies]
    return Enqueued(
        int(depth),
        bool(queued),
        outcomes,
        [value if outcome == "hit" else None for outcome, value in zip(outcomes, values)],
        [value if outcome != "hit" and queued else None for outcome, value in zip(outcomes, values)],
    )
