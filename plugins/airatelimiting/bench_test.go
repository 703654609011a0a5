package airatelimiting_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phasegate/phasegate/internal/redistest"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/airatelimiting"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/ratelimit"
)

// completion is an in-process upstream answering a completion with usage.
type completion struct{}

const benchCompletion = `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}`

func (completion) Name() string { return "upstream" }
func (completion) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	return &phases.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: phases.BytesBody([]byte(benchCompletion))}, nil
}

// BenchmarkRequest is one request through a chain with no limiter, the
// local policy and the redis policy (a real redis-server on loopback),
// each with a tokens, a requests and a concurrency limit.
func BenchmarkRequest(b *testing.B) {
	cfg := limits(
		airatelimiting.LimitConfig{Name: "tpm", Key: "header:X-Tenant", Tokens: ratelimit.MaxAmount, Window: time.Hour},
		airatelimiting.LimitConfig{Name: "rpm", Key: "header:X-Tenant", Requests: ratelimit.MaxAmount, Window: time.Hour},
		airatelimiting.LimitConfig{Name: "slots", Key: "header:X-Tenant", Concurrent: 1 << 20},
	)
	run := func(b *testing.B, plugins ...phases.Plugin) {
		chain, err := phases.NewChain(phases.Options{Route: "bench"}, append(plugins, completion{})...)
		if err != nil {
			b.Fatal(err)
		}
		body := `{"model":"m","max_tokens":64,"messages":[{"role":"user","content":"say hello to the gateway"}]}`
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Tenant", "acme")
			rec := httptest.NewRecorder()
			chain.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("%d %s", rec.Code, rec.Body)
			}
		}
	}
	b.Run("none", func(b *testing.B) { run(b) })
	b.Run("local", func(b *testing.B) {
		p := newPlugin(b, cfg, pluginsdk.Env{Route: "bench", Registerer: prometheus.NewRegistry()}, ratelimit.NewLocal(ratelimit.LocalOptions{}))
		run(b, p)
	})
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b)
		store, err := ratelimit.NewRedis(ratelimit.RedisConfig{Address: srv.Addr(), Timeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = store.Close() })
		p := newPlugin(b, cfg, pluginsdk.Env{Route: "bench", Registerer: prometheus.NewRegistry()}, store)
		run(b, p)
		p.Close()
	})
}
