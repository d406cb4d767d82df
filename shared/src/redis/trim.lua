-- Removes acknowledged entries from the stream, atomically (no drain can read an entry between
-- the look at the group and the trim): everything older than the oldest pending entry or, when
-- nothing is pending, older than the last entry delivered to the group. Entries not yet
-- delivered and entries still pending are never older than that bound, so they stay.
-- KEYS[1] the stream; ARGV[1] the group.
-- Returns {entries trimmed, id of the oldest pending entry or false}.
local oldest_pending = redis.call('XPENDING', KEYS[1], ARGV[1])[2]
local bound = oldest_pending
if not bound then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local fields = {}
    for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
    if fields['name'] == ARGV[1] then bound = fields['last-delivered-id'] end
  end
end
if not bound or bound == '0-0' then return {0, oldest_pending} end
return {redis.call('XTRIM', KEYS[1], 'MINID', bound), oldest_pending}
