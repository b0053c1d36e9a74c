--[[
  mailbox_download: a page of the caller's live messages in receipt order (docs/PROTOCOL.md §5.3,
  DEVIATION D12): optional sender filter, then skip `start`, then at most `count`. Reads only,
  apart from compacting expired messages.

  KEYS[1]      msgs HASH     ({hpk} slot; layout in include/mailbox.lua)
  KEYS[2]      order ZSET
  KEYS[3]      exp ZSET
  ARGV[1]      now (ms), the service clock
  ARGV[2]      start (messages to skip, ≥ 0)
  ARGV[3]      count (most messages to return, 1..100)
  ARGV[4]      compaction limit (expired messages removed per call)
  ARGV[5..]    sender hpks (raw 32 bytes) to keep; none = every sender

  Returns  {items, expired messages removed, their data bytes}; items: a flat array
           {nonce 1, record 1, nonce 2, record 2, …} (raw nonces, binary records) in receipt order,
           which src/store/mailbox.ts renders into download items
]]
-- @include mailbox

local mk = mailbox_keys(1)
local now_s = ARGV[1]
local now = tonumber(now_s)
local start = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
if compact(mk, now_s, tonumber(ARGV[4])) > 0 then drop_if_empty(mk) end

local senders = nil
if #ARGV > 4 then
  senders = {}
  for i = 5, #ARGV do senders[ARGV[i]] = true end
end

local out = {}

-- Fast path: nothing to filter, every stored message is live, so positions are exact.
if senders == nil and expired_count(mk, now_s) == 0 then
  local page = redis.call('ZRANGE', mk.order, start, start + count - 1, 'WITHSCORES')
  if #page == 0 then return { out, expired_n, expired_bytes } end
  local seqs = {}
  for i = 2, #page, 2 do seqs[#seqs + 1] = page[i] end
  local recs = redis.call('HMGET', mk.msgs, unpack(seqs))
  for i = 1, #seqs do
    if recs[i] then
      out[#out + 1] = page[2 * i - 1]
      out[#out + 1] = recs[i]
    end
  end
  return { out, expired_n, expired_bytes }
end

-- Walk the order in batches, keeping live messages that pass the filter.
local batch = 200
local pos = 0
local skipped = 0
local found = 0
while found < count do
  local page = redis.call('ZRANGE', mk.order, pos, pos + batch - 1, 'WITHSCORES')
  if #page == 0 then break end
  pos = pos + #page / 2
  local seqs = {}
  for i = 2, #page, 2 do seqs[#seqs + 1] = page[i] end
  local recs = redis.call('HMGET', mk.msgs, unpack(seqs))
  for i = 1, #seqs do
    local rec = recs[i]
    local exp = tonumber(redis.call('ZSCORE', mk.exp, seqs[i]))
    if rec and exp and exp > now and (senders == nil or senders[record_from(rec)]) then
      if skipped < start then
        skipped = skipped + 1
      else
        out[#out + 1] = page[2 * i - 1]
        out[#out + 1] = rec
        found = found + 1
        if found >= count then break end
      end
    end
  end
end
return { out, expired_n, expired_bytes }
