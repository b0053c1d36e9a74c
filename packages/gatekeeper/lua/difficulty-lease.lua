--[[
  Take or renew the difficulty-controller lease: one gatekeeper replica at a time polls the core
  and writes the difficulty. The lease is a plain key holding its owner's id with a Redis TTL: it
  is about liveness (a dead leader's lease lapses), not a protocol expiry.

  KEYS[1]  lease key (string: owner id)
  ARGV[1]  this replica's owner id
  ARGV[2]  lease lifetime, ms

  Returns  1 when this replica holds the lease (taken or renewed), 0 when another one does
]]
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
