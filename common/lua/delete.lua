-- delete: session.delete as ingest applies it.
-- KEYS: msgs, meta, eids, summary, archive (the session's keys, store.h)
-- ARGV: partition, offset (of the session.delete event)
-- Returns 1 deleted, 0 skipped: the event was already applied (the
-- watermark of a session re-created after the delete is newer).
local partition, offset = ARGV[1], ARGV[2]

local wm = redis.call('HGET', KEYS[2], 'off:' .. partition)
if wm and tonumber(wm) >= tonumber(offset) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return 1
