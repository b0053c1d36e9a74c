--[[
  Start a handshake, or reuse the live one (docs/PROTOCOL.md §4.1).
  DEVIATION D8: a repeat while the handshake lives returns the same relay token and never extends
  the lifetime. An expired record still waiting for its key TTL is replaced by a fresh one.

  KEYS[1]  handshake record key (hash: ct, rt, exp[, pk])
  ARGV[1]  now, ms since epoch (the service's clock; Lua never reads the time)
  ARGV[2]  client token, b64
  ARGV[3]  candidate relay token, b64 (used only when a new record is created)
  ARGV[4]  absolute expiry of a new record, ms since epoch
  ARGV[5]  key TTL of a new record, ms (lifetime plus a clean-up margin)

  Returns  the live record's relay token (b64)
]]
local rec = redis.call('HMGET', KEYS[1], 'rt', 'exp')
if rec[1] and rec[2] and tonumber(ARGV[1]) < tonumber(rec[2]) then
  return rec[1]
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'ct', ARGV[2], 'rt', ARGV[3], 'exp', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return ARGV[3]
