--[[
  session_get: the live session of an hpk (docs/PROTOCOL.md §4.4 step 5). Use never extends it.

  KEYS[1]  session HASH   key, apk, exp                           ({hpk} slot)
  ARGV[1]  now (ms), the service clock

  Returns  {key, apk}  while now < exp
           nil         no session, or it has expired
]]
local cur = redis.call('HMGET', KEYS[1], 'key', 'apk', 'exp')
if not cur[1] or not cur[2] or not cur[3] or tonumber(cur[3]) <= tonumber(ARGV[1]) then
  return false
end
return { cur[1], cur[2] }
