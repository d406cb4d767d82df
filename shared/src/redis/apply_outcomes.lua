-- Records chunk outcomes in a job's status document.
-- KEYS[1] the job's status hash.
-- ARGV: ttl, updatedAt, n, n snapshot field/value items, then pairs of (seq, outcome JSON).
-- Installs the snapshot only if the key is missing (returns 0 when it is missing and no
-- snapshot was given), then adds each outcome not recorded yet (HSETNX: a replay is a no-op).
local n = tonumber(ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
  if n == 0 then return 0 end
  for i = 4, 3 + n, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
for i = 4 + n, #ARGV, 2 do redis.call('HSETNX', KEYS[1], 'o:' .. ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
