--[[
  Shared mailbox helpers. The loader (src/redis.ts) inlines this file where a script has the line
  `-- @include mailbox`. Every function takes `mk`, the mailbox's keys:
    mk.msgs   HASH  msg nonce -> record "<data bytes>|<from hpk b64>|<rendered download item JSON>"
    mk.order  ZSET  msg nonce -> receipt sequence number
    mk.exp    ZSET  msg nonce -> absolute expiry (ms)
    mk.meta   HASH  seq (last sequence number), bytes (data bytes of the stored messages)
  A message is live while now < expiry; `now` always comes from ARGV (the service clock).
  `expired_n` / `expired_bytes` count the messages (and their data bytes) this script call removed
  because they had expired; the scripts return them for the core's metrics.
]]

local expired_n, expired_bytes = 0, 0

local function mailbox_keys(first)
  return { msgs = KEYS[first], order = KEYS[first + 1], exp = KEYS[first + 2], meta = KEYS[first + 3] }
end

-- The data byte count stored at the front of a record.
local function record_bytes(rec)
  local s1 = string.find(rec, '|', 1, true)
  return tonumber(string.sub(rec, 1, s1 - 1)) or 0
end

-- The sender hpk (b64) stored in a record.
local function record_from(rec)
  local s1 = string.find(rec, '|', 1, true)
  local s2 = string.find(rec, '|', s1 + 1, true)
  return string.sub(rec, s1 + 1, s2 - 1)
end

-- The rendered download item (JSON object text) stored in a record.
local function record_item(rec)
  local s1 = string.find(rec, '|', 1, true)
  local s2 = string.find(rec, '|', s1 + 1, true)
  return string.sub(rec, s2 + 1)
end

-- Removes one message and its bytes. Returns its data bytes (a number, so truthy) if a record
-- existed, else false.
local function remove_message(mk, nonce)
  redis.call('ZREM', mk.order, nonce)
  redis.call('ZREM', mk.exp, nonce)
  local rec = redis.call('HGET', mk.msgs, nonce)
  if not rec then return false end
  local bytes = record_bytes(rec)
  redis.call('HDEL', mk.msgs, nonce)
  redis.call('HINCRBY', mk.meta, 'bytes', -bytes)
  return bytes
end

-- Removes one message that has expired, counting it in expired_n / expired_bytes.
local function remove_expired(mk, nonce)
  local bytes = remove_message(mk, nonce)
  if bytes then
    expired_n = expired_n + 1
    expired_bytes = expired_bytes + bytes
  end
end

-- Removes messages with expiry <= now: at most `limit` of them, or all when limit < 0.
-- Storage-token keys live in other slots and are left to their own TTL: their stored expiry has
-- passed, so messageStatus already reports -2 for them. Returns how many were removed.
local function compact(mk, now, limit)
  local expired
  if limit < 0 then
    expired = redis.call('ZRANGEBYSCORE', mk.exp, '-inf', now)
  else
    expired = redis.call('ZRANGEBYSCORE', mk.exp, '-inf', now, 'LIMIT', 0, limit)
  end
  for _, nonce in ipairs(expired) do remove_expired(mk, nonce) end
  return #expired
end

-- Number of live messages (exact, whether or not compaction has caught up).
local function live_count(mk, now)
  return redis.call('ZCOUNT', mk.exp, '(' .. now, '+inf')
end

-- Number of expired messages not yet compacted.
local function expired_count(mk, now)
  return redis.call('ZCOUNT', mk.exp, '-inf', now)
end

-- Drops the meta hash once the mailbox is empty, so an idle mailbox leaves no key behind.
local function drop_meta_if_empty(mk)
  if redis.call('ZCARD', mk.order) == 0 then redis.call('DEL', mk.meta) end
end
