--[[
  Load a live handshake record (docs/PROTOCOL.md §4.2 step 3).

  KEYS[1]  handshake record key (hash: ct, rt, exp[, pk])
  ARGV[1]  now, ms since epoch

  Returns  {ct, rt, exp, pk} (b64 strings; exp in ms; pk is "" before the first verify),
           or nil when there is no record or it has expired
]]
local rec = redis.call('HMGET', KEYS[1], 'ct', 'rt', 'exp', 'pk')
if not (rec[1] and rec[2] and rec[3]) or tonumber(ARGV[1]) >= tonumber(rec[3]) then
  return nil
end
return {rec[1], rec[2], rec[3], rec[4] or ''}
