-- fold: the atomic fold of a session's oldest messages into its summary.
-- KEYS: summary, msgs, meta (the session's keys, store.h)
-- ARGV: expected upto (the summary cursor the fold was made from), new
--       upto (last seq folded), text (the new summary), ttl (s, 0 =
--       none), compaction threshold
-- Returns {removed, left in the list}, or -2 when the cursor moved or the
-- session is gone (nothing changed). Only messages with seq <= new upto
-- leave the head of the list: those appended meanwhile stay. The pending
-- job mark (cjob) is cleared only when what is left is within the
-- threshold: appends that landed during the fold and saw the mark did not
-- ask for another job, so the caller folds again instead.
local expected, new_upto, text = ARGV[1], ARGV[2], ARGV[3]
local ttl, threshold = tonumber(ARGV[4]), tonumber(ARGV[5])

if redis.call('EXISTS', KEYS[3]) == 0 then return -2 end
local cur = redis.call('HGET', KEYS[1], 'upto') or '0'
if cur ~= expected then return -2 end
local upto = tonumber(new_upto)
local removed = 0
while true do
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head then break end
  local seq = tonumber(string.match(head, '^{"seq":(%d+)'))
  if not seq or seq > upto then break end
  redis.call('LPOP', KEYS[2])
  removed = removed + 1
end
redis.call('HSET', KEYS[1], 'text', text, 'upto', new_upto)
redis.call('HINCRBY', KEYS[1], 'folded', removed)
local left = redis.call('LLEN', KEYS[2])
if left <= threshold then
  redis.call('HDEL', KEYS[3], 'cjob')
end
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return {removed, left}
