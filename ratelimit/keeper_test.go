package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// spyStore wraps a Store and tells a waiting test of each Renew call, once
// it has returned; while block is set, Renew tells on entry and blocks
// until cancelled, and while fail is set it fails.
type spyStore struct {
	Store
	renewed chan int // the size of a Renew call, if the test is waiting
	block   atomic.Bool
	fail    atomic.Bool
}

func newSpy(s Store) *spyStore { return &spyStore{Store: s, renewed: make(chan int)} }

func (s *spyStore) Renew(ctx context.Context, rs []*Reservation) (lost []*Reservation, err error) {
	defer func() {
		select {
		case s.renewed <- len(rs):
		default:
		}
	}()
	if s.block.Load() {
		s.renewed <- len(rs)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if s.fail.Load() {
		return nil, &StoreError{Op: "renew", Err: errors.New("down")}
	}
	return s.Store.Renew(ctx, rs)
}

// spied returns a spy on a local store with a fake clock.
func spied() (*spyStore, *fakeClock) {
	clock := newFakeClock()
	return newSpy(NewLocal(LocalOptions{Clock: clock.Now})), clock
}

func newKeeper(t *testing.T, s Store, lease time.Duration, ev KeeperEvents) *Keeper {
	t.Helper()
	k, err := NewKeeper(s, lease, ev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}

func TestKeeperRenewsEveryLiveReservationInOneCall(t *testing.T) {
	spy, clock := spied()
	k := newKeeper(t, spy, 30*time.Millisecond, KeeperEvents{
		RenewFailed: func(err error) { t.Errorf("renewal failed: %v", err) },
		Lost:        func(r *Reservation) { t.Errorf("reservation %s lost", r.ID()) },
	})
	var rs []*Reservation
	for range 100 {
		d, err := k.Reserve(context.Background(), []Item{item(conc, 0), item(tpm, 1)})
		if err != nil || !d.Admitted() {
			t.Fatalf("Reserve: %+v, %v", d, err)
		}
		rs = append(rs, d.Reservation)
	}
	if n := <-spy.renewed; n != 100 {
		t.Fatalf("a renewal of %d reservations, want all 100 in one call", n)
	}
	// the store's clock moves past several leases, less than one between
	// two renewals: the renewals keep every reservation
	for range 5 {
		clock.Advance(20 * time.Millisecond)
		<-spy.renewed
	}
	for _, r := range rs[:60] {
		if err := k.Commit(context.Background(), r, []int64{0, 1}); err != nil {
			t.Fatal(err)
		}
	}
	if k.Live() != 40 {
		t.Fatalf("%d live after 60 commits, want 40", k.Live())
	}
	if n := <-spy.renewed; n != 40 {
		t.Fatalf("a renewal of %d reservations, want the 40 live", n)
	}
}

func TestKeeperNeverBlocksARequest(t *testing.T) {
	spy, _ := spied()
	spy.block.Store(true)
	k, err := NewKeeper(spy, 30*time.Millisecond, KeeperEvents{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := k.Reserve(context.Background(), []Item{item(conc, 1)})
	if err != nil || !d.Admitted() {
		t.Fatalf("Reserve: %+v, %v", d, err)
	}
	<-spy.renewed // a renewal is stuck in the store now
	start := time.Now()
	for range 100 {
		d, err := k.Reserve(context.Background(), []Item{item(tpm, 1)})
		if err != nil || !d.Admitted() {
			t.Fatalf("Reserve during a stuck renewal: %+v, %v", d, err)
		}
		if err := k.Commit(context.Background(), d.Reservation, []int64{1}); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("100 reservations took %v during a stuck renewal", took)
	}
	// Close cancels the stuck renewal and waits for it
	start = time.Now()
	k.Close()
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("Close took %v", took)
	}
	k.Close() // twice is fine
}

func TestKeeperReportsFailuresAndLostReservations(t *testing.T) {
	spy, clock := spied()
	var mu sync.Mutex
	var failures, lost int
	k := newKeeper(t, spy, 30*time.Millisecond, KeeperEvents{
		RenewFailed: func(err error) {
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("renewal error %v is not ErrUnavailable", err)
			}
			mu.Lock()
			failures++
			mu.Unlock()
		},
		Lost: func(*Reservation) {
			mu.Lock()
			lost++
			mu.Unlock()
		},
	})
	d, err := k.Reserve(context.Background(), []Item{item(conc, 1)})
	if err != nil || !d.Admitted() {
		t.Fatalf("Reserve: %+v, %v", d, err)
	}
	spy.fail.Store(true)
	<-spy.renewed
	<-spy.renewed
	spy.fail.Store(false)
	clock.Advance(31 * time.Millisecond) // the lease passes while renewals fail
	for range 4 {
		<-spy.renewed
	}
	mu.Lock()
	defer mu.Unlock()
	if failures < 1 {
		t.Error("no failed renewal reported")
	}
	if lost != 1 {
		t.Errorf("the lost reservation was reported %d times, want once", lost)
	}
	if k.Live() != 1 {
		t.Errorf("a lost reservation was forgotten before its commit")
	}
}

func TestKeeperArguments(t *testing.T) {
	if _, err := NewKeeper(NewLocal(LocalOptions{}), 2*time.Millisecond, KeeperEvents{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a 2ms lease: %v, want ErrInvalid", err)
	}
	var ev KeeperEvents
	ev.ensureDefaults()
	if ev.RenewFailed == nil || ev.Lost == nil {
		t.Error("ensureDefaults left a callback nil")
	}
}
