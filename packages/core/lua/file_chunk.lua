--[[
  file_chunk: stores one chunk of a file (PROTOCOL.md §5.8 checks 4–6 and effects), atomically per
  file: concurrent uploads of different parts leave a consistent record.

  KEYS[1..6]  rec, parts, chunks ({uploadID} slot), registry exp, registry bytes, total ({files}
              slot; see include/file.lua)
  ARGV[1]     uploadID (b64)
  ARGV[2]     caller hpk (b64)
  ARGV[3]     part (decimal integer ≥ 0)
  ARGV[4]     chunk nonce (b64), kept as sent
  ARGV[5]     last_chunk: "1" or "0"
  ARGV[6]     chunk bytes (binary; its length is the decoded size)
  ARGV[7]     now (ms), the service clock
  ARGV[8]     new absolute expiry (ms) = now + fileTtlSec (DEVIATION D18: the upload refreshes the
              whole file, record and chunks)
  ARGV[9]     Redis TTL margin (ms)
  ARGV[10]    maxFileBytesTotal (relay-wide limit on stored chunk bytes)

  Returns   1  stored (replacing an earlier part with this index, DEVIATION D14)
            0  unknown file: none, expired (then dropped) or the caller is not a party
           -1  part ≥ file_size (DEVIATION D16)
           -2  bytes_stored would exceed file_size + 16 × total_chunks (DEVIATION D16)
           -3  the relay-wide total would exceed maxFileBytesTotal
           Nothing changes unless the result is 1 (or 0 for an expired file, which is dropped).
]]
-- @include file

local fk = file_keys(1)
local id = ARGV[1]
local part = ARGV[3]
local chunk = ARGV[6]
local now = tonumber(ARGV[7])
local exp = ARGV[8]

local r = live_record(fk, id, ARGV[2], now, true)
if not r then return 0 end
local p = tonumber(part)
if p >= r.size then return -1 end

local size = string.len(chunk)
local old = redis.call('HGET', fk.parts, part)
local old_size = 0
if old then old_size = part_size(old) end
local bytes = r.bytes - old_size + size
local total_chunks = math.max(r.total, p + 1)
if bytes > r.size + 16 * total_chunks then return -2 end

local delta = size - old_size
if delta > 0 then
  local stored = tonumber(redis.call('GET', fk.total)) or 0
  if stored + delta > tonumber(ARGV[10]) then return -3 end
end

local status = 'UPLOADING'
if r.status == 'COMPLETE' or ARGV[5] == '1' then status = 'COMPLETE' end

redis.call('HSET', fk.chunks, part, chunk)
redis.call('HSET', fk.parts, part, int(size) .. '|' .. ARGV[4])
redis.call('HSET', fk.rec, 'status', status, 'bytes', int(bytes), 'total', int(total_chunks), 'exp', exp)
if delta ~= 0 then redis.call('INCRBY', fk.total, int(delta)) end
redis.call('HSET', fk.reg_bytes, id, int(bytes))
redis.call('ZADD', fk.reg_exp, exp, id)
expire_file(fk, exp, now, ARGV[9])
return 1
