--[[
  mailbox_download: a page of the caller's live messages in receipt order (PROTOCOL.md §5.3,
  DEVIATION D12): optional sender filter, then skip `start`, then at most `count`. Reads only,
  apart from compacting expired messages.

  KEYS[1]      msgs HASH     ({hpk} slot)
  KEYS[2]      order ZSET
  KEYS[3]      exp ZSET
  KEYS[4]      meta HASH
  ARGV[1]      now (ms), the service clock
  ARGV[2]      start (messages to skip, ≥ 0)
  ARGV[3]      count (most messages to return, 1..100)
  ARGV[4]      compaction limit (expired messages removed per call)
  ARGV[5..]    sender hpks (b64) to keep; none = every sender

  Returns  {items, expired messages removed, their data bytes}; items: an array of rendered
           download items (JSON object texts), in receipt order
]]
-- @include mailbox

local mk = mailbox_keys(1)
local now_s = ARGV[1]
local now = tonumber(now_s)
local start = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
if compact(mk, now_s, tonumber(ARGV[4])) > 0 then drop_meta_if_empty(mk) end

local senders = nil
if #ARGV > 4 then
  senders = {}
  for i = 5, #ARGV do senders[ARGV[i]] = true end
end

local out = {}

-- Fast path: nothing to filter, every stored message is live, so positions are exact.
if senders == nil and expired_count(mk, now_s) == 0 then
  local nonces = redis.call('ZRANGE', mk.order, start, start + count - 1)
  if #nonces == 0 then return { out, expired_n, expired_bytes } end
  local recs = redis.call('HMGET', mk.msgs, unpack(nonces))
  for i = 1, #nonces do
    if recs[i] then out[#out + 1] = record_item(recs[i]) end
  end
  return { out, expired_n, expired_bytes }
end

-- Walk the order in batches, keeping live messages that pass the filter.
local batch = 200
local pos = 0
local skipped = 0
while #out < count do
  local nonces = redis.call('ZRANGE', mk.order, pos, pos + batch - 1)
  if #nonces == 0 then break end
  pos = pos + #nonces
  local recs = redis.call('HMGET', mk.msgs, unpack(nonces))
  for i = 1, #nonces do
    local rec = recs[i]
    local exp = tonumber(redis.call('ZSCORE', mk.exp, nonces[i]))
    if rec and exp and exp > now and (senders == nil or senders[record_from(rec)]) then
      if skipped < start then
        skipped = skipped + 1
      else
        out[#out + 1] = record_item(rec)
        if #out >= count then break end
      end
    end
  end
end
return { out, expired_n, expired_bytes }
