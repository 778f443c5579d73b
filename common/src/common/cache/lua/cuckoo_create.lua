-- Create an empty filter. KEYS[1] buckets, KEYS[2] meta.
-- ARGV[1] buckets (power of two), ARGV[2] log2 buckets, ARGV[3] capacity,
-- ARGV[4] replace (1 = drop an existing one), ARGV[5] ttl ms (0 = none).
-- Returns 1 if created, 0 if one exists and replace is 0.
if ARGV[4] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SETRANGE', KEYS[1], tonumber(ARGV[1]) * 8 - 1, '\0')
redis.call('HSET', KEYS[2], 'buckets', ARGV[1], 'bits', ARGV[2], 'capacity', ARGV[3],
  'count', 0, 'saturated', 0, 'created_ms', string.format('%d', cf_now_ms()), 'format', 1)
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
