-- Make a freshly built filter the live one, atomically.
-- KEYS[1] live buckets, KEYS[2] live meta, KEYS[3] new buckets, KEYS[4] new meta,
-- KEYS[5] journal. ARGV[1] max kicks, ARGV[2] seed, ARGV[3] journal margin ms,
-- ARGV[4] journal length.
-- First replays into the new filter every journalled add since (its creation - margin):
-- ids added while the rebuild read its snapshot are not lost. If the journal may have
-- dropped entries of that window (it is full and nothing in it is older), or a replayed
-- add does not fit, the new filter is marked saturated ("maybe" for everything): slower,
-- never a false negative. Returns {swapped, replayed, saturated}.
local m = cf_meta(KEYS[3], KEYS[4])
if not m then
  return {0, 0, 0}
end
cf_srand(ARGV[2])
local max_kicks = tonumber(ARGV[1])
local since = tonumber(redis.call('HGET', KEYS[4], 'created_ms')) - tonumber(ARGV[3])
local entries = redis.call('LRANGE', KEYS[5], 0, -1)
local complete = #entries < tonumber(ARGV[4])
local replayed, failed = 0, 0
for _, e in ipairs(entries) do
  local ms, fp, h = string.match(e, '^(%d+):(%d+):(%d+)$')
  if ms then
    if tonumber(ms) >= since then
      if cf_insert(KEYS[3], m, tonumber(fp), tonumber(h), max_kicks) == 1 then
        replayed = replayed + 1
      else
        failed = failed + 1
      end
    else
      complete = true
    end
  end
end
if replayed > 0 then
  redis.call('HINCRBY', KEYS[4], 'count', replayed)
end
local saturated = 0
if failed > 0 or not complete or m.saturated then
  redis.call('HSET', KEYS[4], 'saturated', 1)
  saturated = 1
end
redis.call('RENAME', KEYS[3], KEYS[1])
redis.call('RENAME', KEYS[4], KEYS[2])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
return {1, replayed, saturated}
