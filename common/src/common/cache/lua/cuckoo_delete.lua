-- Delete items (one stored copy each). KEYS[1] buckets, KEYS[2] meta; ARGV pairs fp, h.
-- Returns {built, r1, ...}: ri 1 = a copy was removed, 0 = none found.
local m = cf_meta(KEYS[1], KEYS[2])
if not m then
  return {0}
end
local out = {1}
local removed = 0
for a = 1, #ARGV, 2 do
  local fp, h = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local i = cf_index(m, h)
  local j = cf_find(KEYS[1], i, fp)
  if j < 0 then
    i = cf_alt(m, i, fp)
    j = cf_find(KEYS[1], i, fp)
  end
  if j >= 0 then
    cf_write(KEYS[1], i, j, 0)
    removed = removed + 1
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if removed > 0 then
  redis.call('HINCRBY', KEYS[2], 'count', -removed)
end
return out
