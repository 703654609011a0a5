package airatelimiting_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/gateway"
	"github.com/phasegate/phasegate/internal/redistest"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/plugins"
)

// lockedLog collects the gateway's log lines.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// access returns the access-log lines of route, decoded.
func (l *lockedLog) access(t *testing.T, route string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["message"] == "access" && m["route"] == route {
			out = append(out, m)
		}
	}
	return out
}

// gatewayRoute is a route of the built-in plugins: ai-rate-limiting with
// limits (YAML), in front of ai-proxy to the mock LLM.
func gatewayRoute(id, mockURL, rateLimiting string) string {
	return fmt.Sprintf(`
  - id: %s
    uri: /%s/v1/chat/completions
    plugins:
      ai-rate-limiting: %s
      ai-proxy: { provider: openai-compatible, endpoint: "%s/v1/chat/completions" }`, id, id, rateLimiting, mockURL)
}

// redisClients counts the clients connected to srv other than probe.
func redisClients(t *testing.T, probe *redis.Client) int {
	t.Helper()
	ctx := context.Background()
	self, err := probe.ClientID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	list, err := probe.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if line != "" && !strings.HasPrefix(line, fmt.Sprintf("id=%d ", self)) {
			n++
		}
	}
	return n
}

// The gateway with the built-in registry: the access log carries the
// plugin's fields, counters survive reloads that keep a store (Redis and
// local alike), and the reload that drops the last route on a Redis store
// closes its client and keeper.
func TestGatewayReloadKeepsAndClosesStores(t *testing.T) {
	srv := redistest.Start(t)
	mock := providertest.StartMock(t)
	probe := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = probe.Close() })

	viaRedis := fmt.Sprintf(`{ policy: redis, redis: { address: "%s", timeout: 2s }, limits: [ { name: rpm, key: route, requests: 2, window: 1h } ] }`, srv.Addr())
	viaLocal := `{ policy: local, limits: [ { name: rpm, key: route, requests: 2, window: 1h } ] }`
	load := func(routes ...string) *gateway.Config {
		t.Helper()
		cfg, err := gateway.LoadConfig("reload.yaml", []byte("routes:"+strings.Join(routes, "")), plugins.Builtins(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	var logs lockedLog
	log := zerolog.New(&logs)
	transport := forward.NewTransport()
	t.Cleanup(transport.CloseIdleConnections)
	g, err := gateway.New(load(gatewayRoute("a", mock.URL(), viaRedis), gatewayRoute("l", mock.URL(), viaLocal)),
		gateway.Options{Logger: &log, Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	post := func(route string) int {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/"+route+"/v1/chat/completions", strings.NewReader(llmChat))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		return rec.Code
	}

	for _, route := range []string{"a", "l"} {
		if code := post(route); code != http.StatusOK {
			t.Fatalf("route %s, first request: %d", route, code)
		}
	}
	lines := logs.access(t, "a")
	if len(lines) != 1 {
		t.Fatalf("%d access lines for route a", len(lines))
	}
	want := map[string]any{"ratelimit": "", "reserved": map[string]any{"rpm": 1.0}, "committed": map[string]any{"rpm": 1.0}}
	for k, v := range want {
		if got, _ := json.Marshal(lines[0][k]); string(got) != mustJSON(t, v) {
			t.Errorf("access log %s = %s, want %s", k, got, mustJSON(t, v))
		}
	}
	if redisClients(t, probe) == 0 {
		t.Fatal("the gateway holds no Redis connection")
	}

	// Reload keeping both stores (and adding a route on the Redis one): the
	// counters go on, so each route admits one more request and rejects the
	// next.
	if err := g.Reload(load(gatewayRoute("a", mock.URL(), viaRedis), gatewayRoute("l", mock.URL(), viaLocal),
		gatewayRoute("b", mock.URL(), viaRedis))); err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{"a", "l"} {
		if code := post(route); code != http.StatusOK {
			t.Fatalf("route %s after the reload: %d", route, code)
		}
		if code := post(route); code != http.StatusTooManyRequests {
			t.Fatalf("route %s, third request in the window: %d, want 429", route, code)
		}
	}
	rejected := logs.access(t, "a")
	if last := rejected[len(rejected)-1]; last["ratelimit"] != "rpm" || mustJSON(t, last["committed"]) != `{}` {
		t.Errorf("access log of the rejected request: ratelimit=%v committed=%v", last["ratelimit"], mustJSON(t, last["committed"]))
	}

	// Dropping route a keeps the store for b; dropping b as well closes it.
	if err := g.Reload(load(gatewayRoute("b", mock.URL(), viaRedis), gatewayRoute("l", mock.URL(), viaLocal))); err != nil {
		t.Fatal(err)
	}
	if redisClients(t, probe) == 0 {
		t.Fatal("the Redis client was closed while route b still uses it")
	}
	if err := g.Reload(load(gatewayRoute("l", mock.URL(), viaLocal))); err != nil {
		t.Fatal(err)
	}
	var n int
	if !providertest.Eventually(5*time.Second, func() bool { n = redisClients(t, probe); return n == 0 }) {
		t.Fatalf("%d Redis connections left after the reload that dropped the store's last route", n)
	}
	// The local store survived the three reloads that kept a local route.
	if code := post("l"); code != http.StatusTooManyRequests {
		t.Fatalf("route l after dropping the Redis routes: %d, want 429", code)
	}
	// Retire the last config, so that its keeper stops before goleak looks.
	if err := g.Reload(load(`
  - id: plain
    uri: /plain
    upstream: { nodes: { "` + mock.Addr() + `": 1 } }`)); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// On the Messages and Responses doors, translated or not, a token limit
// charges the usage each reply reported, streamed or whole.
func TestGatewayTokenLimitOnEveryDoor(t *testing.T) {
	mock := providertest.StartMock(t)
	limits := `{ policy: local, limits: [ { name: tpm, key: route, tokens: 100000, window: 1h } ] }`
	var routes strings.Builder
	for _, prov := range providertest.Providers {
		fmt.Fprintf(&routes, `
  - id: %[1]s
    uri: /%[1]s/*
    plugins:
      ai-rate-limiting: %[2]s
      ai-proxy: { provider: %[1]s, endpoint: %[3]q }`, prov, limits, providertest.Endpoint(mock, prov))
	}
	cfg, err := gateway.LoadConfig("doors.yaml", []byte("routes:"+routes.String()), plugins.Builtins(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedLog
	log := zerolog.New(&logs)
	transport := forward.NewTransport()
	t.Cleanup(transport.CloseIdleConnections)
	g, err := gateway.New(cfg, gateway.Options{Logger: &log, Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Retire the config, so that its keeper stops before goleak looks.
		plain, err := gateway.LoadConfig("plain.yaml", []byte(`
routes:
  - id: plain
    uri: /plain
    upstream: { nodes: { "`+mock.Addr()+`": 1 } }`), plugins.Builtins(), nil)
		if err == nil {
			err = g.Reload(plain)
		}
		if err != nil {
			t.Error(err)
		}
	})
	for _, prov := range providertest.Providers {
		n := 0
		for _, d := range providertest.Doors {
			for _, stream := range []bool{false, true} {
				req := httptest.NewRequest(http.MethodPost, "/"+prov+d.Path, strings.NewReader(d.Body("m", stream)))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				g.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Fatalf("%s %s stream %v: %d %s", prov, d.Protocol, stream, rec.Code, rec.Body)
				}
				n++
				line := logs.access(t, prov)[n-1]
				committed, _ := line["committed"].(map[string]any)
				// The mock's usage: its prompt and completion tokens.
				if want := float64(line["prompt_tokens"].(float64) + line["completion_tokens"].(float64)); committed["tpm"] != want || want == 0 {
					t.Errorf("%s %s stream %v: committed %v, want the reported usage %v", prov, d.Protocol, stream, line["committed"], want)
				}
			}
		}
	}
}
