--[[
  Give up the difficulty-controller lease on shutdown, so another replica takes over at once.

  KEYS[1]  lease key (string: owner id)
  ARGV[1]  this replica's owner id

  Returns  1 when the lease was ours and is gone, 0 otherwise (someone else's lease is left alone)
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
