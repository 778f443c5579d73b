-- Invalidate (ARGV[2] = '') or overwrite a key, and bump its generation so that a load
-- that started before this write cannot store its older value afterwards.
-- KEYS[1] value key, KEYS[2] generation key. ARGV[1] generation ttl ms,
-- ARGV[2] payload ('' = delete), ARGV[3] value ttl ms.
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
