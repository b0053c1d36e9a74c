--[[
  Shared file helpers (docs/PROTOCOL.md §4.0 "File", §5.7–5.11). The loader (src/redis.ts) inlines this
  file where a script has the line `-- @include file`. Every function takes `fk`, the keys:
    fk.rec        HASH  from, to, size, status (START|UPLOADING|COMPLETE), bytes (bytes_stored),
                        total (total_chunks), exp (absolute expiry, ms)
    fk.parts      HASH  part -> "<decoded size>|<chunk nonce b64>"
    fk.chunks     HASH  part -> chunk bytes (binary, exactly as uploaded)
    fk.reg_exp    ZSET  uploadID -> absolute expiry (ms), of the bucket's files
    fk.reg_bytes  HASH  uploadID -> bytes of the file's stored chunks, of the bucket's files
    fk.total      STRING bytes of every stored chunk of the bucket's files
  All six are in the slot of the file's bucket ({fb:<n>}, src/keys.ts), so each script is one
  Redis Cluster slot; the relay-wide total is the sum of the buckets' totals. Together the scripts
  keep the invariant total = sum(reg_bytes) = sum over live file keys of their part sizes, per
  bucket, at every script boundary.
  A file is live while now < exp; `now` always comes from ARGV (the service clock).
]]

local function file_keys(first)
  return {
    rec = KEYS[first], parts = KEYS[first + 1], chunks = KEYS[first + 2],
    reg_exp = KEYS[first + 3], reg_bytes = KEYS[first + 4], total = KEYS[first + 5],
  }
end

-- Integers as plain decimal text (Lua 5.1 would write 15+ digit numbers with an exponent).
local function int(n)
  return string.format('%d', n)
end

-- The decoded size stored at the front of a parts entry.
local function part_size(meta)
  local s1 = string.find(meta, '|', 1, true)
  return tonumber(string.sub(meta, 1, s1 - 1)) or 0
end

-- The chunk nonce stored in a parts entry.
local function part_nonce(meta)
  local s1 = string.find(meta, '|', 1, true)
  return string.sub(meta, s1 + 1)
end

-- Removes a file's keys and its registry entry, taking its bytes off the total. The UNLINKs come
-- first: freeing memory is allowed when Redis is at maxmemory, and once a script has written, the
-- registry updates after it are too. Returns (whether a record existed, bytes taken off).
local function drop_file(fk, id)
  local existed = redis.call('EXISTS', fk.rec) == 1
  redis.call('UNLINK', fk.rec, fk.parts, fk.chunks)
  local bytes = tonumber(redis.call('HGET', fk.reg_bytes, id)) or 0
  if bytes ~= 0 then redis.call('DECRBY', fk.total, int(bytes)) end
  redis.call('HDEL', fk.reg_bytes, id)
  redis.call('ZREM', fk.reg_exp, id)
  return existed, bytes
end

-- The file record if it is live and `caller` is one of its two parties, else nil (the access
-- rule: for anyone else a file behaves as unknown). With `reap`, an expired record is dropped.
local function live_record(fk, id, caller, now, reap)
  local r = redis.call('HMGET', fk.rec, 'from', 'to', 'size', 'status', 'bytes', 'total', 'exp')
  if not r[1] or not r[7] then return nil end
  if tonumber(r[7]) <= now then
    if reap then drop_file(fk, id) end
    return nil
  end
  if caller ~= r[1] and caller ~= r[2] then return nil end
  return {
    from = r[1], to = r[2], size = tonumber(r[3]), status = r[4],
    bytes = tonumber(r[5]) or 0, total = tonumber(r[6]) or 0, exp = tonumber(r[7]),
  }
end

-- Every key of the file lives until its expiry plus the margin (TTLs only clean up).
local function expire_file(fk, exp, now, margin)
  local ttl = math.max(tonumber(exp) - tonumber(now), 0) + tonumber(margin)
  redis.call('PEXPIRE', fk.rec, int(ttl))
  redis.call('PEXPIRE', fk.parts, int(ttl))
  redis.call('PEXPIRE', fk.chunks, int(ttl))
end
