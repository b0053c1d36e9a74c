--[[
  Take one token from a client's bucket (docs/PROTOCOL.md §7 throttling; DEVIATION D11: excess → 429).
  A token bucket of `burst` tokens refilled continuously at `rate` tokens per minute. The bucket is
  full when it does not exist. Clocks of different replicas may disagree a little: time never runs
  backwards for a bucket (a clock behind the stored one refills nothing).

  KEYS[1]  bucket key (hash: t = tokens left (decimal), ts = last refill, ms since epoch)
  ARGV[1]  now, ms since epoch (the service's clock; Lua never reads the time)
  ARGV[2]  burst: bucket size, ≥ 1
  ARGV[3]  rate: tokens per minute, ≥ 1
  ARGV[4]  key TTL, ms (time to refill a full bucket, plus a margin: then it is full anyway)

  Returns  0 when a token was taken; otherwise the ms until one is available (≥ 1), nothing stored
]]
local now = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local perMs = tonumber(ARGV[3]) / 60000
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = tokens + (now - ts) * perMs
  ts = now
end
if tokens > burst then tokens = burst end
if tokens < 1 then
  local wait = math.ceil((1 - tokens) / perMs)
  if wait < 1 then wait = 1 end
  return wait
end
redis.call('HSET', KEYS[1], 't', tostring(tokens - 1), 'ts', string.format('%d', ts))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 0
