--[[
  file_delete: deleteFile by either party (docs/PROTOCOL.md §5.11, DEVIATION D15): the record, every
  chunk and the registry entry go, for both parties at once. The `file` message in the recipient's
  mailbox stays.

  KEYS[1..6]  rec, parts, chunks, registry exp, registry bytes, total: the file's keys and its
              bucket's registry, all in the bucket's slot (see include/file.lua)
  ARGV[1]     uploadID (b64)
  ARGV[2]     caller hpk (b64)
  ARGV[3]     now (ms), the service clock

  Returns  {1, chunk bytes freed}  deleted
           {0, 0}  unknown file: none, expired (then dropped anyway) or the caller is not a party
]]
-- @include file

local fk = file_keys(1)
if not live_record(fk, ARGV[1], ARGV[2], tonumber(ARGV[3]), true) then return { 0, 0 } end
local _, bytes = drop_file(fk, ARGV[1])
return { 1, bytes }
