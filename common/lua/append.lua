-- append: appends one message event to its session, exactly once.
-- KEYS: msgs, meta, eids (the session's keys, store.h)
-- ARGV: partition, offset, event_id, tail (the stored entry after
--       "seq":N), tokens, ttl (s, 0 = none), dedupe window, compaction
--       threshold (0 = never), now (ms), stale (ms), break tokens
-- Returns {result, seq, list length, compact}: result 1 applied, 0 offset
-- at or below the watermark, -1 event_id seen recently (seq is then the
-- earlier one's, when still in the window; 0 otherwise). The watermark
-- off:<partition> moves in the same script as the append (store.h). It
-- runs for every event, so it keeps to 8 Redis calls: one HMGET and one
-- HSET for the meta, and the id set is trimmed every 16th append, to the
-- newest dedupe-window ids.
local partition, offset, event_id, tail = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local tokens, ttl, window = tonumber(ARGV[5]), tonumber(ARGV[6]),
  tonumber(ARGV[7])
local threshold, now, stale = tonumber(ARGV[8]), tonumber(ARGV[9]),
  tonumber(ARGV[10])
local break_tokens = ARGV[11]

local f = 'off:' .. partition
local h = redis.call('HMGET', KEYS[2], f, 'last_seq', 'total', 'tokens',
  'cjob')
if h[1] and tonumber(h[1]) >= tonumber(offset) then
  local s = redis.call('ZSCORE', KEYS[3], event_id)
  return {0, tonumber(s or 0), redis.call('LLEN', KEYS[1]), 0}
end
local dup = redis.call('ZSCORE', KEYS[3], event_id)
if dup then
  redis.call('HSET', KEYS[2], f, offset)
  if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end
  return {-1, tonumber(dup), redis.call('LLEN', KEYS[1]), 0}
end
local seq = (tonumber(h[2]) or 0) + 1
local n = redis.call('RPUSH', KEYS[1], '{"seq":' .. seq .. tail)
redis.call('ZADD', KEYS[3], seq, event_id)
if seq > window and seq % 16 == 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', seq - window)
end
local compact = 0
if threshold > 0 and n > threshold and
    (not h[5] or now - tonumber(h[5]) > stale) then
  compact = 1
end
local set = {f, offset, 'last_seq', seq, 'total', (tonumber(h[3]) or 0) + 1,
  'tokens', (tonumber(h[4]) or 0) + tokens, 'last_break', break_tokens}
if compact == 1 then
  set[#set + 1] = 'cjob'; set[#set + 1] = ARGV[9]
end
redis.call('HSET', KEYS[2], unpack(set))
if ttl > 0 then
  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
end
return {1, seq, n, compact}
