package aiproxymulti_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aiproxymulti"
)

// A failing instance is left for the next: its attempt's gauge series is 1
// while it is in flight and back to 0 as soon as it has failed, while the
// next attempt's is up; the client gets the next instance's answer.
func TestFallbackGauges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
	}{
		{"5xx", providertest.Reply(503, "application/json", `{"error":"down"}`)},
		{"429", providertest.Reply(429, "application/json", `{"error":"slow down"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			badGate, goodGate := newGate(), newGate()
			bad := providertest.NewUpstream(t, badGate.handler(tc.answer))
			good := providertest.NewUpstream(t, goodGate.handler(providertest.Reply(200, "application/json", providertest.Completion)))
			b := instance("bad", bad.URL)
			b.Priority = 1
			b.Options = map[string]any{"model": "bad-model"}
			f := serve(t, multi(b, instance("good", good.URL)))
			done := make(chan providertest.Response, 1)
			go func() { done <- f.Post(t, providertest.Chat("m", false), nil) }()

			active := func(instance, model string) float64 {
				return testutil.ToFloat64(f.env.Metrics.LLMActive.WithLabelValues(providertest.Route, instance, model, metrics.RequestTypeChat))
			}
			badGate.wait(t)
			if v := active("bad", "bad-model"); v != 1 {
				t.Errorf("the failing attempt's series reads %v while in flight, want 1", v)
			}
			close(badGate.release)
			goodGate.wait(t)
			if b, g := active("bad", "bad-model"), active("good", "m"); b != 0 || g != 1 {
				t.Errorf("during the fallback: bad %v (want 0), good %v (want 1)", b, g)
			}
			close(goodGate.release)
			resp := <-done
			o := f.Wait(t)
			if resp.Status != 200 || string(resp.Body) != providertest.Completion {
				t.Errorf("%d %s", resp.Status, resp.Body)
			}
			if o.LLM.Instance != "good" || o.LLM.Model != "m" || o.LLM.Attempts != 2 || !o.LLM.UsageKnown {
				t.Errorf("LLMInfo %+v", o.LLM)
			}
			providertest.AssertNoneActive(t, f.reg)
			if got := providertest.Samples(t, f.reg, nameDuration); len(got) != 1 || got[key("good", "m", metrics.RequestTypeChat)] != 1 {
				t.Errorf("durations %v, want the good attempt's only", got)
			}
			if got := providertest.Samples(t, f.reg, namePrompt); len(got) != 1 || got[key("good", "m", metrics.RequestTypeChat)] != 3 {
				t.Errorf("prompt tokens %v", got)
			}
		})
	}
}

// Network failures and timeouts fall back with "network".
func TestFallbackOnNetwork(t *testing.T) {
	m := providertest.StartMock(t)
	slow := instance("slow", mockURL(m))
	slow.Timeout = 100 * time.Millisecond
	slow.Options = map[string]any{"model": "slow-model"}
	f := serve(t, multi(
		withPriority(instance("dead", deadURL(t)), 2),
		withPriority(slow, 1),
		instance("good", providertest.NewUpstream(t, nil).URL),
	))
	resp := f.Post(t, providertest.Chat("m", false), map[string]string{mockllm.HeaderHeaderDelay: "2s"})
	o := f.Wait(t)
	if resp.Status != 200 || o.LLM.Instance != "good" || o.LLM.Attempts != 3 {
		t.Errorf("%d %s; LLMInfo %+v", resp.Status, resp.Body, o.LLM)
	}
	providertest.AssertNoneActive(t, f.reg)
	if got := providertest.Samples(t, f.reg, nameActive); len(got) != 3 {
		t.Errorf("active series %v, want one per attempt", got)
	}
}

func withPriority(in aiproxymulti.Instance, p int) aiproxymulti.Instance {
	in.Priority = p
	return in
}

// Failures fallback_on does not name are answered at once, as they are.
func TestNoFallbackOnIneligible(t *testing.T) {
	for _, tc := range []struct {
		name     string
		on       []string
		status   int
		statuses []int
		fallback bool
	}{
		{"400", nil, 400, nil, false},
		{"401", nil, 401, nil, false},
		{"429 without http_429", []string{"http_5xx", "network"}, 429, nil, false},
		{"500 without http_5xx", []string{"http_429"}, 500, nil, false},
		{"404 by fallback_http_statuses", nil, 404, []int{404}, true},
		{"nothing", []string{}, 503, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"error":{"message":"status %d"}}`, tc.status)
			first := failing(t, tc.status, body)
			second := providertest.NewUpstream(t, nil)
			cfg := multi(withPriority(instance("first", first.URL), 1), instance("second", second.URL))
			if tc.on != nil {
				cfg.FallbackOn = tc.on
			}
			cfg.FallbackHTTPStatuses = tc.statuses
			f := serve(t, cfg)
			resp := f.Post(t, providertest.Chat("m", false), nil)
			o := f.Wait(t)
			if tc.fallback {
				if resp.Status != 200 || second.Hits() != 1 {
					t.Errorf("no fallback: %d %s", resp.Status, resp.Body)
				}
				return
			}
			if resp.Status != tc.status || string(resp.Body) != body || second.Hits() != 0 {
				t.Errorf("got %d %s, second hit %d times", resp.Status, resp.Body, second.Hits())
			}
			if o.LLM.Instance != "first" || o.LLM.Attempts != 1 {
				t.Errorf("LLMInfo %+v", o.LLM)
			}
			providertest.AssertNoneActive(t, f.reg)
		})
	}
	// A network failure without "network" is a 502 at once.
	second := providertest.NewUpstream(t, nil)
	cfg := multi(withPriority(instance("dead", deadURL(t)), 1), instance("second", second.URL))
	cfg.FallbackOn = []string{"http_5xx"}
	f := serve(t, cfg)
	if resp := f.Post(t, providertest.Chat("m", false), nil); resp.Status != 502 || second.Hits() != 0 {
		t.Errorf("%d %s, second hit %d times", resp.Status, resp.Body, second.Hits())
	}
	f.Wait(t)
}

// When every instance fails, the client gets the last answer as it was,
// or 502 / 504 when none answered.
func TestAllFailing(t *testing.T) {
	a := failing(t, 500, `{"error":"a"}`)
	b := failing(t, 503, `{"error":"b"}`)
	f := serve(t, multi(withPriority(instance("a", a.URL), 1), instance("b", b.URL)))
	resp := f.Post(t, providertest.Chat("m", false), nil)
	o := f.Wait(t)
	if resp.Status != 503 || string(resp.Body) != `{"error":"b"}` || o.LLM.Instance != "b" || o.LLM.Attempts != 2 {
		t.Errorf("%d %s; LLMInfo %+v", resp.Status, resp.Body, o.LLM)
	}
	if o.Cause != phases.CauseCompleted {
		t.Errorf("cause %s", o.Cause)
	}
	providertest.AssertNoneActive(t, f.reg)

	// An answer is preferred to a later network failure.
	f = serve(t, multi(withPriority(instance("a", a.URL), 1), instance("dead", deadURL(t))))
	resp = f.Post(t, providertest.Chat("m", false), nil)
	o = f.Wait(t)
	if resp.Status != 500 || string(resp.Body) != `{"error":"a"}` || o.LLM.Instance != "a" || o.LLM.Attempts != 2 {
		t.Errorf("%d %s; LLMInfo %+v", resp.Status, resp.Body, o.LLM)
	}
	providertest.AssertNoneActive(t, f.reg)

	// None answered: 502, or 504 when the last failure was a timeout.
	m := providertest.StartMock(t)
	slow := instance("slow", mockURL(m))
	slow.Timeout = 50 * time.Millisecond
	for _, tc := range []struct {
		instances []aiproxymulti.Instance
		status    int
	}{
		{[]aiproxymulti.Instance{withPriority(instance("d1", deadURL(t)), 1), instance("d2", deadURL(t))}, 502},
		{[]aiproxymulti.Instance{withPriority(instance("d1", deadURL(t)), 1), slow}, 504},
		{[]aiproxymulti.Instance{withPriority(slow, 1), instance("d1", deadURL(t))}, 502},
	} {
		f := serve(t, multi(tc.instances...))
		resp := f.Post(t, providertest.Chat("m", false), map[string]string{mockllm.HeaderHeaderDelay: "1s"})
		o := f.Wait(t)
		var e struct {
			Error struct{ Code int } `json:"error"`
		}
		_ = json.Unmarshal(resp.Body, &e)
		if resp.Status != tc.status || e.Error.Code != tc.status || o.LLM.Attempts != 2 {
			t.Errorf("%s then %s: %d %s; LLMInfo %+v", tc.instances[0].Name, tc.instances[1].Name, resp.Status, resp.Body, o.LLM)
		}
		providertest.AssertNoneActive(t, f.reg)
	}
}

// max_retries bounds the attempts after the first.
func TestMaxRetries(t *testing.T) {
	ups := []*providertest.Upstream{failing(t, 500, `{"n":0}`), failing(t, 500, `{"n":1}`), failing(t, 500, `{"n":2}`)}
	for _, tc := range []struct {
		retries *int
		hits    int
	}{{nil, 3}, {ptr(1), 2}, {ptr(0), 1}, {ptr(10), 3}} {
		before := 0
		for _, u := range ups {
			before += u.Hits()
		}
		cfg := multi(withPriority(instance("i0", ups[0].URL), 3), withPriority(instance("i1", ups[1].URL), 2), withPriority(instance("i2", ups[2].URL), 1))
		cfg.MaxRetries = tc.retries
		f := serve(t, cfg)
		resp := f.Post(t, providertest.Chat("m", false), nil)
		o := f.Wait(t)
		after := 0
		for _, u := range ups {
			after += u.Hits()
		}
		if after-before != tc.hits || o.LLM.Attempts != tc.hits || string(resp.Body) != fmt.Sprintf(`{"n":%d}`, tc.hits-1) {
			t.Errorf("max_retries %v: %d attempts, body %s", tc.retries, after-before, resp.Body)
		}
	}
}

func ptr(n int) *int { return &n }

// Each attempt's body is rewritten from the client's with that instance's
// options only.
func TestOptionsIsolation(t *testing.T) {
	a := failing(t, 500, `{}`)
	b := providertest.NewUpstream(t, nil)
	ia := withPriority(instance("a", a.URL), 1)
	ia.Options = map[string]any{"model": "model-a", "temperature": 0.1}
	ib := instance("b", b.URL)
	ib.Options = map[string]any{"model": "model-b", "top_p": 0.5}
	f := serve(t, multi(ia, ib))
	resp := f.Post(t, `{"model":"client","messages":[],"stream":true}`, nil)
	o := f.Wait(t)
	if resp.Status != 200 {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	if got, want := string(a.Last(t).Body), `{"messages":[],"stream":true,"model":"model-a","temperature":0.1,"stream_options":{"include_usage":true}}`; got != want {
		t.Errorf("a got %s\nwant %s", got, want)
	}
	if got, want := string(b.Last(t).Body), `{"messages":[],"stream":true,"model":"model-b","top_p":0.5,"stream_options":{"include_usage":true}}`; got != want {
		t.Errorf("b got %s\nwant %s", got, want)
	}
	if o.LLM.Model != "model-b" || o.LLM.Instance != "b" || !o.LLM.Stream {
		t.Errorf("LLMInfo %+v", o.LLM)
	}
	active := providertest.Samples(t, f.reg, nameActive)
	if _, ok := active[key("a", "model-a", metrics.RequestTypeStream)]; !ok || len(active) != 2 {
		t.Errorf("active series %v", active)
	}
}

// Higher priority groups are tried first; lower ones only after every
// instance of the higher ones failed.
func TestPriorityGroups(t *testing.T) {
	var mu sync.Mutex
	var order []string
	record := func(name string, status int) *providertest.Upstream {
		return providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			if status != 200 {
				providertest.Reply(status, "application/json", `{}`)(w, r)
				return
			}
			providertest.Reply(200, "application/json", providertest.Completion)(w, r)
		})
	}
	h1, h2 := record("h1", 500), record("h2", 502)
	low := record("low", 200)
	f := serve(t, multi(instance("low", low.URL), withPriority(instance("h1", h1.URL), 5), withPriority(instance("h2", h2.URL), 5)))
	for range 4 {
		mu.Lock()
		order = nil
		mu.Unlock()
		resp := f.Post(t, providertest.Chat("m", false), nil)
		f.Wait(t)
		mu.Lock()
		if resp.Status != 200 || len(order) != 3 || order[2] != "low" {
			t.Errorf("order %v, status %d", order, resp.Status)
		}
		mu.Unlock()
	}
	// A healthy high group keeps the low one idle.
	ok1, ok2 := providertest.NewUpstream(t, nil), providertest.NewUpstream(t, nil)
	idle := providertest.NewUpstream(t, nil)
	f = serve(t, multi(withPriority(instance("idle", idle.URL), -1), instance("ok1", ok1.URL), instance("ok2", ok2.URL)))
	for range 6 {
		f.Post(t, providertest.Chat("m", false), nil)
		f.Wait(t)
	}
	if idle.Hits() != 0 || ok1.Hits() != 3 || ok2.Hits() != 3 {
		t.Errorf("hits: idle %d ok1 %d ok2 %d", idle.Hits(), ok1.Hits(), ok2.Hits())
	}
}

// Smooth weighted round robin shares the requests by weight, interleaved.
func TestWeightedDistribution(t *testing.T) {
	var mu sync.Mutex
	var seq []string
	named := func(name string) *providertest.Upstream {
		return providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seq = append(seq, name)
			mu.Unlock()
			providertest.Reply(200, "application/json", providertest.Completion)(w, r)
		})
	}
	a, b := named("a"), named("b")
	ia := instance("a", a.URL)
	ia.Weight = 4
	f := serve(t, multi(ia, instance("b", b.URL)))
	for range 50 {
		f.Post(t, providertest.Chat("m", false), nil)
		f.Wait(t)
	}
	if a.Hits() != 40 || b.Hits() != 10 {
		t.Errorf("a %d, b %d: want 40 and 10", a.Hits(), b.Hits())
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seq[:10], ""); got != "aabaaaabaa" {
		t.Errorf("sequence %s, want nginx's smooth interleaving", got)
	}
	if got := providertest.Samples(t, f.reg, nameDuration); got[key("a", "m", metrics.RequestTypeChat)] != 40 || got[key("b", "m", metrics.RequestTypeChat)] != 10 {
		t.Errorf("durations %v", got)
	}
}

// A stream from a fallback instance passes as ai-proxy's do; a stream that
// breaks after it started is not retried.
func TestStreamFallback(t *testing.T) {
	m := providertest.StartMock(t)
	bad := failing(t, 500, `{}`)
	f := serve(t, multi(withPriority(instance("bad", bad.URL), 1), instance("mock", mockURL(m))))
	resp := f.Post(t, providertest.Chat("m", true), nil)
	o := f.Wait(t)
	if resp.Status != 200 || !strings.HasSuffix(string(resp.Body), "data: [DONE]\n\n") || o.LLM.Instance != "mock" || !o.LLM.UsageKnown || o.LLM.TTFT <= 0 {
		t.Errorf("%d %s; LLMInfo %+v", resp.Status, resp.Body, o.LLM)
	}
	if got := providertest.Samples(t, f.reg, "phasegate_llm_time_to_first_token_seconds"); len(got) != 1 || got[providertest.Labels("mock", "m", providertest.Route)] != 1 {
		t.Errorf("TTFT %v", got)
	}

	// Mid-stream reset on the first instance: no fallback, a final frame.
	other := providertest.NewUpstream(t, nil)
	f = serve(t, multi(withPriority(instance("mock", mockURL(m)), 1), instance("other", other.URL)))
	resp = f.Post(t, providertest.Chat("m", true), map[string]string{mockllm.HeaderResetAfter: "1"})
	o = f.Wait(t)
	if resp.Status != 200 || !strings.HasSuffix(string(resp.Body), "data: [DONE]\n\n") || other.Hits() != 0 || o.Cause != phases.CauseUpstreamError {
		t.Errorf("%d %q, other hit %d times, cause %s", resp.Status, resp.Body, other.Hits(), o.Cause)
	}
	providertest.AssertNoneActive(t, f.reg)
}

// The model recorded during access, before any attempt, and the 400 when
// no model is known.
func TestAccessModel(t *testing.T) {
	up := providertest.NewUpstream(t, nil)
	a := withPriority(instance("a", up.URL), 1)
	a.Options = map[string]any{"model": "ma"}
	f := serve(t, multi(a, instance("b", up.URL)), &accessProbe{})
	resp := f.Post(t, `{"messages":[]}`, nil)
	f.Wait(t)
	if resp.Status != 400 || !strings.Contains(string(resp.Body), "model") {
		t.Errorf("no model with an instance that sets none: %d %s", resp.Status, resp.Body)
	}
	resp = f.Post(t, providertest.Chat("c", false), nil)
	o := f.Wait(t)
	if resp.Status != 200 || resp.Header.Get("X-Access-Model") != "ma" || o.LLM.Model != "ma" || o.LLM.Instance != "a" {
		t.Errorf("%d, access model %q, LLMInfo %+v", resp.Status, resp.Header.Get("X-Access-Model"), o.LLM)
	}
}

// accessProbe reports the LLMInfo model seen after ai-proxy-multi's access.
type accessProbe struct{}

func (*accessProbe) Name() string  { return "probe" }
func (*accessProbe) Priority() int { return 1000 }
func (*accessProbe) Access(_ context.Context, r *phases.Request) phases.Exit {
	if info, ok := llm.InfoKey.Get(r.Values); ok {
		r.SetResponseHeader("X-Access-Model", info.Model)
	}
	return phases.Exit{}
}
