--[[
  mailbox_upload: stores a message in the recipient's mailbox (docs/PROTOCOL.md §5.2): replacement of a
  live message with the same nonce, the count and byte quotas, and the storage-token record, all in
  one atomic step.

  KEYS[1]  msgs HASH     (recipient mailbox, {hpk_to} slot; layout in include/mailbox.lua)
  KEYS[2]  order ZSET
  KEYS[3]  exp ZSET
  ARGV[1]  message nonce (raw 24 bytes)
  ARGV[2]  binary record (include/mailbox.lua); its data bytes are read from it
  ARGV[3]  now (ms), the service clock
  ARGV[4]  absolute expiry of the message (ms)
  ARGV[5]  mailboxQuota (max live messages)
  ARGV[6]  mailboxQuotaBytes (max live data bytes)
  ARGV[7]  Redis TTL margin (ms)
  ARGV[8]  compaction limit (expired messages removed per call)

  Returns  {outcome, expired messages removed, their data bytes}, outcome:
            1  stored as a new message (appended to the receipt order)
            2  replaced the live message with this nonce (keeps its place; count quota not applied)
           -1  mailbox full: mailboxQuota live messages already; nothing stored
           -2  mailbox full: mailboxQuotaBytes would be exceeded; nothing stored
]]
-- @include mailbox

local mk = mailbox_keys(1)
local nonce = ARGV[1]
local record = ARGV[2]
local bytes = record_bytes(record)
local now_s = ARGV[3]
local now = tonumber(now_s)
local exp_s = ARGV[4]
local exp = tonumber(exp_s)
local quota = tonumber(ARGV[5])
local quota_bytes = tonumber(ARGV[6])
local margin = tonumber(ARGV[7])
local limit = tonumber(ARGV[8])

-- A refusal may follow compaction that emptied the mailbox: leave no key behind then either.
local function reply(outcome)
  if outcome < 0 then drop_if_empty(mk) end
  return { outcome, expired_n, expired_bytes }
end

compact(mk, now_s, limit)

-- True when `extra` more data bytes fit under the byte quota. The stored byte total may still
-- include expired messages that bounded compaction has not reached: compact them all before
-- refusing, so the quota counts live messages only.
local function bytes_fit(extra)
  if extra <= 0 then return true end
  if stored_bytes(mk) + extra <= quota_bytes then return true end
  if expired_count(mk, now_s) == 0 then return false end
  compact(mk, now_s, -1)
  return stored_bytes(mk) + extra <= quota_bytes
end

local result
local seq = seq_of(mk, nonce)
local cur = seq and redis.call('ZSCORE', mk.exp, seq)
if cur and tonumber(cur) > now then
  local old = redis.call('HGET', mk.msgs, seq)
  local delta = bytes - (old and record_bytes(old) or 0)
  if not bytes_fit(delta) then return reply(-2) end
  redis.call('HSET', mk.msgs, seq, record)
  redis.call('ZADD', mk.exp, exp_s, seq)
  redis.call('HINCRBY', mk.msgs, BYTES_FIELD, delta)
  result = 2
else
  -- An expired leftover with this nonce is gone for good: the upload is a new message.
  if seq then remove_expired(mk, seq, nonce) end
  if live_count(mk, now_s) >= quota then return reply(-1) end
  if not bytes_fit(bytes) then return reply(-2) end
  seq = next_seq(mk)
  redis.call('ZADD', mk.order, seq, nonce)
  redis.call('ZADD', mk.exp, exp_s, seq)
  redis.call('HSET', mk.msgs, seq, record)
  redis.call('HINCRBY', mk.msgs, BYTES_FIELD, bytes)
  result = 1
end

-- Idle mailboxes vanish: every key lives until the latest expiry in it, plus the margin (TTLs are
-- whole ms, rounded up: the clock may have fractions).
local last = redis.call('ZRANGE', mk.exp, -1, -1, 'WITHSCORES')
local ttl = math.ceil(math.max(tonumber(last[2]) - now, 0) + margin)
redis.call('PEXPIRE', mk.msgs, ttl)
redis.call('PEXPIRE', mk.order, ttl)
redis.call('PEXPIRE', mk.exp, ttl)
return reply(result)
