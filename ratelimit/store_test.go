package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/internal/redistest"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(holderEnv); addr != "" {
		os.Exit(runHolder(addr))
	}
	// go-redis logs every failed dial; the outage tests make many on purpose
	redis.SetLogger(quiet{})
	goleak.VerifyTestMain(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// epoch is the fake clocks' start: a whole hour, so windows of a second, a
// minute or an hour all start there.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newRedisStore returns a store on srv under a key prefix of its own, with
// its clock pinned to clock when clock is not nil (else the server's TIME).
func newRedisStore(t testing.TB, srv *redistest.Server, clock func() time.Time) *Redis {
	t.Helper()
	s, err := NewRedis(RedisConfig{Address: srv.Addr(), Timeout: 2 * time.Second, KeyPrefix: prefixFor(t)})
	if err != nil {
		t.Fatal(err)
	}
	s.pinned = clock
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// prefixFor names a test's keys after the test, so tests sharing a server
// cannot see each other's counters.
func prefixFor(t testing.TB) string {
	return "t:" + strings.NewReplacer(" ", "_", "/", ".").Replace(t.Name())
}

// eachStore runs f on a Local store and on a Redis store, both on a fake
// clock at epoch: every behaviour is the same on both.
func eachStore(t *testing.T, f func(t *testing.T, s Store, clock *fakeClock)) {
	t.Run("local", func(t *testing.T) {
		clock := newFakeClock()
		f(t, NewLocal(LocalOptions{Clock: clock.Now}), clock)
	})
	t.Run("redis", func(t *testing.T) {
		clock := newFakeClock()
		f(t, newRedisStore(t, redistest.Start(t), clock.Now), clock)
	})
}

var (
	tpm  = Limit{Name: "tenant-tpm", Key: "acme", Kind: Tokens, Max: 100, Window: time.Minute}
	rpm  = Limit{Name: "tenant-rpm", Key: "acme", Kind: Requests, Max: 2, Window: time.Minute}
	conc = Limit{Name: "tenant-concurrency", Key: "acme", Kind: Concurrent, Max: 3}
)

func item(l Limit, amount int64) Item { return Item{Limit: l, Amount: amount} }

func reserve(t *testing.T, s Store, lease time.Duration, items ...Item) Decision {
	t.Helper()
	d, err := s.Reserve(context.Background(), items, lease)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if len(d.States) != len(items) {
		t.Fatalf("Reserve: %d states for %d items", len(d.States), len(items))
	}
	if d.Admitted() != (d.Rejected == -1) {
		t.Fatalf("Reserve: admitted %v but rejected index %d", d.Admitted(), d.Rejected)
	}
	return d
}

func commit(t *testing.T, s Store, r *Reservation, actual ...int64) {
	t.Helper()
	if err := s.Commit(context.Background(), r, actual); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// remaining reserves nothing on l and returns what remains of it.
func remaining(t *testing.T, s Store, l Limit) int64 {
	t.Helper()
	d := reserve(t, s, time.Second, item(l, 0))
	if d.Admitted() {
		commit(t, s, d.Reservation, 0)
	}
	return d.States[0].Remaining
}

// wantLeft fails the test unless l has want remaining; why says when.
func wantLeft(t *testing.T, s Store, l Limit, want int64, why string) {
	t.Helper()
	if got := remaining(t, s, l); got != want {
		t.Errorf("%s %s: %d remaining, want %d", l.Name, why, got, want)
	}
}

func wantRemaining(t *testing.T, d Decision, want ...int64) {
	t.Helper()
	for i, w := range want {
		if got := d.States[i].Remaining; got != w {
			t.Errorf("item %d: remaining %d, want %d", i, got, w)
		}
	}
}

const lease = 10 * time.Second

func TestReserveIsAllOrNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		d := reserve(t, s, lease, item(tpm, 60), item(rpm, 1), item(conc, 1))
		if !d.Admitted() {
			t.Fatalf("first reservation rejected at %d", d.Rejected)
		}
		wantRemaining(t, d, 40, 1, 2)

		// tokens do not fit: nothing is taken from requests or slots
		d = reserve(t, s, lease, item(tpm, 50), item(rpm, 1), item(conc, 1))
		if d.Admitted() || d.Rejected != 0 {
			t.Fatalf("admitted %v, rejected %d; want rejected at 0", d.Admitted(), d.Rejected)
		}
		wantRemaining(t, d, 40, 1, 2)

		// the first item that does not fit is named, in the order given
		d = reserve(t, s, lease, item(conc, 1), item(rpm, 1), item(tpm, 41))
		if d.Rejected != 2 {
			t.Fatalf("rejected %d, want 2", d.Rejected)
		}
		wantRemaining(t, d, 2, 1, 40)

		// an exact fit is admitted
		d = reserve(t, s, lease, item(tpm, 40), item(rpm, 1), item(conc, 1))
		if !d.Admitted() {
			t.Fatalf("exact fit rejected at %d", d.Rejected)
		}
		wantRemaining(t, d, 0, 0, 1)

		d = reserve(t, s, lease, item(conc, 1), item(rpm, 1))
		if d.Rejected != 1 {
			t.Fatalf("rejected %d, want 1 (requests)", d.Rejected)
		}
		wantLeft(t, s, conc, 1, "a rejected reservation took a slot")
	})
}

func TestWindowsAlignToTheStoreClock(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, clock *fakeClock) {
		clock.Advance(45*time.Second + 500*time.Millisecond)
		d := reserve(t, s, lease, item(tpm, 100), item(conc, 1))
		st := d.States[0]
		if want := epoch.Add(time.Minute); !st.Reset.Equal(want) {
			t.Errorf("reset %v, want %v", st.Reset, want)
		}
		if st.ResetIn != 14500*time.Millisecond || st.RetryAfter() != 15 {
			t.Errorf("reset in %v (retry after %ds), want 14.5s (15s)", st.ResetIn, st.RetryAfter())
		}
		if c := d.States[1]; !c.Reset.IsZero() || c.ResetIn != 0 || c.RetryAfter() != 0 {
			t.Errorf("a concurrency limit has a reset: %+v", c)
		}
		commit(t, s, d.Reservation, 100, 0)

		clock.Advance(14499 * time.Millisecond)
		if d := reserve(t, s, lease, item(tpm, 1)); d.Admitted() {
			t.Fatal("admitted before the window ended")
		}
		clock.Advance(time.Millisecond)
		d = reserve(t, s, lease, item(tpm, 100))
		if !d.Admitted() {
			t.Fatal("the next window did not start from zero")
		}
		if want := epoch.Add(2 * time.Minute); !d.States[0].Reset.Equal(want) {
			t.Errorf("reset %v, want %v", d.States[0].Reset, want)
		}
	})
}

func TestCommitReplacesTheReservation(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		d := reserve(t, s, lease, item(tpm, 60), item(rpm, 1), item(conc, 1))
		commit(t, s, d.Reservation, 25, 1, 0)
		wantLeft(t, s, tpm, 75, "")
		wantLeft(t, s, rpm, 1, "")
		wantLeft(t, s, conc, 3, "released at commit")

		// an actual above the estimate is charged in full; zero is allowed
		d = reserve(t, s, lease, item(tpm, 10), item(rpm, 1))
		commit(t, s, d.Reservation, 90, 0)
		wantLeft(t, s, tpm, 0, "")
		wantLeft(t, s, rpm, 1, "after an actual of 0")
	})
}

func TestCommitIsIdempotent(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, clock *fakeClock) {
		d := reserve(t, s, lease, item(tpm, 60), item(conc, 1))
		commit(t, s, d.Reservation, 30, 0)
		other := reserve(t, s, lease, item(tpm, 10), item(conc, 1))
		commit(t, s, d.Reservation, 30, 0) // a retry whose first try landed
		clock.Advance(lease / 2)
		commit(t, s, d.Reservation, 30, 0)
		wantLeft(t, s, tpm, 60, "charged twice or released another's reservation")
		wantLeft(t, s, conc, 2, "the other reservation's slot was released")
		commit(t, s, other.Reservation, 10, 0)
	})
}

func TestCommitAfterTheWindowEnded(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, clock *fakeClock) {
		d := reserve(t, s, time.Hour, item(tpm, 60), item(conc, 1))
		clock.Advance(time.Minute + time.Second)
		later := reserve(t, s, lease, item(tpm, 30))
		commit(t, s, d.Reservation, 80, 0)
		wantLeft(t, s, tpm, 70, "the next window was charged for the last")
		wantLeft(t, s, conc, 3, "")
		commit(t, s, later.Reservation, 30)
	})
}

func TestExpiredLeasesAreRefunded(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, clock *fakeClock) {
		d := reserve(t, s, lease, item(tpm, 60), item(conc, 3))
		clock.Advance(lease - time.Millisecond)
		wantLeft(t, s, conc, 0, "before the lease ended")
		clock.Advance(time.Millisecond)
		wantLeft(t, s, tpm, 100, "after the lease")
		wantLeft(t, s, conc, 3, "after the lease")
		lost, err := s.Renew(context.Background(), []*Reservation{d.Reservation})
		if err != nil || len(lost) != 1 {
			t.Fatalf("Renew of an expired reservation: lost %v, %v; want it lost", lost, err)
		}
		// a late commit still charges what was used, once
		commit(t, s, d.Reservation, 40, 0)
		commit(t, s, d.Reservation, 40, 0)
		wantLeft(t, s, tpm, 60, "after a late commit")
		wantLeft(t, s, conc, 3, "after a late commit")
	})
}

func TestLateCommitsChargeForAnHour(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, clock *fakeClock) {
		budget := Limit{Name: "budget", Key: "acme", Kind: Cost, Max: 1000, Window: 24 * time.Hour}
		early := reserve(t, s, lease, item(budget, 100))
		late := reserve(t, s, lease, item(budget, 100))
		clock.Advance(lease)
		wantLeft(t, s, budget, 1000, "after the leases")
		clock.Advance(lateCommit - time.Millisecond)
		commit(t, s, early.Reservation, 70)
		commit(t, s, early.Reservation, 70)
		clock.Advance(time.Millisecond)
		commit(t, s, late.Reservation, 80)
		wantLeft(t, s, budget, 930, "the commit within the hour charged once, the later one nothing")
	})
}

func TestRenewKeepsAReservationPastItsLease(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, clock *fakeClock) {
		d := reserve(t, s, lease, item(tpm, 60), item(conc, 1))
		for range 5 {
			clock.Advance(lease - time.Second)
			lost, err := s.Renew(context.Background(), []*Reservation{d.Reservation})
			if err != nil || len(lost) != 0 {
				t.Fatalf("Renew: lost %v, %v", lost, err)
			}
		}
		wantLeft(t, s, conc, 2, "after renewals")
		wantLeft(t, s, tpm, 40, "after renewals")
		clock.Advance(lease)
		wantLeft(t, s, conc, 3, "after the last lease")
	})
}

func TestRenewManyReservationsAtOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, clock *fakeClock) {
		// more keys than one renew script run takes
		many := Limit{Name: "many", Kind: Concurrent, Max: 1000}
		var rs []*Reservation
		for i := range 600 {
			l := many
			l.Key = string(rune('a' + i%26))
			d := reserve(t, s, lease, item(l, 1), item(tpm, 0))
			rs = append(rs, d.Reservation)
		}
		clock.Advance(lease - time.Millisecond)
		lost, err := s.Renew(context.Background(), rs[1:])
		if err != nil || len(lost) != 0 {
			t.Fatalf("Renew: lost %d, %v", len(lost), err)
		}
		clock.Advance(time.Millisecond)
		lost, err = s.Renew(context.Background(), rs)
		if err != nil || len(lost) != 1 || lost[0] != rs[0] {
			t.Fatalf("Renew: lost %d, %v; want only the first", len(lost), err)
		}
		a := many
		a.Key = "a"
		if got := remaining(t, s, a); got != 1000-23 {
			t.Errorf("slots of key a remaining %d, want %d", got, 1000-23)
		}
	})
}

func TestConcurrencySlots(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		var held []*Reservation
		for range 3 {
			d := reserve(t, s, lease, item(conc, 1))
			if !d.Admitted() {
				t.Fatal("a free slot was refused")
			}
			held = append(held, d.Reservation)
		}
		if d := reserve(t, s, lease, item(conc, 1)); d.Admitted() || d.States[0].Remaining != 0 {
			t.Fatalf("a fourth slot: admitted %v, remaining %d", d.Admitted(), d.States[0].Remaining)
		}
		commit(t, s, held[1], 0)
		commit(t, s, held[1], 0)
		wantLeft(t, s, conc, 1, "")
		d := reserve(t, s, lease, item(conc, 1))
		if !d.Admitted() {
			t.Fatal("a released slot was not reusable")
		}
	})
}

func TestCountersAreIndependent(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		long := strings.Repeat("k", 1000)
		limits := []Limit{
			{Name: "a", Key: "b:c", Kind: Tokens, Max: 10, Window: time.Minute},
			{Name: "a:b", Key: "c", Kind: Tokens, Max: 10, Window: time.Minute},
			{Name: "a", Key: "b:c", Kind: Requests, Max: 10, Window: time.Minute},
			{Name: "a", Key: "b:c", Kind: Tokens, Max: 10, Window: time.Hour},
			{Name: "a", Key: "", Kind: Tokens, Max: 10, Window: time.Minute},
			{Name: "a", Key: long, Kind: Tokens, Max: 10, Window: time.Minute},
			{Name: "a", Key: long + "x", Kind: Tokens, Max: 10, Window: time.Minute},
			{Name: "a", Key: "#", Kind: Tokens, Max: 10, Window: time.Minute},
		}
		for i, l := range limits {
			if d := reserve(t, s, lease, item(l, int64(i+1))); !d.Admitted() {
				t.Fatalf("limit %d rejected", i)
			}
		}
		for i, l := range limits {
			if got := remaining(t, s, l); got != 10-int64(i+1) {
				t.Errorf("limit %d (%q, %q): remaining %d, want %d", i, l.Name, l.Key[:min(len(l.Key), 8)], got, 10-i-1)
			}
		}
	})
}

func TestLocalForgetsExpiredCounters(t *testing.T) {
	clock := newFakeClock()
	s := NewLocal(LocalOptions{Clock: clock.Now})
	for i := range 10_000 {
		key := fmt.Sprint("tenant-", i)
		d := reserve(t, s, time.Second,
			item(Limit{Name: "rps", Key: key, Kind: Requests, Max: 1, Window: time.Second}, 1),
			item(Limit{Name: "slots", Key: key, Kind: Concurrent, Max: 1}, 1))
		if i%2 == 0 {
			commit(t, s, d.Reservation, 1, 0)
		}
	}
	clock.Advance(time.Second + margin)
	for ops := 0; len(s.counters) > 1; ops++ {
		if ops == 100_000 {
			t.Fatalf("%d counters left after %d more calls", len(s.counters), ops)
		}
		remaining(t, s, tpm)
	}
}

func TestLargestAmountsAreExact(t *testing.T) {
	eachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		budget := Limit{Name: "budget", Key: "acme", Kind: Cost, Max: MaxAmount, Window: 720 * time.Hour}
		d := reserve(t, s, lease, item(budget, MaxAmount-1))
		wantRemaining(t, d, 1)
		commit(t, s, d.Reservation, MaxAmount-3)
		wantLeft(t, s, budget, 3, "")
		if d := reserve(t, s, lease, item(budget, 4)); d.Admitted() {
			t.Fatal("admitted over the limit")
		}
	})
}

func TestInvalidArguments(t *testing.T) {
	ok := item(tpm, 1)
	cases := []struct {
		name  string
		items []Item
		lease time.Duration
	}{
		{"no items", nil, lease},
		{"too many items", make([]Item, MaxItems+1), lease},
		{"no lease", []Item{ok}, 0},
		{"empty name", []Item{item(Limit{Kind: Tokens, Max: 1, Window: time.Second}, 1)}, lease},
		{"no kind", []Item{item(Limit{Name: "x", Max: 1, Window: time.Second}, 1)}, lease},
		{"negative amount", []Item{item(tpm, -1)}, lease},
		{"amount over 2^53", []Item{item(tpm, MaxAmount+1)}, lease},
		{"negative max", []Item{item(Limit{Name: "x", Kind: Tokens, Max: -1, Window: time.Second}, 1)}, lease},
		{"no window", []Item{item(Limit{Name: "x", Kind: Tokens, Max: 1}, 1)}, lease},
		{"sub-millisecond window", []Item{item(Limit{Name: "x", Kind: Tokens, Max: 1, Window: 1500 * time.Microsecond}, 1)}, lease},
		{"windowed slots", []Item{item(Limit{Name: "x", Kind: Concurrent, Max: 1, Window: time.Second}, 1)}, lease},
		{"same counter twice", []Item{ok, item(tpm, 2)}, lease},
	}
	eachStore(t, func(t *testing.T, s Store, _ *fakeClock) {
		for _, c := range cases {
			if _, err := s.Reserve(context.Background(), c.items, c.lease); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v, want ErrInvalid", c.name, err)
			}
		}
		d := reserve(t, s, lease, ok)
		for _, actual := range [][]int64{nil, {1, 2}, {-1}, {MaxAmount + 1}} {
			if err := s.Commit(context.Background(), d.Reservation, actual); !errors.Is(err, ErrInvalid) {
				t.Errorf("Commit %v: %v, want ErrInvalid", actual, err)
			}
		}
		foreign := reserve(t, NewLocal(LocalOptions{}), lease, ok).Reservation
		if err := s.Commit(context.Background(), foreign, []int64{1}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Commit of another store's reservation: %v, want ErrInvalid", err)
		}
		if _, err := s.Renew(context.Background(), []*Reservation{d.Reservation, foreign}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Renew of another store's reservation: %v, want ErrInvalid", err)
		}
		if err := s.Commit(context.Background(), nil, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Commit(nil): %v, want ErrInvalid", err)
		}
	})
}

func TestMicroDollars(t *testing.T) {
	for _, c := range []struct {
		dollars float64
		want    int64
	}{{0, 0}, {0.15, 150000}, {50, 50_000_000}, {0.0000004, 0}, {0.0000005, 1}, {1e-6 * 3, 3}} {
		got, err := MicroDollars(c.dollars)
		if err != nil || got != c.want {
			t.Errorf("MicroDollars(%v) = %d, %v; want %d", c.dollars, got, err, c.want)
		}
	}
	for _, bad := range []float64{-0.01, 1e10, float64(MaxAmount)} {
		if _, err := MicroDollars(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("MicroDollars(%v): %v, want ErrInvalid", bad, err)
		}
	}
	// a million requests at 0.1 cents each sum exactly
	var sum int64
	for range 1_000_000 {
		m, _ := MicroDollars(0.001)
		sum += m
	}
	if Dollars(sum) != 1000 {
		t.Errorf("a million times $0.001 is $%v", Dollars(sum))
	}
}
