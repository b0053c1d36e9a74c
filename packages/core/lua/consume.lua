--[[
  consume: a successful /prove uses up its handshake (docs/PROTOCOL.md §4.3 "On success").

  KEYS[1]  handshake secrets HASH   ct, rt, pk, sk, exp          ({handshake id} slot)
  KEYS[2]  proven marker HASH       rt, exp                      ({handshake id} slot)
  ARGV[1]  relay token (b64) of the handshake the proof was checked against
  ARGV[2]  now (ms), the service clock
  ARGV[3]  Redis TTL margin (ms)

  Returns  1  consumed: the secrets are deleted and the marker {rt, exp} is set until the
              handshake's own expiry, so a repeated mint for it is refused
           0  the handshake is gone, expired or was replaced meanwhile (the caller answers 401)
]]
local rt = ARGV[1]
local now = tonumber(ARGV[2])
local margin = tonumber(ARGV[3])

local cur = redis.call('HMGET', KEYS[1], 'rt', 'exp')
if cur[1] ~= rt or not cur[2] or tonumber(cur[2]) <= now then
  return 0
end

redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'rt', rt, 'exp', cur[2])
redis.call('PEXPIRE', KEYS[2], math.max(tonumber(cur[2]) - now, 0) + margin)
return 1
