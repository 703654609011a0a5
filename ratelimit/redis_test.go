package ratelimit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/phasegate/phasegate/internal/redistest"
)

// rawClient is a plain client on srv, to look at keys and flush scripts.
func rawClient(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisWindowsFollowServerTime(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, srv, nil)
	second := Limit{Name: "rps", Kind: Requests, Max: 2, Window: time.Second}
	var reset time.Time
	for range 2 {
		d := reserve(t, s, lease, item(second, 1))
		if !d.Admitted() {
			// the window turned between the two: start over in this one
			t.Skip("a window boundary fell between two calls")
		}
		reset = d.States[0].Reset
	}
	if reset.UnixMilli()%1000 != 0 {
		t.Fatalf("reset %v is not aligned to the second", reset)
	}
	if d := reserve(t, s, lease, item(second, 1)); d.Admitted() {
		t.Fatal("a third request in one second was admitted")
	}
	time.Sleep(time.Until(reset) + 20*time.Millisecond)
	if d := reserve(t, s, lease, item(second, 1)); !d.Admitted() {
		t.Fatalf("not admitted after the reset (%v)", reset)
	}
}

// holderEnv makes the test binary a reservation holder (see runHolder).
const holderEnv = "PHASEGATE_RATELIMIT_HOLDER"

// runHolder is the child process of TestRedisLeaseExpiryAfterKill: it
// reserves every slot and the whole tokens limit through a Keeper, prints
// "held", and keeps renewing until it is killed.
func runHolder(addr string) int {
	s, err := NewRedis(RedisConfig{Address: addr, Timeout: time.Second, KeyPrefix: os.Getenv(holderEnv + "_PREFIX")})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	k, err := NewKeeper(s, holderLease, KeeperEvents{})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	d, err := k.Reserve(context.Background(), []Item{item(tpm, tpm.Max), item(conc, conc.Max)})
	if err != nil || !d.Admitted() {
		fmt.Println("not held:", err)
		return 1
	}
	fmt.Println("held")
	time.Sleep(time.Minute)
	return 1
}

const holderLease = 600 * time.Millisecond

func TestRedisLeaseExpiryAfterKill(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, srv, nil)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+srv.Addr(), holderEnv+"_PREFIX="+prefixFor(t))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("holder: %q, %v", line, err)
	}

	// alive, the holder keeps its reservation past the lease
	time.Sleep(3 * holderLease)
	if d := reserve(t, s, lease, item(conc, 1)); d.Admitted() {
		t.Fatal("a slot came back while its holder was alive and renewing")
	}

	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	start := time.Now()
	for {
		d := reserve(t, s, lease, item(tpm, tpm.Max), item(conc, conc.Max))
		if d.Admitted() {
			commit(t, s, d.Reservation, 0, 0)
			break
		}
		// A lease after the kill at most; the second is the slack a busy
		// machine needs for the calls of this loop.
		if time.Since(start) > holderLease+time.Second {
			t.Fatalf("the killed holder's reservation was not back within its lease (%v): %+v", holderLease, d.States)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("back %v after the kill (lease %v)", time.Since(start).Round(time.Millisecond), holderLease)
}

func TestRedisKeeperRenewsPastTheLease(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, srv, nil)
	one := Limit{Name: "one", Kind: Concurrent, Max: 1}
	k, err := NewKeeper(s, 300*time.Millisecond, KeeperEvents{
		RenewFailed: func(err error) { t.Errorf("renewal failed: %v", err) },
		Lost:        func(r *Reservation) { t.Errorf("reservation %s lost", r.ID()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	d, err := k.Reserve(context.Background(), []Item{item(one, 1)})
	if err != nil || !d.Admitted() {
		t.Fatalf("Reserve: %+v, %v", d, err)
	}
	time.Sleep(time.Second)
	wantLeft(t, s, one, 0, "the slot came back while renewed")
	if err := k.Commit(context.Background(), d.Reservation, []int64{0}); err != nil {
		t.Fatal(err)
	}
	wantLeft(t, s, one, 1, "the slot was not released at commit")
	if k.Live() != 0 {
		t.Fatalf("the keeper still renews %d reservations", k.Live())
	}
}

// within runs f and fails unless it returns an ErrUnavailable within the
// store's timeout and a little.
func within(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	start := time.Now()
	err := f()
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("%s: %v, want ErrUnavailable", what, err)
	}
	var se *StoreError
	if !errors.As(err, &se) || se.Op == "" {
		t.Errorf("%s: %v is not a *StoreError with its operation", what, err)
	}
	// Half the timeout of slack for a busy machine's scheduling, less than
	// a second try would take.
	if took > timeout+timeout/2 {
		t.Errorf("%s took %v, over the timeout %v", what, took, timeout)
	}
}

func TestRedisCallsAreBoundedByTheTimeout(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 300 * time.Millisecond
	s, err := NewRedis(RedisConfig{Address: srv.Addr(), Timeout: timeout, KeyPrefix: prefixFor(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	d := reserve(t, s, lease, item(tpm, 1), item(conc, 1))

	// a hung server: connections stay open and nothing answers
	srv.Pause()
	var wg sync.WaitGroup
	for range 20 { // more calls than idle connections: new dials hang too
		wg.Go(func() {
			within(t, timeout, "Reserve on a paused server", func() error {
				_, err := s.Reserve(ctx, []Item{item(tpm, 1)}, lease)
				return err
			})
		})
	}
	wg.Wait()
	within(t, timeout, "Commit on a paused server", func() error { return s.Commit(ctx, d.Reservation, []int64{1, 0}) })
	within(t, timeout, "Renew on a paused server", func() error {
		_, err := s.Renew(ctx, []*Reservation{d.Reservation})
		return err
	})
	within(t, timeout, "Reserve timing out", func() error {
		_, err := s.Reserve(ctx, []Item{item(tpm, 1)}, lease)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("a timeout is not a DeadlineExceeded: %v", err)
		}
		return err
	})
	srv.Resume()
	eventually(t, "a resumed server", func() error {
		_, err := s.Reserve(ctx, []Item{item(tpm, 1)}, lease)
		return err
	})

	// a stopped server: connections are refused
	srv.Stop()
	within(t, timeout, "Reserve on a stopped server", func() error {
		_, err := s.Reserve(ctx, []Item{item(tpm, 1)}, lease)
		return err
	})
}

// eventually retries f for up to 5s until it succeeds.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 5s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisAuthAndDatabase(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	raw := rawClient(t, srv)
	if err := raw.Do(ctx, "ACL", "SETUSER", "limiter", "on", ">s3cret", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	if err := raw.ConfigSet(ctx, "requirepass", "default-pass").Err(); err != nil {
		t.Fatal(err)
	}
	open := func(cfg RedisConfig) (Decision, error) {
		cfg.Address, cfg.KeyPrefix = srv.Addr(), prefixFor(t)
		s, err := NewRedis(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		return s.Reserve(ctx, []Item{item(tpm, 1)}, lease)
	}
	if _, err := open(RedisConfig{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("without a password: %v, want ErrUnavailable", err)
	}
	if _, err := open(RedisConfig{Username: "limiter", Password: "wrong"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("with a wrong password: %v, want ErrUnavailable", err)
	}
	if d, err := open(RedisConfig{Password: "default-pass"}); err != nil || !d.Admitted() {
		t.Errorf("with requirepass: %+v, %v", d, err)
	}
	if d, err := open(RedisConfig{Username: "limiter", Password: "s3cret", DB: 3}); err != nil || !d.Admitted() {
		t.Fatalf("with an ACL user: %+v, %v", d, err)
	}
	db3 := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: "default-pass", DB: 3})
	defer db3.Close()
	if n, err := db3.Keys(ctx, prefixFor(t)+":*").Result(); err != nil || len(n) != 2 {
		t.Errorf("keys in db 3: %v, %v; want the counter's two", n, err)
	}
}

func TestRedisRecoversFromARestart(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, srv, nil)
	ctx := context.Background()
	before := reserve(t, s, lease, item(tpm, 10), item(conc, 1))

	srv.Stop()
	if _, err := s.Reserve(ctx, []Item{item(tpm, 1)}, lease); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Reserve with Redis down: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	eventually(t, "Reserve after a restart", func() error {
		_, err := s.Reserve(ctx, []Item{item(tpm, 1), item(conc, 1)}, lease)
		return err
	})
	// the restarted server is empty: the reservation made before is lost,
	// its commit charges the new counter and Renew reports it lost
	if lost, err := s.Renew(ctx, []*Reservation{before.Reservation}); err != nil || len(lost) != 1 {
		t.Fatalf("Renew after a restart: lost %d, %v; want 1", len(lost), err)
	}
	if err := s.Commit(ctx, before.Reservation, []int64{10, 0}); err != nil {
		t.Fatalf("Commit after a restart: %v", err)
	}
}

func TestRedisRecoversFromAScriptFlush(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, srv, nil)
	raw := rawClient(t, srv)
	ctx := context.Background()
	flush := func() {
		t.Helper()
		if err := raw.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	d := reserve(t, s, lease, item(tpm, 10))
	flush()
	d2 := reserve(t, s, lease, item(tpm, 10))
	if !d2.Admitted() || d2.States[0].Remaining != 80 {
		t.Fatalf("Reserve after SCRIPT FLUSH: %+v", d2)
	}
	flush()
	if lost, err := s.Renew(ctx, []*Reservation{d.Reservation, d2.Reservation}); err != nil || len(lost) != 0 {
		t.Fatalf("Renew after SCRIPT FLUSH: lost %d, %v", len(lost), err)
	}
	flush()
	commit(t, s, d.Reservation, 5)
	commit(t, s, d2.Reservation, 5)
	wantLeft(t, s, tpm, 90, "")
}

func TestRedisKeysExpireOnTheirOwn(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, srv, nil)
	raw := rawClient(t, srv)
	ctx := context.Background()
	const shortLease = 200 * time.Millisecond
	window := Limit{Name: "tpm", Kind: Tokens, Max: 1000, Window: time.Minute}
	slots := Limit{Name: "slots", Kind: Concurrent, Max: 10}
	for i := range 50 {
		w, c := window, slots
		w.Key = fmt.Sprint("tenant-", i)
		c.Key = w.Key
		d := reserve(t, s, shortLease, item(w, 10), item(c, 1))
		if i%2 == 0 {
			commit(t, s, d.Reservation, 5, 0)
		}
	}
	keys, err := raw.Keys(ctx, prefixFor(t)+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	// a commit empties its lease sets, which Redis then removes
	if len(keys) != 50*4-25*2 {
		t.Errorf("%d keys, want %d", len(keys), 50*4-25*2)
	}
	for _, k := range keys {
		ttl, err := raw.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		limit := time.Minute + margin
		if strings.Contains(k, ":concurrent:") {
			limit = shortLease + margin
		}
		if ttl <= 0 || ttl > limit {
			t.Errorf("key %s: TTL %v, want in (0, %v]", k, ttl, limit)
		}
	}
	// the concurrency counters go away by themselves
	time.Sleep(shortLease + margin + 100*time.Millisecond)
	left, err := raw.Keys(ctx, prefixFor(t)+":*:concurrent:*").Result()
	if err != nil || len(left) != 0 {
		t.Fatalf("concurrency keys left after their lease: %v, %v", left, err)
	}
}

// TestRedisNoOvershootUnderConcurrency runs clients of four stores (as four
// instances would) against one server, reserving upper-bound estimates. The
// clients' own tally, raised after an admission and lowered before a
// commit, is never above the store's used+reserved: it must stay within
// every limit at every admission.
func TestRedisNoOvershootUnderConcurrency(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	tokens := Limit{Name: "tpm", Key: "acme", Kind: Tokens, Max: 20000, Window: time.Hour}
	slots := Limit{Name: "slots", Key: "acme", Kind: Concurrent, Max: 8}
	var (
		mu        sync.Mutex
		held      = map[int64]int64{} // window start → reserved and committed by the clients
		committed = map[int64]int64{} // window start → actual committed
		inFlight  atomic.Int64
		admitted  atomic.Int64
		rejected  atomic.Int64
	)
	stores := make([]*Redis, 4)
	for i := range stores {
		stores[i] = newRedisStore(t, srv, nil)
	}
	var wg sync.WaitGroup
	for c := range 64 {
		wg.Go(func() {
			s := stores[c%len(stores)]
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for range 40 {
				estimate := 1 + rng.Int64N(200)
				d, err := s.Reserve(ctx, []Item{item(tokens, estimate), item(slots, 1)}, lease)
				if err != nil {
					t.Error(err)
					return
				}
				if !d.Admitted() {
					rejected.Add(1)
					continue
				}
				admitted.Add(1)
				start := d.Reservation.starts[0]
				if n := inFlight.Add(1); n > slots.Max {
					t.Errorf("%d slots held at once, limit %d", n, slots.Max)
				}
				mu.Lock()
				held[start] += estimate
				if held[start] > tokens.Max {
					t.Errorf("window %d: %d reserved and committed, limit %d", start, held[start], tokens.Max)
				}
				mu.Unlock()
				actual := rng.Int64N(estimate + 1)
				mu.Lock()
				held[start] -= estimate - actual
				committed[start] += actual
				mu.Unlock()
				inFlight.Add(-1)
				if err := s.Commit(ctx, d.Reservation, []int64{actual, 0}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("admitted %d, rejected %d", admitted.Load(), rejected.Load())
	if rejected.Load() == 0 {
		t.Fatal("no request was rejected: the load did not test the limits")
	}
	// every admitted request is counted, exactly
	raw := rawClient(t, srv)
	hash, _ := stores[0].keys(tokens)
	for start, want := range committed {
		v, err := raw.HMGet(ctx, hash, "w", "u", "r").Result()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(v[0]) != fmt.Sprint(start) {
			continue // an earlier window, gone
		}
		if fmt.Sprint(v[1]) != fmt.Sprint(want) || fmt.Sprint(v[2]) != "0" {
			t.Errorf("window %d: used %v, reserved %v; want %d and 0", start, v[1], v[2], want)
		}
	}
}
