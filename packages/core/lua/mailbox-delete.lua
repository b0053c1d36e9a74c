--[[
  mailbox_delete: removes messages from the caller's own mailbox by nonce (docs/PROTOCOL.md §5.5).
  Unknown and duplicate nonces are ignored. The caller deletes the storage-token records of the
  removed messages (relay-wide keys in other Redis Cluster slots) from the indices returned.

  KEYS[1]      msgs HASH     (the caller's mailbox, {hpk} slot; layout in include/mailbox.lua)
  KEYS[2]      order ZSET
  KEYS[3]      exp ZSET
  ARGV[1]      now (ms), the service clock
  ARGV[2]      compaction limit (expired messages removed per call)
  ARGV[2 + i]  the i-th message nonce (raw 24 bytes)

  Returns  {the live message count afterwards, messages deleted, their data bytes,
            expired messages removed, their data bytes, {i of each nonce removed (1-based)}}
]]
-- @include mailbox

local mk = mailbox_keys(1)
local now_s = ARGV[1]
local deleted_n, deleted_bytes = 0, 0
local removed = {}
for i = 3, #ARGV do
  local bytes = remove_message(mk, ARGV[i])
  if bytes then
    removed[#removed + 1] = i - 2
    deleted_n = deleted_n + 1
    deleted_bytes = deleted_bytes + bytes
  end
end
compact(mk, now_s, tonumber(ARGV[2]))
drop_if_empty(mk)
return { live_count(mk, now_s), deleted_n, deleted_bytes, expired_n, expired_bytes, removed }
