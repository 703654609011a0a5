package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins"
	"github.com/phasegate/phasegate/pluginsdk"
)

// closeProbe is an access-only plugin that implements io.Closer and
// records, per config generation, how often it was built and closed.
type closeProbe struct {
	gen int
	rec *closeRecord
}

type closeRecord struct {
	mu             sync.Mutex
	built, closed  map[int]int
	closedInFlight map[int]int // closes while a request of that generation ran
	inFlight       map[int]int
}

type probeConfig struct {
	Gen int `yaml:"gen"`
}

func (p *closeProbe) Name() string { return "close-probe" }

func (p *closeProbe) Access(ctx context.Context, r *phases.Request) phases.Exit {
	p.rec.mu.Lock()
	p.rec.inFlight[p.gen]++
	p.rec.mu.Unlock()
	r.Scope.Acquire(fsm.Resource{Name: "close-probe request"}, func() {
		p.rec.mu.Lock()
		p.rec.inFlight[p.gen]--
		p.rec.mu.Unlock()
	})
	return phases.Exit{}
}

func (p *closeProbe) Close() error {
	p.rec.mu.Lock()
	defer p.rec.mu.Unlock()
	p.rec.closed[p.gen]++
	if p.rec.inFlight[p.gen] > 0 {
		p.rec.closedInFlight[p.gen]++
	}
	return nil
}

func (r *closeRecord) get(m map[int]int, gen int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return m[gen]
}

// probeRegistry returns the built-ins plus close-probe, whose instances
// report to the returned record.
func probeRegistry() (*closeRecord, *pluginsdk.Registry) {
	rec := &closeRecord{built: map[int]int{}, closed: map[int]int{}, closedInFlight: map[int]int{}, inFlight: map[int]int{}}
	registry := plugins.Builtins()
	registry.Register(pluginsdk.Typed(pluginsdk.Spec{Name: "close-probe"},
		func() probeConfig { return probeConfig{} },
		func(c probeConfig, env pluginsdk.Env) (phases.Plugin, error) {
			rec.mu.Lock()
			rec.built[c.Gen]++
			rec.mu.Unlock()
			return &closeProbe{gen: c.Gen, rec: rec}, nil
		}))
	return rec, registry
}

// A reload closes the retired config's io.Closer plugins only once the
// last request that started on them has ended, once; Shutdown closes the
// current config's after the drain.
func TestPluginsClosedAfterReloadAndShutdown(t *testing.T) {
	rec, registry := probeRegistry()

	arrived, release := make(chan struct{}, 4), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}))
	defer slow.Close()
	defer free() // a failed test must not leave the handler, and slow.Close, waiting
	config := func(gen int) string {
		return fmt.Sprintf(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - id: r
    uri: /*
    plugins: { close-probe: { gen: %d } }
    upstream: { nodes: { %q: 1 }, timeout: 10s }
`, gen, slow.Listener.Addr().String())
	}
	tg := buildTestGateway(t, config(1), registry)
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	shutdown := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return tg.Shutdown(ctx)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = shutdown()
		}
	}()
	get := func(path string) error {
		resp, err := http.Get(tg.url(path))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "done" {
			return fmt.Errorf("GET %s: %d %q", path, resp.StatusCode, b)
		}
		return nil
	}
	inFlight := make(chan error, 1)
	go func() { inFlight <- get("/slow") }()
	<-arrived

	cfg2, err := LoadConfig("test.yaml", []byte(config(2)), registry, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Reload(cfg2); err != nil {
		t.Fatal(err)
	}
	// Generation 2 serves new requests while generation 1's still runs.
	if err := get("/fast"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := rec.get(rec.closed, 1); n != 0 {
		t.Fatalf("generation 1 closed %d times while its request was in flight", n)
	}
	free()
	if err := <-inFlight; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return rec.get(rec.closed, 1) > 0 }, "generation 1 closed after its last request")
	if rec.get(rec.closed, 2) != 0 {
		t.Fatal("the serving generation was closed by the reload")
	}

	stopped = true
	if err := shutdown(); err != nil {
		t.Fatal(err)
	}
	// A second Shutdown changes nothing, and a request handed to the
	// gateway as an http.Handler afterwards gets a 503 instead of hanging.
	if err := shutdown(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		tg.Gateway.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/fast", nil))
		done <- rec.Code
	}()
	select {
	case code := <-done:
		if code != http.StatusServiceUnavailable {
			t.Errorf("a request after Shutdown got %d, want 503", code)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a request after Shutdown hangs")
	}
	for gen := 1; gen <= 2; gen++ {
		if b, c, early := rec.get(rec.built, gen), rec.get(rec.closed, gen), rec.get(rec.closedInFlight, gen); c != b || early != 0 {
			t.Errorf("generation %d: built %d, closed %d (%d while a request ran)", gen, b, c, early)
		}
	}
}

// waitFor polls cond for up to 3 s.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 3s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A Shutdown whose drain runs out of time still closes the io.Closer
// plugins: once the request it gave up on has ended, and never while it
// runs.
func TestPluginsClosedAfterShutdownDeadline(t *testing.T) {
	rec, registry := probeRegistry()
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "done")
	}))
	defer slow.Close()
	defer free()
	tg := buildTestGateway(t, fmt.Sprintf(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - id: r
    uri: /*
    plugins: { close-probe: { gen: 1 } }
    upstream: { nodes: { %q: 1 }, timeout: 10s }
`, slow.Listener.Addr().String()), registry)
	if err := tg.Start(); err != nil {
		t.Fatal(err)
	}
	inFlight := make(chan error, 1)
	go func() {
		resp, err := http.Get(tg.url("/slow"))
		if err == nil {
			resp.Body.Close()
		}
		inFlight <- err
	}()
	<-arrived

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := tg.Shutdown(ctx); err == nil {
		t.Fatal("Shutdown drained a request that was still waiting for its upstream")
	}
	<-inFlight // the connection is closed under the client
	time.Sleep(50 * time.Millisecond)
	if n := rec.get(rec.closed, 1); n != 0 && rec.get(rec.closedInFlight, 1) != 0 {
		t.Fatal("the plugin was closed while the request it serves still ran")
	}
	free() // the upstream answers; the abandoned request ends
	waitFor(t, func() bool { return rec.get(rec.closed, 1) == 1 }, "the plugin closed after the abandoned request ended")
	if early := rec.get(rec.closedInFlight, 1); early != 0 {
		t.Errorf("closed %d times while a request ran", early)
	}
	if err := tg.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if n := rec.get(rec.closed, 1); n != 1 {
		t.Errorf("closed %d times, want once", n)
	}
}
