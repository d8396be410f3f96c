-- fold: the atomic fold of a session's oldest messages into its summary;
-- the folded messages move to the session's archive.
-- KEYS: summary, msgs, meta, archive (the session's keys, store.h)
-- ARGV: expected upto (the summary cursor the fold was made from), new
--       upto (last seq folded), text (the new summary), ttl (s, 0 =
--       none), compaction threshold, archive ttl (s, 0 = none), archive
--       max messages (0 = keep no archive), tail (the archive's newest
--       chunk as the fold read it, '' for none), merged (that tail
--       followed by the messages of the first new chunk, '' for none),
--       then the new chunks (archive.h), which hold exactly the folded
--       messages, oldest first; none when archive max is 0
-- Returns {removed, left in the list}, or -2 when the cursor moved, the
-- session is gone, or the head of the list is not what the new chunks
-- hold (count and seq range): then nothing changed. Only messages with
-- seq <= new upto leave the head of the list: those appended meanwhile
-- stay. In the same script they enter the archive: merged replaces the
-- newest chunk if that is still byte for byte the tail the fold read,
-- else the first new chunk is appended; the other new chunks are
-- appended. The script writes each stored chunk's base (archive.h). Then
-- the oldest whole chunks go while the archive holds more than archive
-- max messages. The pending job mark (cjob) is cleared only when what is
-- left is within the threshold: appends that landed during the fold and
-- saw the mark did not ask for another job, so the caller folds again
-- instead.
local expected, new_upto, text = ARGV[1], ARGV[2], ARGV[3]
local ttl, threshold = tonumber(ARGV[4]), tonumber(ARGV[5])
local attl, amax = tonumber(ARGV[6]), tonumber(ARGV[7])
local tail, merged = ARGV[8], ARGV[9]
local FIRST_CHUNK = 10

if redis.call('EXISTS', KEYS[3]) == 0 then return -2 end
local cur = redis.call('HGET', KEYS[1], 'upto') or '0'
if cur ~= expected then return -2 end
local upto = tonumber(new_upto)

-- count, first seq, last seq and base of a chunk (its 32-byte header)
local function header(c)
  if #c < 32 then error('fold: archive chunk shorter than its header') end
  local v, _, n, _, first, last, base = struct.unpack('<BBHI4I8I8I8', c)
  if v ~= 1 then error('fold: archive chunk of unknown version') end
  return n, first, last, base
end
-- header() of a chunk already stored; nil for one it cannot read (the
-- fold then neither merges into it nor evicts past it, and never fails
-- on it)
local function peek(c)
  local ok, n, first, last, base = pcall(header, c)
  if ok then return n, first, last, base end
end
local function with_base(c, base)
  return string.sub(c, 1, 24) .. struct.pack('<I8', base) ..
    string.sub(c, 33)
end
local function seq_of(entry)
  return tonumber(string.match(entry, '^{"seq":(%d+)'))
end

local removed = 0
if amax == 0 then
  -- No archive kept: the folded messages go.
  while true do
    local head = redis.call('LINDEX', KEYS[2], 0)
    if not head then break end
    local seq = seq_of(head)
    if not seq or seq > upto then break end
    redis.call('LPOP', KEYS[2])
    removed = removed + 1
  end
  redis.call('DEL', KEYS[4])
else
  if #ARGV < FIRST_CHUNK then error('fold: no archive chunk') end
  -- Check everything before the first write.
  local n, first, last = 0, nil, nil
  for i = FIRST_CHUNK, #ARGV do
    local c, f, l = header(ARGV[i])
    if last and f <= last then return -2 end
    first = first or f
    last = l
    n = n + c
  end
  if last ~= upto then return -2 end
  -- Seqs increase along the list: its first n entries are the folded
  -- messages when the first and the n-th have the chunks' first and last
  -- seq and the next one is newer.
  local head = redis.call('LRANGE', KEYS[2], 0, n)
  if #head < n or seq_of(head[1]) ~= first or seq_of(head[n]) ~= last then
    return -2
  end
  if head[n + 1] and (seq_of(head[n + 1]) or 0) <= upto then return -2 end
  local newest = redis.call('LINDEX', KEYS[4], -1)
  local base, cnt = 0, 0 -- of the archive's newest chunk
  if newest then
    local c, _, _, b = peek(newest)
    if c then base, cnt = b, c end
  end
  local next_chunk = FIRST_CHUNK
  if tail ~= '' and newest == tail and cnt > 0 then
    local tc, tf = header(tail)
    local mc, mf, ml = header(merged)
    local fc, _, fl = header(ARGV[FIRST_CHUNK])
    if mc ~= tc + fc or mf ~= tf or ml ~= fl then return -2 end
    redis.call('LSET', KEYS[4], -1, with_base(merged, base))
    cnt = mc
    next_chunk = FIRST_CHUNK + 1
  end
  for i = next_chunk, #ARGV do
    base = base + cnt
    cnt = header(ARGV[i])
    redis.call('RPUSH', KEYS[4], with_base(ARGV[i], base))
  end
  local _, _, _, oldest = peek(redis.call('LINDEX', KEYS[4], 0))
  local total = base + cnt - (oldest or base)
  while total > amax and redis.call('LLEN', KEYS[4]) > 1 do
    local c = peek(redis.call('LINDEX', KEYS[4], 0))
    if not c then break end
    redis.call('LPOP', KEYS[4])
    total = total - c
  end
  if attl > 0 then redis.call('EXPIRE', KEYS[4], attl) end
  redis.call('LTRIM', KEYS[2], n, -1)
  removed = n
end
redis.call('HSET', KEYS[1], 'text', text, 'upto', new_upto)
redis.call('HINCRBY', KEYS[1], 'folded', removed)
local left = redis.call('LLEN', KEYS[2])
if left <= threshold then
  redis.call('HDEL', KEYS[3], 'cjob')
end
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return {removed, left}
