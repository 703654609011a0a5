package airatelimiting_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/phasegate/phasegate/internal/redistest"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/plugins/airatelimiting"
	"github.com/phasegate/phasegate/ratelimit"
)

func redisStore(t *testing.T) (*ratelimit.Redis, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	s, err := ratelimit.NewRedis(ratelimit.RedisConfig{Address: srv.Addr(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, srv
}

// remaining probes a counter without taking anything.
func remaining(t *testing.T, s ratelimit.Store, l ratelimit.Limit) int64 {
	t.Helper()
	d, err := s.Reserve(context.Background(), []ratelimit.Item{{Limit: l}}, time.Second)
	if err != nil || !d.Admitted() {
		t.Fatalf("probe: %v", err)
	}
	if err := s.Commit(context.Background(), d.Reservation, []int64{0}); err != nil {
		t.Fatal(err)
	}
	return d.States[0].Remaining
}

// A request refused by one limit takes nothing from the others.
func TestRedisAdmissionIsAllOrNothing(t *testing.T) {
	store, _ := redisStore(t)
	rpm := airatelimiting.LimitConfig{Name: "rpm", Requests: 100, Window: time.Hour}
	tpm := airatelimiting.LimitConfig{Name: "tpm", Tokens: 300, Window: time.Hour}
	cfg := limits(rpm, tpm)
	f := serve(t, cfg, store)
	// 300 completion tokens reserved do not fit beside the prompt
	r := f.Post(t, `{"model":"m","max_tokens":300,"messages":[{"role":"user","content":"hi"}]}`, nil)
	f.Wait(t)
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	rl := ratelimit.Limit{Name: "rpm", Kind: ratelimit.Requests, Max: 100, Window: time.Hour}
	tl := ratelimit.Limit{Name: "tpm", Kind: ratelimit.Tokens, Max: 300, Window: time.Hour}
	if n := remaining(t, store, rl); n != 100 {
		t.Fatalf("the refused request took %d from rpm", 100-n)
	}
	r = f.Post(t, `{"model":"m","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`, map[string]string{mockllm.HeaderContent: "a b"})
	f.Wait(t)
	f.plugin.Close()
	if r.Status != http.StatusOK || remaining(t, store, rl) != 99 || remaining(t, store, tl) != 300-3 {
		t.Fatalf("%d; remaining rpm %d, tpm %d", r.Status, remaining(t, store, rl), remaining(t, store, tl))
	}
}

// A request admitted in one window and ended in the next is charged to
// the window that admitted it, which has ended: the new window is clean.
func TestRedisReconcileAfterTheWindowEnds(t *testing.T) {
	store, _ := redisStore(t)
	const window = time.Second
	cfg := limits(airatelimiting.LimitConfig{Name: "tps", Tokens: 1000, Window: window})
	f := serve(t, cfg, store)
	// wait for a fresh window, then stream past its end
	time.Sleep(time.Until(time.Now().Truncate(window).Add(window + 50*time.Millisecond)))
	r := f.Post(t, `{"model":"m","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`,
		map[string]string{mockllm.HeaderChunks: "4", mockllm.HeaderChunkDelay: "350ms"})
	f.Wait(t)
	f.plugin.Close()
	if r.Status != http.StatusOK {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	l := ratelimit.Limit{Name: "tps", Kind: ratelimit.Tokens, Max: 1000, Window: window}
	if n := remaining(t, store, l); n != 1000 {
		t.Fatalf("the new window shows %d tokens taken by a request of the last one", 1000-n)
	}
	if n := sample(t, f.reg, airatelimiting.MetricCommitted, "tps", providertest.Route); n == 0 {
		t.Fatal("the request was not reconciled")
	}
}

// A holder that never commits (a process killed mid-request) gives its
// reservation back once its lease has passed; renewals keep a live one.
func TestRedisLeaseExpiryAfterAKilledHolder(t *testing.T) {
	store, _ := redisStore(t)
	slots := ratelimit.Limit{Name: "slots", Kind: ratelimit.Concurrent, Max: 1}
	// the "killed" holder: a reservation nobody renews or commits
	d, err := store.Reserve(context.Background(), []ratelimit.Item{{Limit: slots, Amount: 1}}, 300*time.Millisecond)
	if err != nil || !d.Admitted() {
		t.Fatal(err)
	}
	cfg := limits(airatelimiting.LimitConfig{Name: "slots", Concurrent: 1})
	cfg.Lease = 300 * time.Millisecond
	f := serve(t, cfg, store)
	if r := f.Post(t, providertest.Chat("m", false), nil); r.Status != http.StatusTooManyRequests {
		t.Fatalf("while the slot is held: %d", r.Status)
	}
	f.Wait(t)
	time.Sleep(350 * time.Millisecond)
	// a live stream longer than three leases keeps its slot
	done := make(chan providertest.Response, 1)
	go func() {
		done <- f.Post(t, providertest.Chat("m", true), map[string]string{mockllm.HeaderChunks: "5", mockllm.HeaderChunkDelay: "200ms"})
	}()
	time.Sleep(800 * time.Millisecond)
	second := f.Post(t, providertest.Chat("m", false), nil)
	f.Wait(t)
	r := <-done
	f.Wait(t)
	if r.Status != http.StatusOK {
		t.Fatalf("after the lease: %d %s", r.Status, r.Body)
	}
	if second.Status != http.StatusTooManyRequests {
		t.Fatalf("beside a stream renewing its slot past its lease: %d", second.Status)
	}
}
