--[[
  session_open: the authentication step of a /command in one atomic step of the {hpk} slot
  (docs/PROTOCOL.md §4.4 steps 3 and 5): the hpk's live session and, only when there is one, the
  command nonce recorded in that hpk's replay cache. A request with no live session writes nothing.
  Use never extends the session.

  KEYS[1]  session HASH   key, apk, exp                                 ({hpk} slot)
  KEYS[2]  STRING         the nonce's replay record, present = seen     ({hpk} slot)
  ARGV[1]  now (ms), the service clock
  ARGV[2]  replay-cache lifetime (s)

  Returns  {key, apk, 1}  a live session; the nonce was new and is now recorded
           {key, apk, 0}  a live session; the nonce is a replay (nothing written)
           1              no live session; the nonce is in the cache (a replay)
           0              no live session; the nonce is not in the cache
]]
local cur = redis.call('HMGET', KEYS[1], 'key', 'apk', 'exp')
if not cur[1] or not cur[2] or not cur[3] or tonumber(cur[3]) <= tonumber(ARGV[1]) then
  return redis.call('EXISTS', KEYS[2])
end
if redis.call('SET', KEYS[2], '1', 'EX', ARGV[2], 'NX') then
  return { cur[1], cur[2], 1 }
end
return { cur[1], cur[2], 0 }
