-- Shared by every script; see the package doc for the key layout.
-- A counter is two keys: a hash (w: window start, u: used, r: reserved,
-- "=" .. id: a live reservation's amount) and a sorted set of ids scored by
-- expiry: a live reservation's lease, or how long an expired one may still
-- be committed (windowed counters only).

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

-- purge refunds the reservations whose lease has passed, so a crashed
-- holder's reservations come back by themselves. On a windowed counter
-- (win > 0) it keeps each expired id for late ms: a holder that lost the
-- store for a lease may still commit it, and that commit charges, once.
local function purge(hk, lk, win, now, late)
  local ids = redis.call('ZRANGEBYSCORE', lk, '-inf', now)
  if #ids == 0 then
    return
  end
  local freed, expired = 0, {}
  for _, id in ipairs(ids) do
    local f = '=' .. id
    local a = redis.call('HGET', hk, f)
    if a then
      freed = freed + tonumber(a)
      redis.call('HDEL', hk, f)
      expired[#expired + 1] = id
    end
  end
  if freed > 0 then
    redis.call('HINCRBY', hk, 'r', -freed)
  end
  redis.call('ZREMRANGEBYSCORE', lk, '-inf', now)
  if win > 0 then
    for _, id in ipairs(expired) do
      redis.call('ZADD', lk, now + late, id)
    end
  end
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
