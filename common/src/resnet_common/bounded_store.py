"""A Redis write bounded in bytes, shared by the workers' response cache and the API's display store.

One Lua script, run atomically: KEYS[1] the entry, [2] an index zset (key -> time stored), [3] a sizes hash
(key -> bytes counted), [4] a byte counter; ARGV[1] the value, [2] TTL in seconds, [3] now (unix seconds), [4] the
most bytes kept. Entries older than the TTL are forgotten first, then the oldest until the new one fits; only the
keys of that index are ever deleted (nothing else in Redis is touched, whatever its own eviction policy). Returns 1
when stored, 0 when the value alone is larger than the bound.
"""

STORE_LUA = """
local key, index, sizes, total = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ttl, now, most = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function forget(k)
  local n = tonumber(redis.call('HGET', sizes, k) or '0')
  redis.call('DEL', k)
  redis.call('HDEL', sizes, k)
  redis.call('ZREM', index, k)
  redis.call('DECRBY', total, n)
end
for _, k in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now - ttl, 'LIMIT', 0, 64)) do forget(k) end
if redis.call('HEXISTS', sizes, key) == 1 then forget(key) end
local size = #ARGV[1] + #key + 96
if size > most then return 0 end
while tonumber(redis.call('GET', total) or '0') + size > most do
  local oldest = redis.call('ZRANGE', index, 0, 0)
  if #oldest == 0 then redis.call('SET', total, 0) break end
  forget(oldest[1])
end
redis.call('SET', key, ARGV[1], 'EX', ttl)
redis.call('ZADD', index, now, key)
redis.call('HSET', sizes, key, size)
redis.call('INCRBY', total, size)
return 1
"""
