-- Shared functions of the cuckoo filter scripts (see common/cache/cuckoo.py).
-- A filter is two keys in one hash slot:
--   buckets: a string of 8 bytes per bucket = 4 big-endian 16-bit fingerprints (0 = empty)
--   meta:    a hash: buckets (a power of two), bits (log2 buckets), capacity, count,
--            saturated (1 = an add failed: answer "maybe" for everything until rebuilt)
-- Items arrive pre-hashed from Python as (fp, h): fp in 1..65535, h a 32-bit hash.
-- Bucket i1 = h & mask; i2 = i1 xor top-bits(fp * 2654435769 mod 2^32) (partial-key
-- cuckoo hashing: either bucket and the fingerprint give the other one).

local function cf_meta(bkey, mkey)
  local m = redis.call('HMGET', mkey, 'buckets', 'bits', 'saturated')
  if not m[1] or redis.call('EXISTS', bkey) == 0 then
    return nil
  end
  local nb = tonumber(m[1])
  return {nb = nb, mask = nb - 1, shift = 2 ^ (32 - tonumber(m[2])), saturated = m[3] == '1'}
end

local function cf_index(m, h)
  return bit.band(h, m.mask)
end

local function cf_alt(m, i, fp)
  local h = (fp * 2654435769) % 4294967296
  return bit.bxor(i, math.floor(h / m.shift))
end

local function cf_bucket(bkey, b)
  return redis.call('GETRANGE', bkey, b * 8, b * 8 + 7)
end

local function cf_slot(s, j)
  local hi, lo = string.byte(s, 2 * j + 1, 2 * j + 2)
  return hi * 256 + lo
end

local function cf_write(bkey, b, j, fp)
  redis.call('SETRANGE', bkey, b * 8 + 2 * j, string.char(math.floor(fp / 256), fp % 256))
end

local function cf_find(bkey, b, fp)
  local s = cf_bucket(bkey, b)
  for j = 0, 3 do
    if cf_slot(s, j) == fp then
      return j
    end
  end
  return -1
end

local function cf_put_empty(bkey, b, fp)
  local s = cf_bucket(bkey, b)
  for j = 0, 3 do
    if cf_slot(s, j) == 0 then
      cf_write(bkey, b, j, fp)
      return true
    end
  end
  return false
end

-- Park-Miller generator, seeded by the caller (scripts must not depend on hidden state).
local cf_seed = 1
local function cf_srand(seed)
  cf_seed = (tonumber(seed) % 2147483646) + 1
end
local function cf_rand(n)
  cf_seed = (cf_seed * 16807) % 2147483647
  return cf_seed % n
end

-- Insert one fingerprint; 1 if stored, 0 if the filter is full. A failed insert undoes
-- every kick it made, so the filter is exactly as before (no fingerprint is lost).
local function cf_insert(bkey, m, fp, h, max_kicks)
  local i1 = cf_index(m, h)
  if cf_put_empty(bkey, i1, fp) then
    return 1
  end
  local i2 = cf_alt(m, i1, fp)
  if i2 ~= i1 and cf_put_empty(bkey, i2, fp) then
    return 1
  end
  local i = i1
  if cf_rand(2) == 1 then
    i = i2
  end
  local cur = fp
  local undo = {}
  for n = 1, max_kicks do
    local j = cf_rand(4)
    local victim = cf_slot(cf_bucket(bkey, i), j)
    cf_write(bkey, i, j, cur)
    undo[n] = {i, j, victim}
    cur = victim
    i = cf_alt(m, i, cur)
    if cf_put_empty(bkey, i, cur) then
      return 1
    end
  end
  for n = #undo, 1, -1 do
    local u = undo[n]
    cf_write(bkey, u[1], u[2], u[3])
  end
  return 0
end

local function cf_now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
