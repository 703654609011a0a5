-- Replaces a reservation by its actual amounts, once.
-- KEYS: per item, its counter hash and its lease set.
-- ARGV: id, tombstone ms, margin ms, pinned now ms (0: TIME), then per item:
--       window ms (0: concurrent), window start, actual.
-- Returns: now.
local id, tomb, margin = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = clock(ARGV[4])
local field = '=' .. id
for i = 1, #KEYS / 2 do
  local hk, lk = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 4 + 3 * (i - 1)
  local win, start, actual = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), ARGV[a + 3]
  -- a window that has ended is not charged any more
  if current(hk, win, start) then
    purge(hk, lk, now)
    local amount = redis.call('HGET', hk, field)
    if amount then
      -- HINCRBY refuses "-0", which a zero amount would format to
      if amount ~= '0' then
        redis.call('HINCRBY', hk, 'r', -tonumber(amount))
      end
      redis.call('HDEL', hk, field)
      if win == 0 then
        redis.call('ZREM', lk, id)
      end
    end
    -- no live reservation but a tombstone: committed before
    if win > 0 and (amount or not redis.call('ZSCORE', lk, id)) then
      redis.call('HINCRBY', hk, 'u', actual)
      redis.call('ZADD', lk, now + tomb, id)
      expire(hk, lk, win, start, now, 0, margin)
    end
  end
end
return now
