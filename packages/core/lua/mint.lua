--[[
  mint: create-if-absent of a handshake's secrets (POST /internal/sessions; docs/DESIGN.md "Who owns
  which state"; docs/PROTOCOL.md §4.2 step 5 and DEVIATION D9).

  KEYS[1]  handshake secrets HASH   ct, rt, pk, sk, exp          ({handshake id} slot)
  KEYS[2]  proven marker HASH       rt, exp                      ({handshake id} slot)
  ARGV[1]  client token (b64)
  ARGV[2]  relay token (b64)
  ARGV[3]  candidate relay session public key (b64), used only when a record is created
  ARGV[4]  candidate relay session secret key (b64), used only when a record is created
  ARGV[5]  the handshake's absolute expiry (ms), from the gatekeeper
  ARGV[6]  now (ms), the service clock
  ARGV[7]  Redis TTL margin (ms) added to the remaining lifetime

  Returns  {'proven'}      the handshake with this relay token was already consumed by /prove
           {'ok', pk}      the live record's public key (an existing one for the same relay
                           token: idempotent; otherwise the candidate, now stored)

  A live record with a different relay token (the gatekeeper lost its record and started over) or
  an expired one is replaced. A proven marker for a different relay token does not block: the same
  client token may start a new handshake after a successful /prove (DEVIATION D8).
]]
local rt = ARGV[2]
local exp = tonumber(ARGV[5])
local now = tonumber(ARGV[6])
local margin = tonumber(ARGV[7])

local proven = redis.call('HMGET', KEYS[2], 'rt', 'exp')
if proven[1] == rt and proven[2] and tonumber(proven[2]) > now then
  return { 'proven' }
end

local cur = redis.call('HMGET', KEYS[1], 'rt', 'pk', 'exp')
if cur[1] == rt and cur[2] and cur[3] and tonumber(cur[3]) > now then
  return { 'ok', cur[2] }
end

redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'ct', ARGV[1], 'rt', rt, 'pk', ARGV[3], 'sk', ARGV[4], 'exp', ARGV[5])
redis.call('PEXPIRE', KEYS[1], math.max(exp - now, 0) + margin)
return { 'ok', ARGV[3] }
