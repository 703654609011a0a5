-- Replaces a reservation by its actual amounts, once: a commit finds the
-- live reservation, or the expired one kept by purge, and removes it, so a
-- repeated commit finds nothing.
-- KEYS: per item, its counter hash and its lease set.
-- ARGV: id, late ms, pinned now ms (0: TIME), then per item: window ms
--       (0: concurrent), window start, actual.
-- Returns: now.
local id, late = ARGV[1], tonumber(ARGV[2])
local now = clock(ARGV[3])
local field = '=' .. id
for i = 1, #KEYS / 2 do
  local hk, lk = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 3 + 3 * (i - 1)
  local win, start, actual = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), ARGV[a + 3]
  -- a window that has ended is not charged any more
  if current(hk, win, start) then
    purge(hk, lk, win, now, late)
    local amount = redis.call('HGET', hk, field)
    if amount then
      -- HINCRBY refuses "-0", which a zero amount would format to
      if amount ~= '0' then
        redis.call('HINCRBY', hk, 'r', -tonumber(amount))
      end
      redis.call('HDEL', hk, field)
    end
    -- the id was live or kept after expiry: charge it, once
    if redis.call('ZREM', lk, id) == 1 and win > 0 then
      redis.call('HINCRBY', hk, 'u', actual)
    end
  end
end
return now
