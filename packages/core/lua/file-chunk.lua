--[[
  file_chunk: stores one chunk of a file (docs/PROTOCOL.md §5.8 checks 4–6 and effects), atomically per
  file: concurrent uploads of different parts leave a consistent record.

  The chunk bytes never pass through Lua (each copy of a 512000-byte argument into and out of the
  Lua VM cost Redis more than the plain HSET): store/files.ts sends one MULTI/EXEC of
    1. this script, mode "check":  the checks, and on success every effect but the bytes;
    2. HSET chunks <part> <chunk bytes>, from the client;
    3. this script, mode "settle": keeps the bytes of a stored chunk (and gives the chunks hash its
       TTL), or puts the chunks hash back as it was before step 2.
  EXEC runs the three back to back, so no other command sees the state between them. A refusal in
  step 1 leaves a marker for step 3 in the parts hash (field PENDING): "d" = part P had no bytes
  (step 3 deletes what step 2 wrote), "r" = its earlier bytes were saved in the chunks hash under
  field SAVED (step 3 puts them back). Both fields are gone once step 3 has run.

  KEYS[1..6]  rec, parts, chunks, registry exp, registry bytes, total: the file's keys and its
              bucket's registry, all in the bucket's slot (see include/file.lua)
  ARGV[1]     uploadID (b64)
  ARGV[2]     caller hpk (b64)
  ARGV[3]     part (decimal integer ≥ 0)
  ARGV[4]     chunk nonce (b64), kept as sent
  ARGV[5]     last_chunk: "1" or "0"
  ARGV[6]     chunk size in bytes (decimal; the decoded size of the bytes step 2 writes)
  ARGV[7]     now (ms), the service clock
  ARGV[8]     new absolute expiry (ms) = now + fileTtlSec (DEVIATION D18: the upload refreshes the
              whole file, record and chunks)
  ARGV[9]     Redis TTL margin (ms)
  ARGV[10]    the most bytes this bucket's total may reach: maxFileBytesTotal (the relay-wide
              limit on stored chunk bytes) less the other buckets' totals as last read (≤ 1 s old)
  ARGV[11]    mode: "check" (step 1) or "settle" (step 3)

  Returns (check)  1  stored (replacing an earlier part with this index, DEVIATION D14)
                   0  unknown file: none, expired (then dropped) or the caller is not a party
                  -1  part ≥ file_size (DEVIATION D16)
                  -2  bytes_stored would exceed file_size + 16 × total_chunks (DEVIATION D16)
                  -3  the relay-wide total would exceed maxFileBytesTotal (ARGV[10])
                  Nothing changes unless the result is 1 (or 0 for an expired file, which is
                  dropped), once step 3 has run.
  Returns (settle) 1  the bytes were kept; 0  they were taken back out
]]
-- @include file

local PENDING = '~pending'
local SAVED = '~saved'

local fk = file_keys(1)
local id = ARGV[1]
local part = ARGV[3]
local now = tonumber(ARGV[7])
local exp = ARGV[8]

if ARGV[11] == 'settle' then
  local mark = redis.call('HGET', fk.parts, PENDING)
  if not mark then
    -- Stored: step 2 may have created the chunks hash, so it gets the file's TTL here.
    local ttl = math.max(tonumber(exp) - now, 0) + tonumber(ARGV[9])
    redis.call('PEXPIRE', fk.chunks, int(ttl))
    return 1
  end
  redis.call('HDEL', fk.parts, PENDING)
  if mark == 'r' then
    redis.call('HSET', fk.chunks, part, redis.call('HGET', fk.chunks, SAVED))
    redis.call('HDEL', fk.chunks, SAVED)
  else
    -- An emptied hash is removed by Redis, so a hash that step 2 created leaves nothing behind.
    redis.call('HDEL', fk.chunks, part)
  end
  return 0
end

-- Refused: step 2 will overwrite part P of the chunks hash; note how step 3 undoes that.
local function refuse(code)
  local old = redis.call('HGET', fk.chunks, part)
  if old then
    redis.call('HSET', fk.chunks, SAVED, old)
    redis.call('HSET', fk.parts, PENDING, 'r')
  else
    redis.call('HSET', fk.parts, PENDING, 'd')
  end
  return code
end

local r = live_record(fk, id, ARGV[2], now, true)
if not r then return refuse(0) end
local p = tonumber(part)
if p >= r.size then return refuse(-1) end

local size = tonumber(ARGV[6])
local old = redis.call('HGET', fk.parts, part)
local old_size = 0
if old then old_size = part_size(old) end
local bytes = r.bytes - old_size + size
local total_chunks = math.max(r.total, p + 1)
if bytes > r.size + 16 * total_chunks then return refuse(-2) end

local delta = size - old_size
if delta > 0 then
  local stored = tonumber(redis.call('GET', fk.total)) or 0
  if stored + delta > tonumber(ARGV[10]) then return refuse(-3) end
end

local status = 'UPLOADING'
if r.status == 'COMPLETE' or ARGV[5] == '1' then status = 'COMPLETE' end

redis.call('HSET', fk.parts, part, int(size) .. '|' .. ARGV[4])
redis.call('HSET', fk.rec, 'status', status, 'bytes', int(bytes), 'total', int(total_chunks), 'exp', exp)
if delta ~= 0 then redis.call('INCRBY', fk.total, int(delta)) end
redis.call('HSET', fk.reg_bytes, id, int(bytes))
redis.call('ZADD', fk.reg_exp, exp, id)
expire_file(fk, exp, now, ARGV[9])
return 1
