-- Check items. KEYS[1] buckets, KEYS[2] meta; ARGV pairs fp, h.
-- Returns {0} when the filter cannot exclude anything (missing or saturated), else
-- {1, r1, r2, ...} with ri 1 = maybe present, 0 = definitely absent.
local m = cf_meta(KEYS[1], KEYS[2])
if not m or m.saturated then
  return {0}
end
local out = {1}
for a = 1, #ARGV, 2 do
  local fp, h = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local i1 = cf_index(m, h)
  local r = 0
  if cf_find(KEYS[1], i1, fp) >= 0 or cf_find(KEYS[1], cf_alt(m, i1, fp), fp) >= 0 then
    r = 1
  end
  out[#out + 1] = r
end
return out
