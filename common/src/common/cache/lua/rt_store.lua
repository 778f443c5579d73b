-- Store a value loaded from the database unless the key was written meanwhile.
-- KEYS[1] value key, KEYS[2] generation key (same hash slot).
-- ARGV[1] the generation read before loading ('' = none), ARGV[2] payload, ARGV[3] ttl ms.
-- Returns 1 if stored, 0 if an invalidation or write happened since the load started
-- (the loaded value may predate it, so it must not be cached).
local g = redis.call('GET', KEYS[2]) or ''
if g ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
