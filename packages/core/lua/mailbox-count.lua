--[[
  mailbox_count: the number of live messages in a mailbox (docs/PROTOCOL.md §5.1, and the /prove
  response), compacting expired messages on the way.

  KEYS[1]  msgs HASH     ({hpk} slot; layout in include/mailbox.lua)
  KEYS[2]  order ZSET
  KEYS[3]  exp ZSET
  ARGV[1]  now (ms), the service clock
  ARGV[2]  compaction limit (expired messages removed per call)

  Returns  {the live message count (integer ≥ 0), expired messages removed, their data bytes}
]]
-- @include mailbox

local mk = mailbox_keys(1)
if compact(mk, ARGV[1], tonumber(ARGV[2])) > 0 then drop_if_empty(mk) end
return { live_count(mk, ARGV[1]), expired_n, expired_bytes }
