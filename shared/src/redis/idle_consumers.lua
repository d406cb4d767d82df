-- Deletes the group's consumers that have nothing pending and were idle longer than ARGV[2]
-- ms, atomically: a consumer deleted with entries pending would take them out of the pending
-- list, where no drain would ever claim them again.
-- KEYS[1] the stream; ARGV[1] the group; ARGV[2] the idle time in ms.
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local fields = {}
  for i = 1, #consumer, 2 do fields[consumer[i]] = consumer[i + 1] end
  if fields['pending'] == 0 and fields['idle'] > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], fields['name'])
    removed = removed + 1
  end
end
return removed
