package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/internal/otlptest"
	"github.com/phasegate/phasegate/llm/provider/providertest"
)

// BenchmarkTracingPerRequest is one request through the gateway's
// ServeHTTP (no client socket: only the gateway's side and its upstream
// call are measured), on a plain route and on an AI route (ai-proxy to the
// mock LLM, not streamed), with tracing off (no tracing: block) and on
// (ratio 1.0, exported over gRPC to an OTLP receiver in this process).
// docs/benchmarks.md records the figures.
func BenchmarkTracingPerRequest(b *testing.B) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer origin.Close()
	mock := providertest.StartMock(b)
	rcv := otlptest.Start(b)
	rcv.Discard()
	routes := fmt.Sprintf(`
routes:
  - id: plain
    uri: /plain
    upstream: { nodes: { %q: 1 } }
  - id: chat
    uri: /v1/chat/completions
    plugins:
      ai-proxy: { provider: openai-compatible, endpoint: "%s/v1/chat/completions", options: { model: gpt-4o-mini } }
`, origin.Listener.Addr().String(), mock.URL())
	on := fmt.Sprintf("tracing: { otlp: { endpoint: %q }, sampler: { ratio: 1.0 } }\n", rcv.GRPCEndpoint())
	const chatBody = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	for _, tracingCase := range []struct{ name, block string }{{"off", ""}, {"on", on}} {
		g := benchGateway(b, tracingCase.block+routes)
		for _, route := range []string{"plain", "chat"} {
			b.Run(route+"/tracing="+tracingCase.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					var req *http.Request
					if route == "plain" {
						req = httptest.NewRequest("GET", "/plain", nil)
					} else {
						req = httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(chatBody))
						req.Header.Set("Content-Type", "application/json")
					}
					w := httptest.NewRecorder()
					g.ServeHTTP(w, req)
					if w.Code != 200 {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		}
		_ = g.Shutdown(context.Background())
	}
}
