--[[
  Publish the difficulty for a period: fenced by the lease (a replica that lost it writes nothing)
  and by the period (each period is evaluated once, and never an older one after a newer one).

  KEYS[1]  lease key (string: owner id)
  KEYS[2]  difficulty state (hash: d, boost, period, changes, updated)
  ARGV[1]  this replica's owner id
  ARGV[2]  period index just evaluated (floor(ms / period length))
  ARGV[3]  difficulty, 0..255
  ARGV[4]  core-pressure boost, in steps, ≥ 0
  ARGV[5]  changes within the grace window: "atMs:from:to" joined by ",", oldest first ("" for none)
  ARGV[6]  now, ms since epoch
  ARGV[7]  state key TTL, ms (clean-up only; the leader rewrites it every period)

  Returns  1 when written, 0 when fenced off
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local p = tonumber(redis.call('HGET', KEYS[2], 'period'))
if p and p >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[2], 'd', ARGV[3], 'boost', ARGV[4], 'period', ARGV[2], 'changes', ARGV[5], 'updated', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return 1
