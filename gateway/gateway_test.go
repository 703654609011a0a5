package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins"
	"github.com/phasegate/phasegate/pluginsdk"
)

// upstream is a test origin with the behaviours the gateway tests need.
type upstream struct {
	*httptest.Server
	release   chan struct{} // /stream waits on it between its two chunks
	started   chan struct{} // /hang signals when a request arrives
	cancelled chan struct{} // /hang signals when its request context ends
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{release: make(chan struct{}), started: make(chan struct{}, 8), cancelled: make(chan struct{}, 8)}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Connection", "X-Secret-Hop") // must not reach the client
		w.Header().Set("X-Secret-Hop", "1")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery, "body": string(body),
			"xff": r.Header.Get("X-Forwarded-For"), "request_id": r.Header.Get("X-Request-Id"),
			"apikey": r.Header.Get("apikey"),
		})
	})
	mux.HandleFunc("/api/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-u.release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: two\n\n")
	})
	hang := func(w http.ResponseWriter, r *http.Request) {
		u.started <- struct{}{}
		<-r.Context().Done()
		u.cancelled <- struct{}{}
	}
	mux.HandleFunc("/hang", hang)
	mux.HandleFunc("/hang-long", hang)
	u.Server = httptest.NewServer(mux)
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) node() string { return strings.TrimPrefix(u.URL, "http://") }

func plainConfig(node string) string {
	return fmt.Sprintf(`
routes:
  - id: api
    uri: /api/*
    upstream: { nodes: { %q: 1 }, timeout: 2s }
  - id: exact
    uri: /exact
    methods: [GET]
    upstream: { nodes: { %q: 1 } }
  - id: dead
    uri: /dead
    upstream: { nodes: { "127.0.0.1:1": 1 } }
  - id: slow
    uri: /hang
    upstream: { nodes: { %q: 1 }, timeout: 200ms }
  - id: hang
    uri: /hang-long
    upstream: { nodes: { %q: 1 }, timeout: 30s }
`, node, node, node, node)
}

func TestPlainRouteProxiesGETAndPOST(t *testing.T) {
	up := newUpstream(t)
	tg := newTestGateway(t, plainConfig(up.node()))

	resp, err := http.Get(tg.url("/api/echo?x=1&y=2"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || got["method"] != "GET" || got["path"] != "/api/echo" || got["query"] != "x=1&y=2" {
		t.Fatalf("GET: %d %v", resp.StatusCode, got)
	}
	if id := resp.Header.Get("X-Request-Id"); id == "" || id != got["request_id"] {
		t.Fatalf("request id: response %q, upstream saw %q", id, got["request_id"])
	}
	if got["xff"] != "127.0.0.1" {
		t.Fatalf("X-Forwarded-For %q", got["xff"])
	}
	if resp.Header.Get("X-Secret-Hop") != "" {
		t.Fatal("a header named by Connection crossed the gateway")
	}

	resp, err = http.Post(tg.url("/api/items"), "text/plain", strings.NewReader("hello body"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got["method"] != "POST" || got["body"] != "hello body" {
		t.Fatalf("POST: %v", got)
	}
	tg.waitGaugesZero(t, metrics.NameHTTPActive)
}

// The client must receive the first event before the upstream sends the
// second: nothing is buffered.
func TestPlainRouteStreamsAsItArrives(t *testing.T) {
	up := newUpstream(t)
	tg := newTestGateway(t, plainConfig(up.node()))
	resp, err := http.Get(tg.url("/api/stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	if err != nil || string(buf[:n]) != "data: one\n\n" {
		t.Fatalf("first read %q, %v", buf[:n], err)
	}
	close(up.release)
	if rest := readAll(t, resp.Body); rest != "data: two\n\n" {
		t.Fatalf("rest %q", rest)
	}
}

type errorCase struct {
	name, method, path string
	status             int
	cause, exitPlugin  string
}

func TestGatewayErrorsAreJSONWithTheirStatus(t *testing.T) {
	up := newUpstream(t)
	tg := newTestGateway(t, plainConfig(up.node()))
	for _, tc := range []errorCase{
		{"no route", "GET", "/nowhere", 404, "exit", "router"},
		{"wrong method", "POST", "/exact", 405, "exit", "router"},
		{"unreachable", "GET", "/dead", 502, "upstream_error", "upstream"},
		{"timeout", "GET", "/hang", 504, "timeout", "upstream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tg.url(tc.path), nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp.Body)
			resp.Body.Close()
			var e struct {
				Error struct {
					Message string `json:"message"`
					Type    string `json:"type"`
					Code    int    `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != tc.status || e.Error.Code != tc.status || e.Error.Message == "" {
				t.Fatalf("status %d body %q (%v)", resp.StatusCode, body, err)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if tc.status == 405 && resp.Header.Get("Allow") != "GET" {
				t.Fatalf("Allow %q", resp.Header.Get("Allow"))
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Fatal("an error response lacks X-Request-Id")
			}
		})
	}
	lines := tg.log.waitAccessLines(t, 4)
	// Under the timeout the upstream sees a cancellation; drain it.
	<-up.started
	for i, tc := range []errorCase{{cause: "exit", exitPlugin: "router"}, {cause: "exit", exitPlugin: "router"}, {cause: "upstream_error", exitPlugin: "upstream"}, {cause: "timeout", exitPlugin: "upstream"}} {
		if lines[i]["cause"] != tc.cause || lines[i]["exit_plugin"] != tc.exitPlugin {
			t.Errorf("line %d: cause %v exit_plugin %v, want %s %s", i, lines[i]["cause"], lines[i]["exit_plugin"], tc.cause, tc.exitPlugin)
		}
	}
	tg.waitGaugesZero(t, metrics.NameHTTPActive)
}

// A slow upstream and a client that gives up: the upstream request is
// cancelled at once, the active gauges fall to 0 and the log says
// client_closed.
func TestClientDisconnectCancelsUpstreamAndReleases(t *testing.T) {
	up := newUpstream(t)
	tg := newTestGateway(t, plainConfig(up.node()))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", tg.url("/hang-long"), nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	<-up.started
	if v := counterGauge(t, tg, "hang"); v != 1 {
		t.Fatalf("active requests during the request: %v, want 1", v)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v", err)
	}
	select {
	case <-up.cancelled:
	case <-time.After(2 * time.Second):
		t.Fatal("the upstream request was not cancelled when the client left")
	}
	tg.waitGaugesZero(t, metrics.NameHTTPActive, metrics.NameLLMActive)
	if line := tg.log.waitAccessLines(t, 1)[0]; line["cause"] != "client_closed" || line["status"] != float64(499) {
		t.Fatalf("access line %v", line)
	}
	if got := counter(t, tg.Metrics().LifecycleAborts.WithLabelValues("hang", "upstream", "client_closed")); got != 1 {
		t.Fatalf("aborts_total = %v", got)
	}
}

func counterGauge(t *testing.T, tg *testGateway, route string) float64 {
	return testutil.ToFloat64(tg.Metrics().HTTPActive.WithLabelValues(route))
}

// Clients keep sending while the config is reloaded ten times, valid and
// invalid alternately: no request fails because of a reload, and an invalid
// config changes nothing.
func TestReloadUnderLoad(t *testing.T) {
	up := newUpstream(t)
	// The /api route's 2 s timeout is for the timeout tests; here a 504
	// from a machine busy with other packages' tests is not a reload's.
	base := strings.Replace(plainConfig(up.node()), "timeout: 2s", "timeout: 30s", 1)
	reg := plugins.Builtins()
	reg.Register(flakySpec)
	tg := newTestGatewayWith(t, base, reg)
	var ok, failed atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(tg.url("/api/ping"))
				if err != nil {
					failed.Add(1)
					failures.Store(err.Error(), true)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					failures.Store(resp.Status, true)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := 0; i < 10; i++ {
		time.Sleep(20 * time.Millisecond)
		if i%2 == 0 {
			cfg, err := LoadConfig("v.yaml", []byte(base+fmt.Sprintf(`
  - id: extra%d
    uri: /extra
    upstream: { nodes: { %q: 1 } }
`, i, up.node())), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := tg.Reload(cfg); err != nil {
				t.Fatalf("valid reload %d: %v", i, err)
			}
			if got := tg.Config().Routes[len(tg.Config().Routes)-1].ID; got != fmt.Sprintf("extra%d", i) {
				t.Fatalf("after reload %d the config serves route %q", i, got)
			}
			continue
		}
		before := tg.Config()
		// A file that loads but whose plugin cannot be built: only
		// building finds it, so Reload itself must refuse it.
		cfg, err := LoadConfig("bad.yaml", []byte(base+fmt.Sprintf(`
  - id: broken
    uri: /broken
    plugins: { flaky: { fail: true } }
    upstream: { nodes: { %q: 1 } }
`, up.node())), reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = tg.Reload(cfg)
		if err == nil || !strings.Contains(err.Error(), "bad.yaml:") || !strings.Contains(err.Error(), "routes[5].plugins.flaky: flaky refuses to build") {
			t.Fatalf("invalid reload %d: %v", i, err)
		}
		if tg.Config() != before {
			t.Fatal("an invalid reload changed the served config")
		}
	}
	close(stop)
	wg.Wait()
	var msgs []string
	failures.Range(func(k, _ any) bool { msgs = append(msgs, k.(string)); return true })
	if failed.Load() > 0 || ok.Load() == 0 {
		t.Fatalf("%d requests failed (%v), %d succeeded", failed.Load(), msgs, ok.Load())
	}
	tg.waitGaugesZero(t, metrics.NameHTTPActive)
}

func TestAdminEndpointsAndLifecycle(t *testing.T) {
	up := newUpstream(t)
	cfg, err := LoadConfig("t.yaml", []byte("listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\n"+plainConfig(up.node())), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := zerologNop()
	g, err := New(cfg, Options{Logger: &l})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	base := "http://" + g.AdminAddr().String()
	for path, want := range map[string]string{
		"/healthz":              "ok",
		"/lifecycle":            "stateDiagram-v2",
		"/lifecycle?format=dot": "digraph fsm",
		"/metrics":              "phasegate_http_active_requests",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	resp, err := http.Get("http://" + g.Addr().String() + "/api/x")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("data plane: %v %v", resp, err)
	}
	resp.Body.Close()
}

// flaky is a plugin whose New fails on demand: a config that loads but
// cannot be built.
type flakyConfig struct {
	Fail bool `yaml:"fail"`
}

type flakyPlugin struct{}

func (flakyPlugin) Name() string { return "flaky" }

var flakySpec = pluginsdk.Spec{
	Name:   "flaky",
	Config: func() any { return &flakyConfig{} },
	New: func(cfg any, env pluginsdk.Env) (phases.Plugin, error) {
		if cfg.(*flakyConfig).Fail {
			return nil, errors.New("flaky refuses to build")
		}
		return flakyPlugin{}, nil
	},
}

// undeclared provides an upstream although its spec does not say so.
type undeclared struct{}

func (undeclared) Name() string { return "undeclared" }
func (undeclared) Upstream(context.Context, *phases.Request) (*phases.Response, error) {
	return &phases.Response{Status: http.StatusOK}, nil
}

// A plugin that provides an upstream without declaring it passes config
// loading, and building the route finds the second upstream with the same
// problem loading reports.
func TestUndeclaredSecondUpstream(t *testing.T) {
	reg := plugins.Builtins()
	reg.Register(pluginsdk.Spec{Name: "undeclared", New: func(any, pluginsdk.Env) (phases.Plugin, error) { return undeclared{}, nil }})
	cfg, err := LoadConfig("two.yaml", []byte(`
routes:
  - id: two
    uri: /two
    plugins:
      undeclared: {}
    upstream: { nodes: { "127.0.0.1:1": 1 } }
`), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	quiet := zerolog.Nop()
	_, err = New(cfg, Options{Registerer: prometheus.NewRegistry(), Logger: &quiet, Plugins: reg})
	want := "routes[0]: route has 2 upstreams (undeclared, upstream): keep exactly one of upstream: and the AI upstream plugins"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("New: %v, want an error with %q", err, want)
	}
}
