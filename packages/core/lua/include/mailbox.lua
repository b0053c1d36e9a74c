--[[
  Shared mailbox helpers. The loader (src/redis.ts) inlines this file where a script has the line
  `-- @include mailbox`. Every function takes `mk`, the mailbox's keys (three, all `{hpk}`):
    mk.order  ZSET  msg nonce (raw 24 bytes) -> receipt sequence number `seq`, unique in the
                    mailbox: one more than the highest in the set when a message is appended (so no
                    counter is stored); a replacement keeps its seq, hence its place
    mk.exp    ZSET  seq (decimal) -> absolute expiry (ms)
    mk.msgs   HASH  seq (decimal) -> binary record (below), and the field `b` -> data bytes (UTF-8
                    length of the data strings) of the stored messages; `b` is never a seq
  The short decimal seq, not the nonce, is the hash field and the exp member: a listpack stores it
  as a small integer, a hash field as a tiny string. A message is found by nonce through `order`,
  and the nonce of a seq by ZRANGEBYSCORE on `order`.
  Record (built and parsed by src/store/mailbox.ts, which renders the download item from it):
    byte 1        flags: bits 0-1 the data format, bit 2 set for kind "file" (else "message")
    bytes 2-33    sender hpk, raw 32 bytes
    bytes 34-41   receipt time (ms), IEEE-754 double, big-endian
    bytes 42..    data: format 0  the data string's UTF-8 bytes (data bytes = their count)
                        format 1  the base64-decoded bytes of canonical strict base64 data
                                  (data bytes = 4 * ceil(count / 3))
                        format 2  4-byte big-endian data bytes, then JSON.stringify(data) as UTF-8
                                  (strings with lone surrogates)
  A message is live while now < expiry; `now` always comes from ARGV (the service clock).
  `expired_n` / `expired_bytes` count the messages (and their data bytes) this script call removed
  because they had expired; the scripts return them for the core's metrics.
]]

local expired_n, expired_bytes = 0, 0

-- The msgs hash field holding the data bytes of the stored messages (never a decimal seq).
local BYTES_FIELD = 'b'
-- Where the data starts in a record, and where the sender hpk is.
local DATA_AT = 42
local FROM_AT, FROM_END = 2, 33

local function mailbox_keys(first)
  return { msgs = KEYS[first], order = KEYS[first + 1], exp = KEYS[first + 2] }
end

-- The data bytes of the message a record holds (see the format above).
local function record_bytes(rec)
  local format = string.byte(rec, 1) % 4
  local n = #rec - DATA_AT + 1
  if format == 0 then return n end
  if format == 1 then return 4 * math.ceil(n / 3) end
  local b1, b2, b3, b4 = string.byte(rec, DATA_AT, DATA_AT + 3)
  return ((b1 * 256 + b2) * 256 + b3) * 256 + b4
end

-- The sender hpk (raw 32 bytes) stored in a record.
local function record_from(rec)
  return string.sub(rec, FROM_AT, FROM_END)
end

-- The seq (decimal string) of the message with this nonce, or false.
local function seq_of(mk, nonce)
  return redis.call('ZSCORE', mk.order, nonce)
end

-- The seq a new message gets: one more than the last in the order.
local function next_seq(mk)
  local last = redis.call('ZRANGE', mk.order, -1, -1, 'WITHSCORES')[2]
  return string.format('%d', (tonumber(last) or 0) + 1)
end

-- Removes the message with this seq (and nonce, when known) and its bytes. Returns its data bytes
-- (a number, so truthy) if a record existed, else false.
local function remove_seq(mk, seq, nonce)
  if not nonce then nonce = redis.call('ZRANGEBYSCORE', mk.order, seq, seq, 'LIMIT', 0, 1)[1] end
  if nonce then redis.call('ZREM', mk.order, nonce) end
  redis.call('ZREM', mk.exp, seq)
  local rec = redis.call('HGET', mk.msgs, seq)
  if not rec then return false end
  local bytes = record_bytes(rec)
  redis.call('HDEL', mk.msgs, seq)
  redis.call('HINCRBY', mk.msgs, BYTES_FIELD, -bytes)
  return bytes
end

-- Removes the message with this nonce. Returns its data bytes if it existed, else false.
local function remove_message(mk, nonce)
  local seq = seq_of(mk, nonce)
  if not seq then return false end
  return remove_seq(mk, seq, nonce)
end

-- Removes one message that has expired, counting it in expired_n / expired_bytes.
local function remove_expired(mk, seq, nonce)
  local bytes = remove_seq(mk, seq, nonce)
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
  for _, seq in ipairs(expired) do remove_expired(mk, seq, nil) end
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

-- The data bytes of the stored messages.
local function stored_bytes(mk)
  return tonumber(redis.call('HGET', mk.msgs, BYTES_FIELD)) or 0
end

-- Drops the msgs hash (left holding only the byte total) once the mailbox is empty, so an idle
-- mailbox leaves no key behind.
local function drop_if_empty(mk)
  if redis.call('ZCARD', mk.order) == 0 then redis.call('DEL', mk.msgs) end
end
