--[[
  Add a replica's successful /start_session + /verify_session calls to a difficulty period's
  counter (docs/PROTOCOL.md §3.4 adaptive difficulty: calls are counted per period across replicas).

  KEYS[1]  counter of one period (integer)
  ARGV[1]  calls to add, ≥ 1
  ARGV[2]  key TTL, ms (long enough for the three periods the rule looks back on)

  Returns  the period's new count
]]
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
