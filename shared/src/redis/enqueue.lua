-- Queues a job: its status document and one stream entry per chunk, all or nothing.
-- KEYS[1] the job's status hash, KEYS[2] the stream.
-- ARGV: ttl, n, n hash field/value items, importId, createdBy, onExisting, then one leads JSON
-- per chunk.
-- Returns the entry ids in seq order. When the job key exists already (the job was queued
-- before) nothing is written, and the ids it was queued with are returned space-separated,
-- or 0 if the key holds none.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HGET', KEYS[1], 'entries') or 0
end
local n = tonumber(ARGV[2])
for i = 3, 2 + n, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local import_id, created_by, on_existing = ARGV[3 + n], ARGV[4 + n], ARGV[5 + n]
local ids = {}
for i = 6 + n, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[2], '*', 'importId', import_id, 'seq', i - 6 - n,
                             'createdBy', created_by, 'onExisting', on_existing, 'leads', ARGV[i])
end
redis.call('HSET', KEYS[1], 'entries', table.concat(ids, ' '))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return ids
