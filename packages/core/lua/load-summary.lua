--[[
  load_summary: stores the aggregate of one finished load period (the load job, src/jobs.ts) unless
  a summary of that period or a later one is there already: two runs of the job (replicas, a retry)
  never move it back.

  KEYS[1]  summary HASH (fields `period`, `report`), hash tag {load}
  ARGV[1]  period index (floor(start ms / period ms))
  ARGV[2]  report JSON
  ARGV[3]  key TTL (ms)

  Returns  1 written, 0 kept (a summary of this period or a later one is stored)
]]
local stored = tonumber(redis.call('HGET', KEYS[1], 'period'))
if stored and stored >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'period', ARGV[1], 'report', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
