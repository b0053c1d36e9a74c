--[[
  file_reap: the sweep job's step for one registry entry whose expiry has passed. An expired file
  (or an entry whose keys are already gone, e.g. by their Redis TTL) is dropped and its bytes come
  off the relay-wide total; a live file (refreshed since the entry was read) gets its registry
  expiry set back to the record's.

  KEYS[1..6]  rec, parts, chunks, registry exp, registry bytes, total: the file's keys and its
              bucket's registry, all in the bucket's slot (see include/file.lua)
  ARGV[1]     uploadID (b64)
  ARGV[2]     now (ms), the service clock

  Returns  {1, bytes}  dropped; `bytes` taken off the total
           {0, 0}      live: only the registry expiry was corrected
]]
-- @include file

local fk = file_keys(1)
local id = ARGV[1]
local exp = redis.call('HGET', fk.rec, 'exp')
if exp and tonumber(exp) > tonumber(ARGV[2]) then
  redis.call('ZADD', fk.reg_exp, exp, id)
  if not redis.call('HGET', fk.reg_bytes, id) then
    -- Cannot happen through these scripts; keep the entry complete if it ever does.
    local bytes = tonumber(redis.call('HGET', fk.rec, 'bytes')) or 0
    redis.call('HSET', fk.reg_bytes, id, int(bytes))
    if bytes ~= 0 then redis.call('INCRBY', fk.total, int(bytes)) end
  end
  return { 0, 0 }
end
local _, bytes = drop_file(fk, id)
return { 1, bytes }
