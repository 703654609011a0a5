package airatelimiting_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/llm"
	llmopenai "github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
	"github.com/phasegate/phasegate/plugins/airatelimiting"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/ratelimit"
)

// ledger is a store that records what was reserved and committed.
type ledger struct {
	ratelimit.Store
	mu          sync.Mutex
	outstanding map[string]bool
	committing  int // commits taken off outstanding, not yet applied by the store
	committed   [][]int64
}

func newLedger() *ledger {
	return &ledger{Store: ratelimit.NewLocal(ratelimit.LocalOptions{}), outstanding: map[string]bool{}}
}

func (l *ledger) Reserve(ctx context.Context, items []ratelimit.Item, lease time.Duration) (ratelimit.Decision, error) {
	d, err := l.Store.Reserve(ctx, items, lease)
	if err == nil && d.Admitted() {
		l.mu.Lock()
		l.outstanding[d.Reservation.ID()] = true
		l.mu.Unlock()
	}
	return d, err
}

func (l *ledger) Commit(ctx context.Context, r *ratelimit.Reservation, actual []int64) error {
	l.mu.Lock()
	if !l.outstanding[r.ID()] {
		l.mu.Unlock()
		return fmt.Errorf("commit of %s, which is not outstanding", r.ID())
	}
	delete(l.outstanding, r.ID())
	l.committing++
	l.committed = append(l.committed, append([]int64(nil), actual...))
	l.mu.Unlock()
	// Until the store has applied it, the reservation still counts
	// against its limits: open reports it until then.
	err := l.Store.Commit(ctx, r, actual)
	l.mu.Lock()
	l.committing--
	l.mu.Unlock()
	return err
}

// propertyConfig has one limit of each kind, none of which rejects.
func propertyConfig(mode string) airatelimiting.Config {
	c := limits(
		airatelimiting.LimitConfig{Name: "tpm", Tokens: 1 << 40, Window: time.Hour},
		airatelimiting.LimitConfig{Name: "rpm", Key: "route", Requests: 1 << 40, Window: time.Hour},
		airatelimiting.LimitConfig{Name: "slots", Key: "header:X-Team", Concurrent: 1 << 20},
		airatelimiting.LimitConfig{Name: "budget", Cost: 1e6, Window: time.Hour},
	)
	c.Prices = map[string]airatelimiting.Price{"*": {Prompt: 0.5, Completion: 2}}
	c.Estimate.Prompt = mode
	return c
}

func drawChat(rt *rapid.T) *http.Request {
	words := rapid.SliceOfN(rapid.SampledFrom([]string{"hi", "héllo", "日本", "a"}), 0, 6).Draw(rt, "prompt")
	body := fmt.Sprintf(`{"model":"m1","messages":[{"role":"user","content":%q}]`, strings.Join(words, " "))
	if n := rapid.IntRange(0, 3).Draw(rt, "max_tokens"); n > 0 {
		body += fmt.Sprintf(`,"max_tokens":%d`, n*10)
	}
	if rapid.Bool().Draw(rt, "stream") {
		body += `,"stream":true`
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body+"}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Team", rapid.SampledFrom([]string{"a", "b"}).Draw(rt, "team"))
	return req
}

// promptOf is the plugin's prompt estimate of body, computed independently.
func promptOf(t phasetest.TB, mode string, body []byte) int64 {
	req, err := llmopenai.Chat{}.DecodeRequest(body)
	if err != nil {
		if mode == airatelimiting.EstimateUpperBound {
			return int64(len(body))
		}
		return int64((len(body) + 3) / 4)
	}
	if mode == airatelimiting.EstimateApprox {
		return llm.EstimateInputTokens(req)
	}
	n := int64(8 + 8*len(req.Messages))
	for _, s := range req.Texts() {
		n += int64(len(s))
	}
	return n
}

// bodySeen records the body the plugin estimated (scripted plugins may
// mutate it before).
type bodySeen struct {
	*airatelimiting.Plugin
	body     []byte
	admitted bool
}

func (b *bodySeen) Access(ctx context.Context, r *phases.Request) phases.Exit {
	b.body, _ = r.Body()
	b.body = append([]byte(nil), b.body...)
	ex := b.Plugin.Access(ctx, r)
	b.admitted = !ex.Exited()
	return ex
}

// The harness runs the plugin on random paths: other plugins exit, panic
// or wedge in any phase, the upstream fails, times out or breaks, the
// client leaves. On every path the reservation is committed exactly once
// (nothing outstanding in the store, the reserved gauge back to 0, which
// the harness checks), the committed metric equals what the store was
// told, and the actual cost is the rule's: nothing without an upstream
// call, one request and no more than the prompt estimate with one (the
// harness's bodies carry no usage and no text).
func TestPropertyReservationsSettleOnEveryPath(t *testing.T) {
	for _, mode := range []string{airatelimiting.EstimateApprox, airatelimiting.EstimateUpperBound} {
		t.Run(mode, func(t *testing.T) {
			var (
				store *ledger
				plug  *bodySeen
			)
			cfg := propertyConfig(mode)
			var env *phasetest.Env
			phasetest.Check(t, phasetest.Config{
				Plugins: func(e *phasetest.Env) []phases.Plugin {
					env = e
					store = newLedger()
					p, err := airatelimiting.NewWithStore(cfg, pluginsdk.Env{Route: "test", Registerer: e.Registry}, store)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = p.Close() })
					plug = &bodySeen{Plugin: p}
					return []phases.Plugin{plug}
				},
				Request: drawChat,
				Check: func(tb phasetest.TB, r *phasetest.Result) {
					_ = plug.Close()
					store.mu.Lock()
					defer store.mu.Unlock()
					if len(store.outstanding) != 0 {
						tb.Fatalf("%d reservations not committed", len(store.outstanding))
					}
					got := map[string]float64{}
					mfs, _ := env.Registry.Gather()
					for _, mf := range mfs {
						if mf.GetName() != airatelimiting.MetricCommitted {
							continue
						}
						for _, m := range mf.GetMetric() {
							for _, lp := range m.GetLabel() {
								if lp.GetName() == "limit" {
									got[lp.GetValue()] = m.GetCounter().GetValue()
								}
							}
						}
					}
					if !plug.admitted {
						if len(store.committed) != 0 {
							tb.Fatalf("a request that was not admitted committed %v", store.committed)
						}
						return
					}
					if len(store.committed) != 1 {
						tb.Fatalf("%d commits, want 1", len(store.committed))
					}
					actual := store.committed[0]
					for i, name := range []string{"tpm", "rpm", "slots", "budget"} {
						if got[name] != float64(actual[i]) {
							tb.Fatalf("committed_total{limit=%q} = %v, the store was told %d", name, got[name], actual[i])
						}
					}
					called := false
					for _, s := range r.Summary.Trace {
						called = called || s.To == fsm.StateUpstream
					}
					prompt := promptOf(tb, mode, plug.body)
					tokens, requests, slots, budget := actual[0], actual[1], actual[2], actual[3]
					switch {
					case slots != 0:
						tb.Fatalf("a slot was charged %d", slots)
					case !called && (tokens != 0 || requests != 0 || budget != 0):
						tb.Fatalf("no upstream was called, yet %v was charged", actual)
					case called && requests != 1:
						tb.Fatalf("an upstream was called, yet %d requests were charged", requests)
					case called && tokens != 0 && tokens != prompt:
						tb.Fatalf("charged %d tokens, want 0 or the prompt estimate %d", tokens, prompt)
					case budget != (tokens+1)/2:
						tb.Fatalf("charged %d micro-dollars for %d prompt tokens at 0.5", budget, tokens)
					}
					if called && r.Scenario.Upstream.Kind == phasetest.UpstreamOK && r.Scenario.Upstream.Status < 400 &&
						len(r.Scenario.Upstream.Failed) == 0 && r.Summary.Cause == phases.CauseCompleted && tokens != prompt {
						tb.Fatalf("a completed request without usage was charged %d tokens, want the prompt estimate %d", tokens, prompt)
					}
				},
			})
		})
	}
}
