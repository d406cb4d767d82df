-- Records chunk outcomes in a job's status document.
-- KEYS[1] the job's status hash, KEYS[2] its errors hash.
-- ARGV: ttl, updatedAt, n, m, n snapshot field/value items, m errors-hash field/value items,
-- then triples of (seq, outcome JSON without errors, errors JSON or '').
-- Installs the snapshot only if the key is missing (returns 0 when it is missing and no
-- snapshot was given), then adds each outcome not recorded yet (HSETNX: a replay is a no-op)
-- and, with it, its errors.
local n, m = tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', KEYS[1]) == 0 then
  if n == 0 then return 0 end
  for i = 5, 4 + n, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  for i = 5 + n, 4 + n + m, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
local first = 5 + n + m
for i = first, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[1], 'o:' .. ARGV[i], ARGV[i + 1]) == 1 and ARGV[i + 2] ~= '' then
    redis.call('HSET', KEYS[2], 'e:' .. ARGV[i], ARGV[i + 2])
  end
end
if first <= #ARGV then redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[2]) end
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
