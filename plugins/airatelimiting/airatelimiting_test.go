package airatelimiting_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/plugins/airatelimiting"
	"github.com/phasegate/phasegate/ratelimit"
)

// errorOf decodes an OpenAI-shaped error body.
func errorOf(t *testing.T, body []byte) (typ, msg string) {
	t.Helper()
	var e struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an OpenAI error: %s", body)
	}
	return e.Error.Type, e.Error.Message
}

func TestRequestsOverTheLimitGet429WithRetryAfter(t *testing.T) {
	f := serve(t, limits(airatelimiting.LimitConfig{Name: "rpm", Requests: 2, Window: time.Hour}), nil)
	for i := range 2 {
		r := f.Post(t, providertest.Chat("m", false), nil)
		f.Wait(t)
		if r.Status != 200 {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
		if got := r.Header.Get("X-RateLimit-Remaining-rpm"); got != []string{"1", "0"}[i] {
			t.Fatalf("request %d: remaining %q", i, got)
		}
		if r.Header.Get("X-RateLimit-Limit-rpm") != "2" || r.Header.Get("X-RateLimit-Reset-rpm") == "" {
			t.Fatalf("request %d: headers %v", i, r.Header)
		}
	}
	r := f.Post(t, providertest.Chat("m", false), nil)
	o := f.Wait(t)
	if r.Status != 429 || o.ExitPlugin != airatelimiting.Name {
		t.Fatalf("third request: %d by %q", r.Status, o.ExitPlugin)
	}
	typ, msg := errorOf(t, r.Body)
	if typ != airatelimiting.TypeRateLimited || !strings.Contains(msg, `"rpm"`) {
		t.Fatalf("error %q %q", typ, msg)
	}
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After %q", ra)
	}
	if n := sample(t, f.reg, airatelimiting.MetricRejected, "rpm", providertest.Route); n != 1 {
		t.Fatalf("rejected_total = %v", n)
	}
	if n := sample(t, f.reg, airatelimiting.MetricCommitted, "rpm", providertest.Route); n != 2 {
		t.Fatalf("committed_total = %v", n)
	}
	if f.mock.Mock().Stats().Requests != 2 {
		t.Fatalf("the upstream saw %d requests", f.mock.Mock().Stats().Requests)
	}
}

func TestCostBudgetAnswersInsufficientQuotaWithoutRetryAfter(t *testing.T) {
	cfg := limits(airatelimiting.LimitConfig{Name: "budget", Key: "header:X-Team", Cost: 0.001, Window: time.Hour})
	cfg.Prices = map[string]airatelimiting.Price{"*": {Prompt: 1, Completion: 4}}
	cfg.Estimate.CompletionTokens = 100 // 400 micro-dollars reserved a request
	f := serve(t, cfg, nil)
	team := map[string]string{"X-Team": "a"}
	var statuses []int
	for range 3 {
		r := f.Post(t, providertest.Chat("m", false), team)
		f.Wait(t)
		statuses = append(statuses, r.Status)
		if r.Status == 429 {
			typ, _ := errorOf(t, r.Body)
			if typ != airatelimiting.TypeInsufficientQuota || r.Header.Get("Retry-After") != "" {
				t.Fatalf("budget answer: %s, Retry-After %q", r.Body, r.Header.Get("Retry-After"))
			}
		}
	}
	// the mock charges ~5 prompt and 3 completion tokens: 17 micro-dollars
	// each, so the third request fits its 400 after two commits
	if statuses[0] != 200 || statuses[1] != 200 || statuses[2] != 200 {
		t.Fatalf("statuses %v", statuses)
	}
	// another team has its own budget; one over-large reservation is refused
	r := f.Post(t, `{"model":"m","max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}`, map[string]string{"X-Team": "b"})
	f.Wait(t)
	if r.Status != 429 {
		t.Fatalf("a 4000 micro-dollar reservation on a 1000 budget: %d", r.Status)
	}
}

func TestStoreDownFailClosedAnswers503(t *testing.T) {
	store, err := ratelimit.NewRedis(ratelimit.RedisConfig{Address: providertest.DeadAddr(t), Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	cfg := limits(airatelimiting.LimitConfig{Name: "rpm", Requests: 10, Window: time.Minute})
	f := serve(t, cfg, store)
	start := time.Now()
	r := f.Post(t, providertest.Chat("m", false), nil)
	f.Wait(t)
	if typ, _ := errorOf(t, r.Body); r.Status != 503 || typ != airatelimiting.TypeServiceUnavailable {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the answer took %v", d)
	}
	if n := sample(t, f.reg, airatelimiting.MetricStoreErrors, providertest.Route); n != 1 {
		t.Fatalf("store_errors_total = %v", n)
	}

	cfg.OnStoreError = airatelimiting.FailOpen
	f = serve(t, cfg, store)
	r = f.Post(t, providertest.Chat("m", false), nil)
	f.Wait(t)
	if r.Status != 200 {
		t.Fatalf("fail_open: %d %s", r.Status, r.Body)
	}
	f.plugin.Close()
	if n := sample(t, f.reg, airatelimiting.MetricCommitted, "rpm", providertest.Route); n != 1 {
		t.Fatalf("fail_open counts locally: committed_total = %v", n)
	}
}

func TestStreamUsageChunkKeptFromAClientThatDidNotAskForIt(t *testing.T) {
	cfg := limits(airatelimiting.LimitConfig{Name: "tpm", Tokens: 100000, Window: time.Minute})
	for _, tc := range []struct {
		name, body string
		usage      bool
	}{
		{"not asked", `{"model":"m","stream":true,"messages":[{"role":"user","content":"one two three"}]}`, false},
		{"turned off", `{"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"one two three"}]}`, false},
		{"asked", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three"}]}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := serve(t, cfg, nil)
			r := f.Post(t, tc.body, map[string]string{mockllm.HeaderContent: "a b c d"})
			o := f.Wait(t)
			if r.Status != 200 || !strings.HasSuffix(string(r.Body), "data: [DONE]\n\n") {
				t.Fatalf("%d %q", r.Status, r.Body)
			}
			if got := strings.Contains(string(r.Body), `"usage"`); got != tc.usage {
				t.Fatalf("usage in the stream: %v, want %v\n%s", got, tc.usage, r.Body)
			}
			// the mock counts words: 3 prompt, 4 completion
			if n := sample(t, f.reg, airatelimiting.MetricCommitted, "tpm", providertest.Route); n != 7 || !o.LLM.UsageKnown {
				t.Fatalf("committed %v, usage known %v", n, o.LLM.UsageKnown)
			}
		})
	}
}

func TestEnforceMaxTokensSetsWhatWasReserved(t *testing.T) {
	cfg := limits(airatelimiting.LimitConfig{Name: "tpm", Tokens: 100000, Window: time.Minute})
	cfg.Estimate.EnforceMaxTokens = true
	cfg.Estimate.CompletionTokens = 77
	up := providertest.NewUpstream(t, providertest.Reply(200, "application/json", providertest.Completion))
	env, _ := providertest.NewEnv(t)
	f := serveOn(t, cfg, env, up.URL)
	r := f.Post(t, providertest.Chat("m", false), nil)
	f.Wait(t)
	if r.Status != 200 || !strings.Contains(string(up.Last(t).Body), `"max_tokens":77`) {
		t.Fatalf("%d; upstream got %s", r.Status, up.Last(t).Body)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		l     airatelimiting.LimitConfig
		field string
	}{
		{"two amounts", airatelimiting.LimitConfig{Name: "x", Tokens: 1, Requests: 1, Window: time.Second}, "limits[0]"},
		{"no window", airatelimiting.LimitConfig{Name: "x", Tokens: 1}, "limits[0].window"},
		{"concurrent window", airatelimiting.LimitConfig{Name: "x", Concurrent: 1, Window: time.Second}, "limits[0].window"},
		{"bad key", airatelimiting.LimitConfig{Name: "x", Requests: 1, Window: time.Second, Key: "cookie"}, "limits[0].key"},
		{"bad name", airatelimiting.LimitConfig{Name: "a b", Requests: 1, Window: time.Second}, "limits[0].name"},
		{"bad strategy", airatelimiting.LimitConfig{Name: "x", Tokens: 1, Window: time.Second, Strategy: "words"}, "limits[0].strategy"},
	} {
		c := limits(tc.l)
		errs := c.Validate()
		if len(errs) != 1 || errs[0].Field != tc.field {
			t.Errorf("%s: %v, want one error at %s", tc.name, errs, tc.field)
		}
	}
	c := limits(airatelimiting.LimitConfig{Name: "b", Cost: 1, Window: time.Hour})
	if errs := c.Validate(); len(errs) != 1 || errs[0].Field != "prices" {
		t.Errorf("cost without prices: %v", errs)
	}
	c = limits(airatelimiting.LimitConfig{Name: "x", Requests: 1, Window: time.Second})
	c.Policy, c.Lease = airatelimiting.PolicyRedis, 200*time.Millisecond
	if errs := c.Validate(); len(errs) != 1 || errs[0].Field != "lease" {
		t.Errorf("a lease under three timeouts: %v", errs)
	}
	c = limits(airatelimiting.LimitConfig{Name: "x", Requests: 1, Window: time.Second})
	if errs := c.Validate(); errs != nil {
		t.Errorf("valid config: %v", errs)
	}
}
