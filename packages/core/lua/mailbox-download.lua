--[[
  mailbox_download: a page of the caller's live messages in receipt order (docs/PROTOCOL.md §5.3,
  DEVIATIONS D12, D19): optional sender filter, then skip `start`, then at most `count` messages
  whose data bytes add up to at most `max bytes`, but always at least one (the oldest that
  qualifies, whatever its size). Reads only, apart from compacting expired messages. Records are
  read one at a time and only until the page is full, so a page never holds (or copies out of
  Redis) more than the byte cap plus one message.

  KEYS[1]      msgs HASH     ({hpk} slot; layout in include/mailbox.lua)
  KEYS[2]      order ZSET
  KEYS[3]      exp ZSET
  ARGV[1]      now (ms), the service clock
  ARGV[2]      start (messages to skip, ≥ 0)
  ARGV[3]      count (most messages to return, 1..100)
  ARGV[4]      compaction limit (expired messages removed per call)
  ARGV[5]      max bytes: most data bytes (record_bytes) in the page, ≥ 1, unless its first message
               alone has more
  ARGV[6..]    sender hpks (raw 32 bytes) to keep; none = every sender

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
local max_bytes = tonumber(ARGV[5])
if compact(mk, now_s, tonumber(ARGV[4])) > 0 then drop_if_empty(mk) end

local senders = nil
if #ARGV > 5 then
  senders = {}
  for i = 6, #ARGV do senders[ARGV[i]] = true end
end

local out = {}
local found = 0
local total = 0

-- Adds a message to the page unless its bytes would pass the cap (the first always goes in).
-- Returns whether the page has room for more.
local function take(nonce, rec)
  local bytes = record_bytes(rec)
  if found > 0 and total + bytes > max_bytes then return false end
  out[#out + 1] = nonce
  out[#out + 1] = rec
  found = found + 1
  total = total + bytes
  return found < count
end

-- Fast path: nothing to filter, every stored message is live, so positions are exact.
if senders == nil and expired_count(mk, now_s) == 0 then
  local page = redis.call('ZRANGE', mk.order, start, start + count - 1, 'WITHSCORES')
  for i = 1, #page, 2 do
    local rec = redis.call('HGET', mk.msgs, page[i + 1])
    if rec and not take(page[i], rec) then break end
  end
  return { out, expired_n, expired_bytes }
end

-- Walk the order in batches, keeping live messages that pass the filter.
local batch = 200
local pos = 0
local skipped = 0
local more = true
while more do
  local page = redis.call('ZRANGE', mk.order, pos, pos + batch - 1, 'WITHSCORES')
  if #page == 0 then break end
  pos = pos + #page / 2
  for i = 1, #page, 2 do
    local seq = page[i + 1]
    local exp = tonumber(redis.call('ZSCORE', mk.exp, seq))
    local rec = exp and exp > now and redis.call('HGET', mk.msgs, seq)
    if rec and (senders == nil or senders[record_from(rec)]) then
      if skipped < start then
        skipped = skipped + 1
      elseif not take(page[i], rec) then
        more = false
        break
      end
    end
  end
end
return { out, expired_n, expired_bytes }
