package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Local is an in-process Store: one mutex, counters in maps. It has the
// Redis store's semantics, expiry included, so an instance counts alone
// exactly as a fleet counts together. The zero value is not usable; call
// NewLocal.
type Local struct {
	now func() time.Time

	mu       sync.Mutex
	counters map[counterID]*counter
}

// counter mirrors a Redis counter: used and reserved totals, live
// reservations with their lease expiry, and expired ones still committable.
type counter struct {
	windowed  bool
	start     int64 // window start, Unix ms (windowed kinds)
	used      int64
	reserved  int64
	live      map[string]hold
	late      map[string]int64 // expired reservation id → until when a commit charges, Unix ms
	expireAt  int64            // Unix ms: the counter is garbage after this
	nextPurge int64            // Unix ms: nothing in live or late expires before this
}

type hold struct {
	amount, expiry int64
}

// LocalOptions configures a Local store. The zero value is valid.
type LocalOptions struct {
	// Clock is the store's clock; nil means time.Now. Tests inject a fake.
	Clock func() time.Time
}

// NewLocal returns an empty in-process store.
func NewLocal(opts LocalOptions) *Local {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Local{now: opts.Clock, counters: make(map[counterID]*counter)}
}

var _ Store = (*Local)(nil)

// Reserve implements Store.
func (s *Local) Reserve(_ context.Context, items []Item, leaseFor time.Duration) (Decision, error) {
	if err := validateReserve(items, leaseFor); err != nil {
		return Decision{}, err
	}
	leaseMs := int64(leaseFor) / ms
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()

	cs := make([]*counter, len(items))
	d := Decision{Rejected: -1, States: make([]State, len(items))}
	starts := make([]int64, len(items))
	for i, it := range items {
		c := s.counter(it.Limit, now)
		cs[i] = c
		if it.Kind.Windowed() {
			starts[i] = windowStart(now, it.Window)
		}
		var used, reserved int64
		if c != nil {
			c.purge(now)
			used, reserved = c.used, c.reserved
		}
		if d.Rejected < 0 && used+reserved+it.Amount > it.Max {
			d.Rejected = i
		}
	}
	if d.Rejected < 0 {
		r := &Reservation{owner: s, id: newID(), items: append([]Item(nil), items...), starts: starts, lease: leaseFor}
		for i, it := range items {
			c := cs[i]
			if c == nil {
				c = &counter{windowed: it.Kind.Windowed(), start: starts[i], live: make(map[string]hold), late: make(map[string]int64)}
				s.counters[it.id()] = c
				cs[i] = c
			}
			c.reserved += it.Amount
			c.live[r.id] = hold{amount: it.Amount, expiry: now + leaseMs}
			c.nextPurge = min(c.nextPurge, now+leaseMs)
			c.extend(it.Limit, now, leaseMs)
		}
		d.Reservation = r
	}
	for i, it := range items {
		var used, reserved int64
		if cs[i] != nil {
			used, reserved = cs[i].used, cs[i].reserved
		}
		d.States[i] = state(it, now, starts[i], used, reserved)
	}
	return d, nil
}

// Commit implements Store.
func (s *Local) Commit(_ context.Context, r *Reservation, actual []int64) error {
	if err := validateCommit(s, r, actual); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	for i, it := range r.items {
		c := s.current(it.Limit, r.starts[i], now)
		if c == nil {
			continue // the window has ended, or nothing is held any more
		}
		c.purge(now)
		if l, held := c.live[r.id]; held {
			c.reserved -= l.amount
			delete(c.live, r.id)
		} else if _, late := c.late[r.id]; late {
			delete(c.late, r.id)
		} else {
			continue // committed before
		}
		if it.Kind.Windowed() {
			c.used += actual[i]
		}
	}
	return nil
}

// Renew implements Store.
func (s *Local) Renew(_ context.Context, rs []*Reservation) ([]*Reservation, error) {
	if err := validateRenew(s, rs); err != nil {
		return nil, err
	}
	var lost []*Reservation
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	for _, r := range rs {
		leaseMs := int64(r.lease) / ms
		alive := true
		for i, it := range r.items {
			c := s.current(it.Limit, r.starts[i], now)
			if c == nil {
				alive = alive && it.Kind.Windowed()
				continue
			}
			c.purge(now)
			l, held := c.live[r.id]
			if !held {
				alive = false
				continue
			}
			l.expiry = now + leaseMs
			c.live[r.id] = l
			c.extend(it.Limit, now, leaseMs)
		}
		if !alive {
			lost = append(lost, r)
		}
	}
	return lost, nil
}

// Close implements Store; a Local store holds nothing outside memory.
func (s *Local) Close() error { return nil }

// sweepSample is how many counters each call looks at for expiry.
const sweepSample = 16

// clock returns the store's now in Unix ms and drops expired counters
// among a few: a range over a map starts at a random place, so every call
// pays a bounded price and, over calls, distinct keys cannot grow the map
// without bound (Redis expires keys by sampling the same way).
func (s *Local) clock() int64 {
	now := s.now().UnixMilli()
	n := 0
	for id, c := range s.counters {
		if c.expireAt <= now {
			delete(s.counters, id)
		}
		if n++; n == sweepSample {
			break
		}
	}
	return now
}

// counter returns l's counter as of now, or nil when it holds nothing: a
// windowed counter of an earlier window, or one past its expiry, is
// dropped as Redis drops the keys.
func (s *Local) counter(l Limit, now int64) *counter {
	c := s.counters[l.id()]
	if c == nil {
		return nil
	}
	if c.expireAt <= now || (l.Kind.Windowed() && c.start != windowStart(now, l.Window)) {
		delete(s.counters, l.id())
		return nil
	}
	return c
}

// current returns l's counter if it still counts the window that starts at
// start (any for Concurrent), else nil.
func (s *Local) current(l Limit, start, now int64) *counter {
	c := s.counter(l, now)
	if c == nil || (l.Kind.Windowed() && c.start != start) {
		return nil
	}
	return c
}

// purge refunds reservations whose lease has passed and, on a windowed
// counter, keeps their ids for lateCommit; it forgets those kept longer.
func (c *counter) purge(now int64) {
	if now < c.nextPurge {
		return
	}
	next := int64(1<<63 - 1)
	for id, until := range c.late {
		if until <= now {
			delete(c.late, id)
		} else {
			next = min(next, until)
		}
	}
	for id, l := range c.live {
		if l.expiry > now {
			next = min(next, l.expiry)
			continue
		}
		c.reserved -= l.amount
		delete(c.live, id)
		if c.windowed {
			c.late[id] = now + int64(lateCommit)/ms
			next = min(next, now+int64(lateCommit)/ms)
		}
	}
	c.nextPurge = next
}

// extend moves the counter's expiry as the Redis scripts move the keys'
// TTLs: a windowed counter lives until its window ends, a concurrency
// counter as long as its latest lease; both plus margin.
func (c *counter) extend(l Limit, now, leaseMs int64) {
	if l.Kind.Windowed() {
		c.expireAt = c.start + int64(l.Window)/ms + int64(margin)/ms
		return
	}
	c.expireAt = max(c.expireAt, now+leaseMs+int64(margin)/ms)
}
