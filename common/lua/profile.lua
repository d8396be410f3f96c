-- profile: updates a user's profile from one message or profile.set.
-- KEYS: profile
-- ARGV: mode ('x' extracted from a message, 's' profile.set), ts (ms),
--       src ("<conv>:<seq>"), ttl (s, 0 = none), name, role, interests
--       (a JSON array); '' = not given
-- Returns 1 if the profile changed, else 0. Extraction leaves a field set
-- by profile.set alone and never replaces a newer statement (its ts) with
-- an older one; profile.set wins. Extracted interests are merged (newest
-- kept, at most 16), profile.set replaces them.
local mode, ts, src, ttl = ARGV[1], tonumber(ARGV[2]), ARGV[3],
  tonumber(ARGV[4])
local name, role, interests = ARGV[5], ARGV[6], ARGV[7]

local changed = 0
local function allowed(f)
  if mode == 's' then return true end
  if redis.call('HEXISTS', KEYS[1], f .. '_set') == 1 then
    return false end
  local old = redis.call('HGET', KEYS[1], f .. '_ts')
  return not old or tonumber(old) <= ts
end
local function put(f, v)
  if redis.call('HGET', KEYS[1], f) ~= v then changed = 1 end
  redis.call('HSET', KEYS[1], f, v, f .. '_ts', ARGV[2], f .. '_src', src)
  if mode == 's' then redis.call('HSET', KEYS[1], f .. '_set', 1) end
end
if name ~= '' and allowed('name') then put('name', name) end
if role ~= '' and allowed('role') then put('role', role) end
if interests ~= '' and allowed('interests') then
  if mode == 's' then put('interests', interests) else
    local cur = redis.call('HGET', KEYS[1], 'interests')
    local list = cur and cjson.decode(cur) or {}
    local seen = {}
    for _, v in ipairs(list) do seen[string.lower(v)] = true end
    for _, v in ipairs(cjson.decode(interests)) do
      if not seen[string.lower(v)] then
        table.insert(list, v); seen[string.lower(v)] = true end
    end
    while #list > 16 do table.remove(list, 1) end
    if #list > 0 then put('interests', cjson.encode(list)) end
  end
end
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return changed
