--[[
  load_flush: one replica's periodic load report (src/load.ts), in one round trip: adds the
  requests it counted to the per-period counters that every core replica shares, and publishes its
  own figures (event-loop utilisation, latency p99) with a short lifetime, indexed by expiry so the
  aggregator finds the live replicas without SCAN. Every key carries the hash tag {load}.

  KEYS[1]      replica record STRING (JSON figures)
  KEYS[2]      replica index ZSET: replica id -> record expiry (ms)
  KEYS[2 + i]  counter HASH of the i-th period (fields `mints`, `commands`)
  ARGV[1]      now (ms), the service clock
  ARGV[2]      counter key TTL (ms)
  ARGV[3]      replica id; '' = counts only, the figures are not published this time
  ARGV[4]      record JSON
  ARGV[5]      record expiry (ms, absolute, service clock); readers skip it from then on
  ARGV[6]      TTL margin (ms): Redis keeps the record until expiry + margin (cleanup only)
  ARGV[5 + 2i] mints of the i-th period to add
  ARGV[6 + 2i] commands of the i-th period to add

  Returns  1
]]
local now = tonumber(ARGV[1])
local counter_ttl = ARGV[2]
for i = 3, #KEYS do
  local mints = tonumber(ARGV[2 * i + 1])
  local commands = tonumber(ARGV[2 * i + 2])
  if mints > 0 then redis.call('HINCRBY', KEYS[i], 'mints', mints) end
  if commands > 0 then redis.call('HINCRBY', KEYS[i], 'commands', commands) end
  redis.call('PEXPIRE', KEYS[i], counter_ttl)
end
if ARGV[3] ~= '' then
  local expiry = tonumber(ARGV[5])
  local margin = tonumber(ARGV[6])
  local ttl = math.max(expiry - now, 0) + margin
  redis.call('SET', KEYS[1], ARGV[4], 'PX', string.format('%d', ttl))
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
  -- Replicas that stopped reporting leave the index once their records are past cleanup too.
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('(%d', now - margin))
  redis.call('PEXPIRE', KEYS[2], string.format('%d', ttl))
end
return 1
