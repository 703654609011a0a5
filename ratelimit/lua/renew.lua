-- Extends the leases of many reservations in one call.
-- KEYS: per item of every reservation, its counter hash and its lease set.
-- ARGV: margin ms, late ms, pinned now ms (0: TIME), then per reservation: id,
--       lease ms, item count, then per item: window ms (0: concurrent),
--       window start.
-- Returns: per reservation, 1 if every item still held was renewed, 0 if a
--          part had expired (lost).
local margin, late = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = clock(ARGV[3])
local a, k = 4, 1
local out = {}
while a <= #ARGV do
  local id, lease, n = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local field = '=' .. id
  a = a + 3
  local alive = 1
  for _ = 1, n do
    local hk, lk = KEYS[k], KEYS[k + 1]
    local win, start = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    k, a = k + 2, a + 2
    -- an ended window needs no lease: its counter no longer counts
    if current(hk, win, start) then
      purge(hk, lk, win, now, late)
      if redis.call('HEXISTS', hk, field) == 1 then
        redis.call('ZADD', lk, 'XX', now + lease, id)
        expire(hk, lk, win, start, now, lease, margin)
      else
        alive = 0
      end
    end
  end
  out[#out + 1] = alive
end
return out
