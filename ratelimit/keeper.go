package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Keeper reserves with one lease and keeps every live reservation of its
// store renewed until it is committed: one goroutine renews them all every
// lease/3 in a single Renew call. A request never waits for a renewal: the
// Keeper's lock guards only its set of live reservations, never a store
// call.
type Keeper struct {
	store  Store
	lease  time.Duration
	events KeeperEvents

	mu   sync.Mutex
	live map[*Reservation]bool // true once reported lost

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	done   chan struct{}
}

// KeeperEvents are the Keeper's optional callbacks, called from its
// renewal goroutine. A nil callback does nothing.
type KeeperEvents struct {
	// RenewFailed is called with the error of a failed renewal (the store
	// is unavailable); the next tick tries again.
	RenewFailed func(error)
	// Lost is called once for a reservation a renewal found partly
	// expired (refunded by the store); the Keeper keeps renewing the rest
	// of it until it is committed.
	Lost func(*Reservation)
}

func (e *KeeperEvents) ensureDefaults() {
	if e.RenewFailed == nil {
		e.RenewFailed = func(error) {}
	}
	if e.Lost == nil {
		e.Lost = func(*Reservation) {}
	}
}

// NewKeeper starts a Keeper for s whose reservations live for lease unless
// renewed; lease must be at least 3ms. Close stops it. A lease should be
// several times the store's timeout, so that a slow renewal still lands in
// time.
func NewKeeper(s Store, lease time.Duration, events KeeperEvents) (*Keeper, error) {
	if lease < 3*time.Millisecond {
		return nil, fmt.Errorf("%w: keeper lease %v is under 3ms", ErrInvalid, lease)
	}
	events.ensureDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	k := &Keeper{
		store:  s,
		lease:  lease,
		events: events,
		live:   make(map[*Reservation]bool),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go k.run()
	return k, nil
}

// Reserve reserves items in the store with the Keeper's lease and keeps
// the reservation renewed until Commit.
func (k *Keeper) Reserve(ctx context.Context, items []Item) (Decision, error) {
	d, err := k.store.Reserve(ctx, items, k.lease)
	if err == nil && d.Reservation != nil {
		k.mu.Lock()
		k.live[d.Reservation] = false
		k.mu.Unlock()
	}
	return d, err
}

// Commit stops renewing r and commits it (see Store.Commit). r is
// forgotten even when the commit fails: a retry may still commit it, and
// otherwise its lease returns it.
func (k *Keeper) Commit(ctx context.Context, r *Reservation, actual []int64) error {
	k.mu.Lock()
	delete(k.live, r)
	k.mu.Unlock()
	return k.store.Commit(ctx, r, actual)
}

// Live returns how many reservations the Keeper is renewing.
func (k *Keeper) Live() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.live)
}

// Close stops the renewals and waits for the renewal goroutine; a renewal
// in flight is cancelled. Reservations still live come back by their
// lease; Reserve and Commit keep working but renew nothing. Close does not
// close the store.
func (k *Keeper) Close() {
	k.cancel()
	<-k.done
}

func (k *Keeper) run() {
	defer close(k.done)
	t := time.NewTicker(k.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-t.C:
			k.renew(k.ctx)
		}
	}
}

// renew renews a snapshot of the live reservations in one store call.
func (k *Keeper) renew(ctx context.Context) {
	k.mu.Lock()
	rs := make([]*Reservation, 0, len(k.live))
	for r := range k.live {
		rs = append(rs, r)
	}
	k.mu.Unlock()
	if len(rs) == 0 {
		return
	}
	lost, err := k.store.Renew(ctx, rs)
	if err != nil {
		if ctx.Err() == nil {
			k.events.RenewFailed(err)
		}
		return
	}
	var report []*Reservation
	k.mu.Lock()
	for _, r := range lost {
		if reported, live := k.live[r]; live && !reported {
			k.live[r] = true
			report = append(report, r)
		}
	}
	k.mu.Unlock()
	for _, r := range report {
		k.events.Lost(r)
	}
}
