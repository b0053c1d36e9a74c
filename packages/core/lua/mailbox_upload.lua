--[[
  mailbox_upload: stores a message in the recipient's mailbox (PROTOCOL.md §5.2): replacement of a
  live message with the same nonce, the count and byte quotas, and the storage-token record, all in
  one atomic step.

  KEYS[1]  msgs HASH     (recipient mailbox, {hpk_to} slot)
  KEYS[2]  order ZSET
  KEYS[3]  exp ZSET
  KEYS[4]  meta HASH
  KEYS[5]  storage-token STRING -> expiry (ms). NOTE: a relay-wide key in another slot; before
           moving to Redis Cluster this write must leave the script (written after it succeeds).
  ARGV[1]  message nonce (b64)
  ARGV[2]  record "<data bytes>|<from hpk b64>|<rendered download item JSON>"
  ARGV[3]  data bytes (UTF-8 length of the message data)
  ARGV[4]  now (ms), the service clock
  ARGV[5]  absolute expiry of the message (ms)
  ARGV[6]  mailboxQuota (max live messages)
  ARGV[7]  mailboxQuotaBytes (max live data bytes)
  ARGV[8]  Redis TTL margin (ms)
  ARGV[9]  compaction limit (expired messages removed per call)

  Returns  {outcome, expired messages removed, their data bytes}, outcome:
            1  stored as a new message (appended to the receipt order)
            2  replaced the live message with this nonce (keeps its place; count quota not applied)
           -1  mailbox full: mailboxQuota live messages already; nothing stored
           -2  mailbox full: mailboxQuotaBytes would be exceeded; nothing stored
]]
-- @include mailbox

local mk = mailbox_keys(1)
local token_key = KEYS[5]
local nonce = ARGV[1]
local record = ARGV[2]
local bytes = tonumber(ARGV[3])
local now_s = ARGV[4]
local now = tonumber(now_s)
local exp = tonumber(ARGV[5])
local quota = tonumber(ARGV[6])
local quota_bytes = tonumber(ARGV[7])
local margin = tonumber(ARGV[8])
local limit = tonumber(ARGV[9])

local function reply(outcome)
  return { outcome, expired_n, expired_bytes }
end

compact(mk, now_s, limit)

-- True when `extra` more data bytes fit under the byte quota. The stored byte total may still
-- include expired messages that bounded compaction has not reached: compact them all before
-- refusing, so the quota counts live messages only.
local function bytes_fit(extra)
  if extra <= 0 then return true end
  local stored = tonumber(redis.call('HGET', mk.meta, 'bytes')) or 0
  if stored + extra <= quota_bytes then return true end
  if expired_count(mk, now_s) == 0 then return false end
  compact(mk, now_s, -1)
  stored = tonumber(redis.call('HGET', mk.meta, 'bytes')) or 0
  return stored + extra <= quota_bytes
end

local result
local cur = redis.call('ZSCORE', mk.exp, nonce)
if cur and tonumber(cur) > now then
  local old = redis.call('HGET', mk.msgs, nonce)
  local delta = bytes - (old and record_bytes(old) or 0)
  if not bytes_fit(delta) then return reply(-2) end
  redis.call('HSET', mk.msgs, nonce, record)
  redis.call('ZADD', mk.exp, ARGV[5], nonce)
  redis.call('HINCRBY', mk.meta, 'bytes', delta)
  result = 2
else
  -- An expired leftover with this nonce is gone for good: the upload is a new message.
  if cur then remove_expired(mk, nonce) end
  if live_count(mk, now_s) >= quota then return reply(-1) end
  if not bytes_fit(bytes) then return reply(-2) end
  local seq = redis.call('HINCRBY', mk.meta, 'seq', 1)
  redis.call('ZADD', mk.order, seq, nonce)
  redis.call('ZADD', mk.exp, ARGV[5], nonce)
  redis.call('HSET', mk.msgs, nonce, record)
  redis.call('HINCRBY', mk.meta, 'bytes', bytes)
  result = 1
end

redis.call('SET', token_key, ARGV[5], 'PX', math.max(exp - now, 0) + margin)

-- Idle mailboxes vanish: every key lives until the latest expiry in it, plus the margin.
local last = redis.call('ZRANGE', mk.exp, -1, -1, 'WITHSCORES')
local ttl = math.max(tonumber(last[2]) - now, 0) + margin
redis.call('PEXPIRE', mk.msgs, ttl)
redis.call('PEXPIRE', mk.order, ttl)
redis.call('PEXPIRE', mk.exp, ttl)
redis.call('PEXPIRE', mk.meta, ttl)
return reply(result)
