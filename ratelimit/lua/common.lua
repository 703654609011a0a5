-- Shared by every script; see the package doc for the key layout.
-- A counter is two keys: a hash (w: window start, u: used, r: reserved,
-- "=" .. id: a live reservation's amount) and a sorted set of ids scored by
-- expiry (a live reservation's lease, or a committed one's tombstone).

-- now returns the store's clock in Unix ms: the server's TIME, unless the
-- caller pins it (a positive value, used by tests only).
local function clock(pinned)
  pinned = tonumber(pinned)
  if pinned > 0 then
    return pinned
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- purge refunds the reservations whose lease has passed and drops expired
-- tombstones, so a crashed holder's reservations come back by themselves.
local function purge(hk, lk, now)
  local ids = redis.call('ZRANGEBYSCORE', lk, '-inf', now)
  if #ids == 0 then
    return
  end
  local freed = 0
  for _, id in ipairs(ids) do
    local f = '=' .. id
    local a = redis.call('HGET', hk, f)
    if a then
      freed = freed + tonumber(a)
      redis.call('HDEL', hk, f)
    end
  end
  if freed > 0 then
    redis.call('HINCRBY', hk, 'r', -freed)
  end
  redis.call('ZREMRANGEBYSCORE', lk, '-inf', now)
end

-- current reports whether hk still counts the window that starts at start
-- (always true for a concurrency counter, whose window is 0).
local function current(hk, win, start)
  if win == 0 then
    return true
  end
  return tonumber(redis.call('HGET', hk, 'w')) == start
end

-- expire sets the keys' TTLs: a windowed counter lives until its window
-- ends, a concurrency counter as long as its latest lease; both plus margin.
local function expire(hk, lk, win, start, now, lease, margin)
  if win > 0 then
    local ttl = start + win + margin - now
    redis.call('PEXPIRE', hk, ttl)
    redis.call('PEXPIRE', lk, ttl)
    return
  end
  local want = lease + margin
  for _, k in ipairs({hk, lk}) do
    if redis.call('PTTL', k) < want then
      redis.call('PEXPIRE', k, want)
    end
  end
end
