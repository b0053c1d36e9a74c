--[[
  Remember the relay session public key the core minted for a handshake (docs/PROTOCOL.md §4.2 step 5,
  DEVIATION D9), but only on the record it was minted for: the record must still exist, be live,
  and hold the same relay token. The key TTL is left as it is.

  KEYS[1]  handshake record key (hash: ct, rt, exp[, pk])
  ARGV[1]  relay token the mint was made with, b64
  ARGV[2]  relay session public key, b64
  ARGV[3]  now, ms since epoch

  Returns  1 when stored, 0 when the record is gone, expired or belongs to another relay token
]]
local rec = redis.call('HMGET', KEYS[1], 'rt', 'exp')
if rec[1] ~= ARGV[1] or not rec[2] or tonumber(ARGV[3]) >= tonumber(rec[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'pk', ARGV[2])
return 1
