"""Response cache, read side: an identical request is answered from Redis without inference.

Identical means same image bytes, same model file, same preprocessing mode, same top_k, same explain flag: the
key is resnet_common.protocol.cache_key(model hash, request_digest() of the rest). Workers write the entries
(model/job_queue.py, bounded in bytes and by a TTL, see docs/queue-protocol.md); the API only looks them up, in the same round trip as the queue check. The
model's hash comes from the live workers' heartbeats, inside one Lua script: if they do not all serve the same
model file (a rollout in progress) or none is alive, nothing is served from the cache, so a new model never
serves an old answer. RESPONSE_CACHE=0 turns it off.
"""

import hashlib

# KEYS: none (the worker names come from the heartbeats). ARGV[1] heartbeats key, ARGV[2] alive cutoff (unix s),
# ARGV[3] worker key prefix, ARGV[4] cache key prefix, ARGV[5] request digest.
# Returns {"hit", value} | {"miss"} | {"no_model"} (no live worker, or live workers disagree on the model).
LOOKUP_LUA = """
local names = redis.call('ZRANGEBYSCORE', ARGV[1], ARGV[2], '+inf')
local model = nil
for _, name in ipairs(names) do
  local sha = redis.call('HGET', ARGV[3] .. name, 'model_sha256')
  if not sha or (model and sha ~= model) then return {'no_model'} end
  model = sha
end
if not model then return {'no_model'} end
local value = redis.call('GET', ARGV[4] .. model .. ':' .. ARGV[5])
if value then return {'hit', value} end
return {'miss'}
"""


def request_digest(image_sha256: str, preprocess: str, top_k: int, explain: bool = False) -> str:
    """Everything that decides the answer except the model: the job carries it; the worker adds its model."""
    text = f"{image_sha256}|{preprocess}|{int(top_k)}|{int(bool(explain))}"
    return hashlib.sha256(text.encode()).hexdigest()
