--[[
  file_download: one stored chunk of a live file for one of its parties (docs/PROTOCOL.md §5.10).
  Reads only.

  KEYS[1]  rec HASH     ({uploadID} slot)
  KEYS[2]  parts HASH
  KEYS[3]  chunks HASH
  ARGV[1]  caller hpk (b64)
  ARGV[2]  part (decimal integer ≥ 0)
  ARGV[3]  now (ms), the service clock

  Returns  {1, chunk nonce (b64), chunk bytes}
           {0}   unknown file: none, expired, or the caller is not a party
           {-1}  the file is known but has no part with this index
]]
local r = redis.call('HMGET', KEYS[1], 'from', 'to', 'exp')
if not r[1] or not r[3] or tonumber(r[3]) <= tonumber(ARGV[3]) then return { 0 } end
if ARGV[1] ~= r[1] and ARGV[1] ~= r[2] then return { 0 } end
local meta = redis.call('HGET', KEYS[2], ARGV[2])
local chunk = redis.call('HGET', KEYS[3], ARGV[2])
if not meta or not chunk then return { -1 } end
local s1 = string.find(meta, '|', 1, true)
return { 1, string.sub(meta, s1 + 1), chunk }
