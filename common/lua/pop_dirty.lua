-- pop_dirty: takes the sessions due for prebuilt publication.
-- KEYS: dirty (zset of session keys, score: ms of the first change)
-- ARGV: cutoff (ms), max
-- Returns the session keys ("<user>:<conv>") whose first change since
-- their last publication is at or before the cutoff, oldest first, at
-- most max, and removes them from the set.
local cutoff, max = ARGV[1], ARGV[2]

local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff,
  'LIMIT', 0, max)
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
