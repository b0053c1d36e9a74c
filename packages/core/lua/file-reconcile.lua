--[[
  file_reconcile: sets one bucket's total of stored chunk bytes to the sum of its registry's
  per-file byte counts, which the file scripts keep exact; a difference means the keyspace was
  changed behind the scripts' back. Skipped while the registry is larger than the limit, so the
  script stays short.

  KEYS[1]  registry bytes HASH   uploadID -> bytes        (the bucket's slot)
  KEYS[2]  the bucket's total STRING
  ARGV[1]  most registry entries to sum in one call

  Returns  {before, after}  the total before and after
           {-1, -1}         skipped (registry too large)
]]
local n = redis.call('HLEN', KEYS[1])
if n > tonumber(ARGV[1]) then return { -1, -1 } end
local sum = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do sum = sum + (tonumber(v) or 0) end
local before = tonumber(redis.call('GET', KEYS[2])) or 0
if before ~= sum then
  if sum == 0 then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], string.format('%d', sum)) end
end
return { before, sum }
