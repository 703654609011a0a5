package airatelimiting_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aiproxymulti"
	"github.com/phasegate/phasegate/plugins/airatelimiting"
	"github.com/phasegate/phasegate/ratelimit"
)

// How an instance answers one attempt.
const (
	answerOK     = "ok"     // a success with usage 3 + 5
	answer500    = "500"    // an error status fallback_on names
	answer429    = "429"    // the instance's own rate limit
	answerBroken = "broken" // the connection is cut before a response
	answerLeave  = "leave"  // a stream the client leaves after its first event
)

// scriptedInstance is an upstream whose next answers are set by the test;
// it names itself in X-Served-By.
type scriptedInstance struct {
	name string
	up   *providertest.Upstream
	mu   sync.Mutex
	mode string
}

func (s *scriptedInstance) set(mode string) { s.mu.Lock(); s.mode = mode; s.mu.Unlock() }

func (s *scriptedInstance) handler(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	mode := s.mode
	s.mu.Unlock()
	// The upstream has read the body: take it from its record.
	captured := s.up.Captured()
	var req struct{ Stream bool }
	_ = json.Unmarshal(captured[len(captured)-1].Body, &req)
	stream := req.Stream
	w.Header().Set("X-Served-By", s.name)
	switch {
	case mode == answer500 || mode == answer429:
		status := http.StatusInternalServerError
		if mode == answer429 {
			status = http.StatusTooManyRequests
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"error":{"message":"no","type":"server_error","code":null}}`)
	case mode == answerBroken:
		panic(http.ErrAbortHandler)
	case stream:
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"hello"}}]}`+"\n\n")
		w.(http.Flusher).Flush()
		if mode == answerLeave {
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`+"\n\ndata: [DONE]\n\n")
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`)
	}
}

// instanceFixture is ai-rate-limiting with a tokens limit on ai-proxy-multi's
// primary instance (priority 1), in front of it and a backup, over real
// sockets.
type instanceFixture struct {
	*providertest.Gateway
	store            *ledger
	primary, backup  *scriptedInstance
	primaryUp        *providertest.Upstream
	plugin           *airatelimiting.Plugin
	reserved, commit func() float64
}

func newInstanceFixture(t testing.TB, instances map[string]airatelimiting.InstanceLimit) *instanceFixture {
	f := &instanceFixture{store: newLedger(), primary: &scriptedInstance{name: "primary"}, backup: &scriptedInstance{name: "backup"}}
	f.primaryUp = providertest.NewUpstream(t, f.primary.handler)
	backupUp := providertest.NewUpstream(t, f.backup.handler)
	f.primary.up, f.backup.up = f.primaryUp, backupUp
	env, reg := providertest.NewEnv(t)
	mc := aiproxymulti.DefaultConfig()
	primary := aiproxymulti.Instance{Name: "primary", Provider: "openai-compatible", Endpoint: f.primaryUp.URL, Timeout: 5 * time.Second, Priority: 1}
	backup := aiproxymulti.Instance{Name: "backup", Provider: "openai-compatible", Endpoint: backupUp.URL, Timeout: 5 * time.Second}
	mc.Instances = []aiproxymulti.Instance{primary, backup}
	multi, err := aiproxymulti.New(mc, env)
	if err != nil {
		t.Fatal(err)
	}
	// Two route limits, so that the request's commits (two amounts) and
	// the attempts' (one) are told apart in the ledger.
	cfg := limits(
		airatelimiting.LimitConfig{Name: "rpm", Key: "route", Requests: 1 << 40, Window: time.Hour},
		airatelimiting.LimitConfig{Name: "tpm", Key: "route", Tokens: 1 << 40, Window: time.Hour},
	)
	cfg.ShowLimitQuotaHeader = false
	cfg.Instances = instances
	f.plugin = newPlugin(t, cfg, env, f.store)
	f.Gateway = providertest.Serve(t, phases.Options{}, multi, f.plugin)
	f.reserved = func() float64 {
		return providertest.Samples(t, reg, airatelimiting.MetricReserved)[providertest.Labels("instance:primary", providertest.Route)]
	}
	f.commit = func() float64 {
		return providertest.Samples(t, reg, airatelimiting.MetricCommitted)[providertest.Labels("instance:primary", providertest.Route)]
	}
	return f
}

// attemptCommits returns the ledger's commits of one amount: the attempts'.
func (l *ledger) attemptCommits() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []int64
	for _, c := range l.committed {
		if len(c) == 1 {
			out = append(out, c[0])
		}
	}
	return out
}

func (l *ledger) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.outstanding) + l.committing
}

const instanceChat = `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]`

// On random sequences of requests, whatever the primary answers (success,
// error statuses, a cut connection, a client that leaves mid-stream) and
// whether it is over its limit or not: an attempt on the primary is made
// exactly when its limit admits the estimate; a primary over its limit or
// failing falls back to the backup; every attempt's reservation is
// committed once, by the end of its request (nothing outstanding, the
// reserved gauge at 0), to the usage of an answer the client got and to 0
// for a failed attempt; the limit's counter is what was committed.
func TestPropertyInstanceLimitReservesPerAttempt(t *testing.T) {
	estimate := func(stream bool) int64 {
		body := instanceChat + "}"
		if stream {
			body = instanceChat + `,"stream":true}`
		}
		return promptOf(t, airatelimiting.EstimateApprox, []byte(body)) + 10
	}
	rapid.Check(t, func(rt *rapid.T) {
		limit := rapid.Int64Range(1, 4*estimate(true)).Draw(rt, "primary_tokens")
		tb := &checkScope{TB: t}
		defer tb.close()
		f := newInstanceFixture(tb, map[string]airatelimiting.InstanceLimit{"primary": {Tokens: limit, Window: time.Hour}})
		var used, attempts int64
		for i := range rapid.IntRange(1, 6).Draw(rt, "requests") {
			mode := rapid.SampledFrom([]string{answerOK, answer500, answer429, answerBroken, answerLeave}).Draw(rt, fmt.Sprintf("answer%d", i))
			stream := mode == answerLeave || rapid.Bool().Draw(rt, fmt.Sprintf("stream%d", i))
			f.primary.set(mode)
			f.backup.set(answerOK)
			hitsBefore := f.primaryUp.Hits()
			admitted := used+estimate(stream) <= limit
			served := f.send(t, rt, stream, mode == answerLeave && admitted)
			f.Wait(t)

			if got := f.primaryUp.Hits() - hitsBefore; got != map[bool]int{true: 1, false: 0}[admitted] {
				rt.Fatalf("request %d: %d attempts on the primary, admitted=%v (used %d of %d, estimate %d)", i, got, admitted, used, limit, estimate(stream))
			}
			wantServer := "backup"
			if admitted && (mode == answerOK || mode == answerLeave) {
				wantServer = "primary"
			}
			if served != wantServer && served != "" {
				rt.Fatalf("request %d (%s, admitted=%v): served by %q, want %q", i, mode, admitted, served, wantServer)
			}
			if admitted {
				attempts++
			}
			// The ledger is not the in-process store: its commits run
			// after the request, bounded by the store call, not by a lease.
			if !providertest.Eventually(2*time.Second, func() bool { return f.store.open() == 0 }) {
				rt.Fatalf("request %d: %d reservations outstanding after the request ended", i, f.store.open())
			}
			if r := f.reserved(); r != 0 {
				rt.Fatalf("request %d: the primary's reserved gauge reads %v after the request ended", i, r)
			}
			commits := f.store.attemptCommits()
			if int64(len(commits)) != attempts {
				rt.Fatalf("request %d: %d attempt commits, want %d", i, len(commits), attempts)
			}
			if admitted {
				last := commits[len(commits)-1]
				switch mode {
				case answerOK:
					if last != 8 {
						rt.Fatalf("request %d: a delivered answer with usage 8 committed %d", i, last)
					}
				case answerLeave:
					if last <= 0 || last > estimate(stream) {
						rt.Fatalf("request %d: a stream left after one event committed %d, want in (0, %d]", i, last, estimate(stream))
					}
				default:
					if last != 0 {
						rt.Fatalf("request %d: a failed attempt (%s) committed %d", i, mode, last)
					}
				}
				used += last
			}
			if c := f.commit(); int64(c) != used {
				rt.Fatalf("request %d: the committed counter reads %v, the ledger %d", i, c, used)
			}
		}
	})
}

// checkScope is the test as one check of a property sees it: what the
// check sets up is cleaned up when the check ends (close), not when the
// test does, so that thousands of checks do not pile up servers and
// sockets.
type checkScope struct {
	testing.TB
	cleanups []func()
}

func (s *checkScope) Cleanup(f func()) { s.cleanups = append(s.cleanups, f) }

func (s *checkScope) close() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
}

// send posts one chat request; leave reads the first event and goes. It
// returns the instance that answered ("" when the client left).
func (f *instanceFixture) send(t *testing.T, rt *rapid.T, stream, leave bool) string {
	body := instanceChat + "}"
	if stream {
		body = instanceChat + `,"stream":true}`
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := f.Request(t, body, nil).WithContext(ctx)
	resp, err := f.Client.Do(req)
	if err != nil {
		rt.Fatalf("request: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		rt.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if leave {
		if _, err := readEvent(bufio.NewReader(resp.Body)); err != nil {
			rt.Fatalf("first event: %v", err)
		}
		cancel()
		return ""
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		rt.Fatalf("body: %v", err)
	}
	return resp.Header.Get("X-Served-By")
}

// With every instance over its limit, nothing is sent: the client gets
// the limit's 429, and the request is charged nothing.
func TestInstanceLimitsAllOverAnswer429(t *testing.T) {
	f := newInstanceFixture(t, map[string]airatelimiting.InstanceLimit{
		"primary": {Tokens: 1, Window: time.Hour},
		"backup":  {Requests: 1, Window: time.Hour},
	})
	f.primary.set(answerOK)
	f.backup.set(answerOK)
	if r := f.Post(t, instanceChat+"}", nil); r.Status != http.StatusOK || r.Header.Get("X-Served-By") != "backup" {
		t.Fatalf("first request: %d by %q, want 200 by the backup", r.Status, r.Header.Get("X-Served-By"))
	}
	f.Wait(t)
	r := f.Post(t, instanceChat+"}", nil)
	if r.Status != http.StatusTooManyRequests || !strings.Contains(string(r.Body), `rate limit \"instance:backup\" exceeded`) || r.Header.Get("Retry-After") == "" {
		t.Fatalf("second request: %d %s (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	f.Wait(t)
	if h := f.primaryUp.Hits(); h != 0 {
		t.Fatalf("the primary over its limit was called %d times", h)
	}
	if !providertest.Eventually(2*time.Second, func() bool { return f.store.open() == 0 }) {
		t.Fatalf("%d reservations outstanding", f.store.open())
	}
	f.store.mu.Lock()
	last := f.store.committed[len(f.store.committed)-1]
	f.store.mu.Unlock()
	if len(last) != 2 || last[0] != 0 || last[1] != 0 {
		t.Fatalf("the refused request committed %v, want nothing", last)
	}
}

var _ ratelimit.Store = (*ledger)(nil)
