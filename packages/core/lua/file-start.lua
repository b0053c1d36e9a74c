--[[
  file_start: creates the file record of a startFileUpload (docs/PROTOCOL.md §5.7), or resets an
  existing one with this uploadID, discarding its chunks. The recipient's `file` message is written
  before, by mailbox-upload.lua; this runs only once that succeeded.

  KEYS[1..6]  rec, parts, chunks, registry exp, registry bytes, total: the file's keys and its
              bucket's registry, all in the bucket's slot (see include/file.lua)
  ARGV[1]     uploadID (b64)
  ARGV[2]     hpk_from (b64), the caller
  ARGV[3]     hpk_to (b64)
  ARGV[4]     file_size
  ARGV[5]     now (ms), the service clock
  ARGV[6]     absolute expiry (ms) = now + fileTtlSec
  ARGV[7]     Redis TTL margin (ms)

  Returns  1  created
           2  an existing record was reset (its chunks are gone and off the total)
]]
-- @include file

local fk = file_keys(1)
local id = ARGV[1]
local existed = drop_file(fk, id)
redis.call('HSET', fk.rec, 'from', ARGV[2], 'to', ARGV[3], 'size', ARGV[4], 'status', 'START',
  'bytes', 0, 'total', 0, 'exp', ARGV[6])
redis.call('ZADD', fk.reg_exp, ARGV[6], id)
redis.call('HSET', fk.reg_bytes, id, 0)
expire_file(fk, ARGV[6], ARGV[5], ARGV[7])
if existed then return 2 end
return 1
