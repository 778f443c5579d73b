-- Give a lock we still hold a new time to live.
-- KEYS[1] lock key; ARGV[1] token; ARGV[2] ttl in ms. Returns 1 if extended, 0 if not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
