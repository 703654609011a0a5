// Package ratelimit keeps rate limits, budgets and concurrency limits as
// reservations: a request reserves an estimate on every counter that
// governs it, all at once or not at all, and later commits its actual
// amount exactly once. It has two stores with the same semantics: Local,
// in process, and Redis, shared by many instances.
//
// # Counters
//
// A counter is a Limit: a name, a resolved key value (a tenant, a route),
// a Kind (Requests, Tokens, Cost or Concurrent), a ceiling (Max) and, for
// every kind but Concurrent, a fixed window. Windows are aligned to the
// store's clock (Redis's TIME for the Redis store): a window starts at
// floor(now/window)*window, in Unix milliseconds, and its counter starts
// from zero. A counter holds what was used (committed) and what is
// reserved (admitted, not yet committed).
//
// # Reserve, Commit, Renew
//
// Reserve admits a list of items when, for every one, used + reserved +
// amount ≤ Max, and then reserves every amount; otherwise it takes nothing
// and names the first item, in the order given, that did not fit. Either
// way it returns every item's limit, remaining amount and window reset
// time, for response headers.
//
// Commit replaces each reservation by the actual amount, charged to the
// window the reservation was admitted in (nothing, once that window has
// ended), and releases concurrency slots. An actual amount of zero is
// allowed. A repeated Commit of the same reservation is a no-op, so a
// commit can be retried when its first try may have landed.
//
// Every reservation and slot has a lease. The stores refund a reservation
// whose lease has passed the next time they touch its counter (every
// admission, commit and renewal purges it), so the reservations of a
// process killed with SIGKILL come back within a lease with no one
// cleaning up. Renew extends leases; a Keeper renews every live
// reservation of a store in one call every lease/3 and stops at Commit.
//
// # Units
//
// Amounts are int64 in the kind's unit: requests, tokens, slots, and for
// Cost micro-dollars (MicroDollars converts), so sums over millions of
// requests are exact, where floats would drift. Limits and amounts are at
// most MaxAmount (2^53−1), which Lua numbers hold exactly.
//
// # Redis keys
//
// A counter is two keys, each part of a name escaped with
// url.QueryEscape (so no part holds ':') and replaced by "#" and its
// SHA-256 when longer than 128 bytes escaped:
//
//	{prefix}:rl:{name}:{kind}:{window ms}:{key}         hash
//	{prefix}:rl:{name}:{kind}:{window ms}:{key}:leases  sorted set
//
// The hash holds w (the window start), u (used), r (reserved) and a field
// "=" + id per live reservation with its amount. The sorted set scores each
// live reservation id by its lease expiry. When a lease passes, the
// reservation is refunded and, on a windowed counter, its id stays in the
// set for an hour, so that a late commit (from a holder that lost the store
// for a whole lease) still charges, once; a commit removes its id, which
// makes a repeated commit a no-op. Committed reservations leave nothing.
// Every key expires on its own: a windowed counter 1s after its window
// ends, a concurrency counter 1s after its latest lease; so keys of
// distinct tenants never accumulate. Expiry only collects garbage: the
// scripts never rely on it for correctness.
//
// Each call is one Lua script run (reserve, commit; renew batches many
// reservations per run, in one pipeline), atomic on the server and timed
// by the server's TIME, with EVALSHA and EVAL when the script cache is
// empty (after a restart or SCRIPT FLUSH). Every call is bounded by
// RedisConfig.Timeout, connecting included, and fails with a *StoreError
// (errors.Is(err, ErrUnavailable)) for the caller's fail-open or
// fail-closed policy.
//
// The Redis store needs a single Redis node. Redis Cluster is not
// supported: one admission touches the counters of several limits, whose
// keys hash to different slots, and a script may only touch keys of one
// slot; putting them all in one slot with a hash tag would put every
// counter on one node anyway.
package ratelimit
