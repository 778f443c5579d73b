-- Add items. KEYS[1] buckets, KEYS[2] meta, KEYS[3] journal.
-- ARGV[1] max kicks, ARGV[2] random seed, ARGV[3] journal length (0 = no journal),
-- then pairs fp, h. Returns {built, r1, r2, ...}: built 0 = no filter (nothing stored
-- except the journal); ri 1 = stored, 0 = full (not stored; the filter is then marked
-- saturated and answers "maybe" for everything until rebuilt).
-- The journal (newest first, "ms:fp:h") lets a rebuild replay adds that its snapshot of
-- ids may have missed.
local max_kicks = tonumber(ARGV[1])
local journal = tonumber(ARGV[3])
cf_srand(ARGV[2])
local m = cf_meta(KEYS[1], KEYS[2])
local out = {0}
if m then
  out[1] = 1
end
local now = 0
if journal > 0 then
  now = cf_now_ms()
end
local added, failed = 0, 0
for a = 4, #ARGV, 2 do
  local r = 0
  if m then
    r = cf_insert(KEYS[1], m, tonumber(ARGV[a]), tonumber(ARGV[a + 1]), max_kicks)
    if r == 1 then
      added = added + 1
    else
      failed = failed + 1
    end
  end
  out[#out + 1] = r
  if journal > 0 then
    redis.call('LPUSH', KEYS[3], string.format('%d:%s:%s', now, ARGV[a], ARGV[a + 1]))
  end
end
if journal > 0 then
  redis.call('LTRIM', KEYS[3], 0, journal - 1)
end
if added > 0 then
  redis.call('HINCRBY', KEYS[2], 'count', added)
end
if failed > 0 then
  redis.call('HSET', KEYS[2], 'saturated', 1)
end
return out
