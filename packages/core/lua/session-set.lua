--[[
  session_set: creates the session of an hpk after a successful /prove, replacing any previous one
  at once (docs/PROTOCOL.md §4.0, §4.3), and records the /prove's two nonces in the hpk's
  command-nonce replay cache, so that neither can serve again as a /command nonce (§3.2). The
  identity public key is never stored.

  KEYS[1]  session HASH   key (precomputed shared key, b64), apk (a_sess_pk, b64), exp (ms)
                          ({hpk} slot, beside the mailbox)
  KEYS[2]  STRING         the outer nonce's record in the hpk's replay cache ({hpk} slot)
  KEYS[3]  STRING         the inner nonce's record in the hpk's replay cache ({hpk} slot)
  ARGV[1]  shared key (b64)
  ARGV[2]  a_sess_pk (b64)
  ARGV[3]  absolute expiry (ms) = now + sessionTtlSec
  ARGV[4]  now (ms), the service clock
  ARGV[5]  Redis TTL margin (ms)
  ARGV[6]  replay-cache lifetime (s)

  Returns  1
]]
local exp = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'key', ARGV[1], 'apk', ARGV[2], 'exp', ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.max(exp - now, 0) + tonumber(ARGV[5]))
redis.call('SET', KEYS[2], '1', 'EX', ARGV[6])
redis.call('SET', KEYS[3], '1', 'EX', ARGV[6])
return 1
