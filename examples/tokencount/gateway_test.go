package tokencount

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/gateway"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/plugins"
)

// The plugin in a real gateway, registered beside the built-ins: key-auth
// publishes the consumer, ai-proxy streams from the mock LLM over a
// socket, and the counter matches the tokens the client read.
func TestInAGateway(t *testing.T) {
	mock, err := mockllm.Start("127.0.0.1:0", mockllm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mock.Close()
	registry := plugins.Builtins()
	registry.Register(Spec)
	cfg, err := gateway.LoadConfig("test.yaml", fmt.Appendf(nil, `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
consumers:
  - { username: alice, key: sk-alice-0123456789 }
routes:
  - id: keyed
    uri: /v1/chat/completions
    plugins:
      key-auth: {}
      token-count: { chars_per_token: 4 }
      ai-proxy: { provider: openai-compatible, endpoint: %[1]q }
  - id: open
    uri: /open/chat
    plugins:
      token-count: {}
      ai-proxy: { provider: openai-compatible, endpoint: %[1]q }
`, mock.URL()+mockllm.PathChatCompletions), registry, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := zerolog.Nop()
	g, err := gateway.New(cfg, gateway.Options{Plugins: registry, Registerer: reg, Logger: &log})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())

	counter, _ := New(Config{CharsPerToken: 4}, prometheus.NewRegistry())
	for _, tc := range []struct{ route, path, key, consumer string }{
		{"keyed", "/v1/chat/completions", "sk-alice-0123456789", "alice"},
		{"open", "/open/chat", "", Anonymous},
	} {
		req, _ := http.NewRequest("POST", "http://"+g.Addr().String()+tc.path,
			strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(mockllm.HeaderChunks, "5")
		if tc.key != "" {
			req.Header.Set("apikey", tc.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v\n%s", tc.path, resp.StatusCode, err, body)
		}
		want := streamed(counter, body)
		if want == 0 {
			t.Fatalf("%s: the stream carried no content:\n%s", tc.path, body)
		}
		if got := gathered(t, reg, TokensMetric, tc.route, tc.consumer); got != float64(want) {
			t.Errorf("%s: counter %v, the client read %d tokens", tc.consumer, got, want)
		}
		// The gauge falls when the request's scope ends, just after the
		// client has read the end of the stream.
		deadline := time.Now().Add(5 * time.Second)
		for gathered(t, reg, StreamsMetric, tc.route, tc.consumer) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: streams in flight stays above 0", tc.consumer)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// gathered reads the series {route, consumer} of the metric name from reg;
// -1 when there is none.
func gathered(t *testing.T, reg *prometheus.Registry, name, route, consumer string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["consumer"] == consumer {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
