-- Release a lock only if it is still held with our token.
-- KEYS[1] lock key; ARGV[1] token. Returns 1 if released, 0 if not ours (expired or taken).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
