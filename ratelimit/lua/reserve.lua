-- Admits every item or none.
-- KEYS: per item, its counter hash and its lease set.
-- ARGV: id, lease ms, margin ms, late ms, pinned now ms (0: TIME), then
--       per item: window ms (0: concurrent), max, amount.
-- Returns: admitted (1/0), first rejected item (1-based, 0: none), now,
--          then per item: window start, used, reserved.
local id, lease, margin, late = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = clock(ARGV[5])
local field = '=' .. id
local n = #KEYS / 2
local rejected = 0
local st = {}
for i = 1, n do
  local hk, lk = KEYS[2 * i - 1], KEYS[2 * i]
  local a = 5 + 3 * (i - 1)
  local win, max, amount = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local start = 0
  if win > 0 then
    start = now - now % win
    if not current(hk, win, start) then
      redis.call('DEL', hk, lk)
    end
  end
  purge(hk, lk, win, now, late)
  local v = redis.call('HMGET', hk, 'u', 'r', field)
  local used, reserved = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  -- a retried call whose first try landed finds its own reservation
  local held = v[3] ~= false
  if rejected == 0 and not held and used + reserved + amount > max then
    rejected = i
  end
  st[i] = {win, amount, start, used, reserved, held}
end
local out = {0, rejected, now}
if rejected == 0 then
  out[1] = 1
end
for i = 1, n do
  local hk, lk = KEYS[2 * i - 1], KEYS[2 * i]
  local win, amount, start, used, reserved, held = unpack(st[i])
  if rejected == 0 and not held then
    if win > 0 then
      redis.call('HSET', hk, 'w', start)
    end
    redis.call('HINCRBY', hk, 'r', ARGV[5 + 3 * (i - 1) + 3])
    redis.call('HSET', hk, field, ARGV[5 + 3 * (i - 1) + 3])
    redis.call('ZADD', lk, now + lease, id)
    expire(hk, lk, win, start, now, lease, margin)
    reserved = reserved + amount
  end
  out[#out + 1] = start
  out[#out + 1] = used
  out[#out + 1] = reserved
end
return out
