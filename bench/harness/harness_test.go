package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/goleak"
	"gopkg.in/yaml.v3"
)

// childEnv selects what the test binary does when a test starts it as a
// child process.
const childEnv = "HARNESS_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	goleak.VerifyTestMain(m)
}

// child is the test binary run as a server: "serve" listens, announces
// itself, logs on SIGHUP and exits 0 on SIGTERM; "stubborn" does the same
// but ignores SIGTERM; "crash" writes to stderr and exits 3 at once.
func child(mode string) int {
	if mode == "crash" {
		fmt.Fprintln(os.Stderr, "child: cannot start")
		return 3
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer ln.Close()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
	fmt.Fprintln(os.Stderr, `{"pprof":"127.0.0.1:1"}`)
	line, _ := json.Marshal(Ready{Message: "test serving", Listen: ln.Addr().String()})
	fmt.Println(string(line))
	for sig := range sigs {
		switch {
		case sig == syscall.SIGHUP:
			fmt.Println(`{"level":"info","message":"hello"}`)
		case mode == "serve":
			fmt.Println(`{"level":"info","message":"stopping"}`)
			return 0
		}
	}
	return 0
}

// startChild starts the test binary as a child in mode, waiting up to
// readyTimeout for its Ready line with message ready.
func startChild(t *testing.T, mode, ready string, readyTimeout time.Duration) (*Proc, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return Start(ctx, Spec{Name: mode, Dir: t.TempDir(), Path: exe, Env: []string{childEnv + "=" + mode}, Ready: ready, ReadyTimeout: readyTimeout})
}

func TestProcLifecycle(t *testing.T) {
	p, err := startChild(t, "serve", "test serving", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if _, port, err := net.SplitHostPort(p.Listen); err != nil || port == "0" || p.Admin != "" {
		t.Errorf("addresses from the Ready line: listen %q, admin %q", p.Listen, p.Admin)
	}
	if err := p.Alive(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if line, err := p.WaitStderr(ctx, `"pprof":`, 5*time.Second); err != nil || !strings.Contains(string(line), "127.0.0.1:1") {
		t.Errorf("WaitStderr = %q, %v", line, err)
	}
	// Each WaitLog starts after the lines already read: two SIGHUPs, two
	// "hello" lines, and no third.
	for i := range 2 {
		if err := p.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if _, err := p.WaitLog(ctx, "hello", 5*time.Second); err != nil {
			t.Fatalf("hello %d: %v", i+1, err)
		}
	}
	if _, err := p.WaitLog(ctx, "hello", 100*time.Millisecond); err == nil {
		t.Error("a third hello found in a log that has two")
	}
	code, err := p.Stop(5 * time.Second)
	if code != 0 || err != nil {
		t.Fatalf("Stop = %d, %v; want 0, nil", code, err)
	}
	if c, e := p.Stop(time.Second); c != code || e != err {
		t.Errorf("second Stop = %d, %v", c, e)
	}
	if err := p.Alive(); err == nil || !p.Exited() {
		t.Error("a stopped process is alive")
	}
	if _, err := p.WaitLog(ctx, "stopping", time.Second); err != nil {
		t.Errorf("the log written on SIGTERM: %v", err)
	}
	if _, err := p.WaitLog(ctx, "never written", time.Second); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("WaitLog on an exited process: %v", err)
	}
	p.Kill() // harmless once exited
	if err := p.Signal(syscall.SIGHUP); err == nil {
		t.Error("signalling an exited process: no error")
	}
}

func TestProcStopKillsAStubbornProcess(t *testing.T) {
	p, err := startChild(t, "stubborn", "test serving", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, err := p.Stop(300 * time.Millisecond)
	if code != -1 || err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop = %d, %v; want -1 and killed", code, err)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("Stop took %s with a 300ms grace", d)
	}
	if !p.Exited() {
		t.Error("not exited after Stop")
	}
}

func TestStartFailures(t *testing.T) {
	_, err := startChild(t, "crash", "test serving", 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "child: cannot start") {
		t.Errorf("a child that exits at once: %v", err)
	}
	// Ready for a message the child never writes: Start gives up and
	// kills it.
	if _, err := startChild(t, "serve", "another message", 500*time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not log") {
		t.Errorf("a child without the Ready line: %v", err)
	}
	if _, err := Start(context.Background(), Spec{Name: "none", Dir: t.TempDir(), Path: filepath.Join(t.TempDir(), "no-such-binary")}); err == nil {
		t.Error("starting a missing binary: no error")
	}
}

func TestGroupStopAll(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var g Group
	var ps []*Proc
	for range 3 {
		p, err := g.Start(context.Background(), Spec{Name: "serve", Dir: t.TempDir(), Path: exe, Env: []string{childEnv + "=serve"}, Ready: "test serving"})
		if err != nil {
			g.StopAll(time.Second)
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	g.StopAll(5 * time.Second)
	for i, p := range ps {
		if code, err := p.Stop(0); !p.Exited() || code != 0 || err != nil {
			t.Errorf("process %d after StopAll: exited %t, %d, %v", i, p.Exited(), code, err)
		}
	}
}

func TestScanFor(t *testing.T) {
	log := "{\"message\":\"a\"}\n{\"message\":\"config reloaded\"}\n{\"message\":\"b\"}\n{\"message\":\"config rel"
	r := strings.NewReader(log)
	needle := []byte(`"message":"config reloaded"`)
	line, off, err := ScanFor(r, 0, needle)
	if err != nil || string(line) != `{"message":"config reloaded"}` {
		t.Fatalf("first scan: %q, %v", line, err)
	}
	// Scanning on finds nothing more, and stops before the partial line.
	line, off2, err := ScanFor(r, off, needle)
	if err != nil || line != nil || off2 != int64(strings.LastIndexByte(log, '\n')+1) {
		t.Errorf("second scan: %q at %d, %v", line, off2, err)
	}
}

func TestTruncateLog(t *testing.T) {
	p, err := startChild(t, "serve", "test serving", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	p.TruncateLog()
	if fi, err := os.Stat(p.LogPath()); err != nil || fi.Size() != 0 {
		t.Fatalf("log after TruncateLog: %v, %v", fi, err)
	}
	// The process appends at the new end, and WaitLog reads from there.
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitLog(context.Background(), "hello", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p.LogPath()); !bytes.HasPrefix(b, []byte(`{"level":"info","message":"hello"}`)) {
		t.Errorf("log after truncating: %q", b)
	}
}

const exposition = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
# HELP phasegate_http_active_requests In-flight requests.
# TYPE phasegate_http_active_requests gauge
phasegate_http_active_requests{route="chat"} 0
phasegate_http_active_requests{route="odd } \"quoted\" route"} 2
# HELP phasegate_http_requests_total Requests.
# TYPE phasegate_http_requests_total counter
phasegate_http_requests_total{code="200",route="chat"} 7
phasegate_http_requests_total{code="404",route=""} 3
# HELP phasegate_http_request_duration_seconds Durations.
# TYPE phasegate_http_request_duration_seconds histogram
phasegate_http_request_duration_seconds_bucket{route="chat",le="0.1"} 8
phasegate_http_request_duration_seconds_bucket{route="chat",le="+Inf"} 8
phasegate_http_request_duration_seconds_sum{route="chat"} 0.3
phasegate_http_request_duration_seconds_count{route="chat"} 8
go_memstats_mallocs_total 1.234e+06
phasegate_llm_active_connections{route="ai",instance="ai-proxy",model="m",request_type="ai_stream"} 2 1700000000000
`

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := m.Value(MetricGoroutines); !ok || g != 42 {
		t.Errorf("go_goroutines = %v, %t; want 42", g, ok)
	}
	if _, ok := m.Value(MetricHTTPActive); ok {
		t.Error("Value of a labelled metric with two samples must not be ok")
	}
	nz := m.NonZero(MetricHTTPActive)
	if len(nz) != 1 || nz[0].Labels["route"] != `odd } "quoted" route` || nz[0].Value != 2 {
		t.Errorf("NonZero = %v", nz)
	}
	if got := nz[0].String(); got != `{route="odd } \"quoted\" route"} 2` {
		t.Errorf("Sample.String() = %s", got)
	}
	// Untyped samples (no TYPE line), with a timestamp or in exponent
	// notation, count like the others.
	if v, ok := m.Value(MetricMallocs); !ok || v != 1234000 {
		t.Errorf("untyped mallocs = %v, %t", v, ok)
	}
	if s := m.Sum(MetricLLMActive); s != 2 {
		t.Errorf("Sum(llm active) = %v, want 2", s)
	}
	if s := m.Sum(MetricRequests); s != 10 {
		t.Errorf("Sum(requests) = %v, want 10", s)
	}
	if !m.Has(MetricRequests) || m.Has("no_such_metric") || len(m.Samples("no_such_metric")) != 0 || m.Sum("no_such_metric") != 0 {
		t.Error("a missing metric is there")
	}
	if len(m.Samples("phasegate_http_request_duration_seconds")) != 0 {
		t.Error("a histogram has no plain samples")
	}
	// Series lists the labels of any type's series, a histogram's too.
	if s := m.Series("phasegate_http_request_duration_seconds"); len(s) != 1 || s[0]["route"] != "chat" || len(s[0]) != 1 {
		t.Errorf("histogram series %v", s)
	}
	if s := m.Series(MetricLLMActive); len(s) != 1 || s[0]["model"] != "m" || s[0]["instance"] != "ai-proxy" {
		t.Errorf("gauge series %v", s)
	}
	if s := m.Series("no_such_metric"); s != nil {
		t.Errorf("series of a missing metric %v", s)
	}
	if got, want := m.Names("phasegate_http_"), []string{"phasegate_http_active_requests", "phasegate_http_request_duration_seconds", MetricRequests}; !slices.Equal(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	for _, bad := range []string{"not a metric line {\n", `x{a="b" 1` + "\n"} {
		if _, err := ParseMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("%q parsed without an error", bad)
		}
	}
}

// TestScrape reads a real client_golang registry with the Go and process
// collectors, as phasegate and the load harness's bare proxy register
// them.
func TestScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricHTTPActive, Help: "In-flight requests."}, []string{"route"})
	reg.MustRegister(g)
	g.WithLabelValues("chat").Set(3)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	defer srv.Close()
	m, err := Scrape(context.Background(), srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if m.Sum(MetricHTTPActive) != 3 {
		t.Errorf("active = %v", m.Sum(MetricHTTPActive))
	}
	for _, name := range []string{MetricGoroutines, MetricHeapAlloc, MetricMallocs, MetricAllocBytes, MetricRSS} {
		if v, ok := m.Value(name); !ok || v <= 0 {
			t.Errorf("%s = %v, %t", name, v, ok)
		}
	}
	bad := httptest.NewServer(http.NotFoundHandler())
	defer bad.Close()
	if _, err := Scrape(context.Background(), bad.Client(), bad.URL); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("scraping a 404: %v", err)
	}
}

func TestReadEvents(t *testing.T) {
	stream := "data: {\"a\":1}\n\n: a comment\n\nevent: x\ndata: two\ndata: lines\n\ndata:[DONE]\r\n\r\n"
	evs, err := ReadEvents(strings.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`{"a":1}`, "two\nlines", Done}
	if !slices.Equal(evs, want) {
		t.Errorf("events %q, want %q", evs, want)
	}
	// Byte by byte, and with a lone CR ending an event, it is the same.
	evs, err = ReadEvents(iotest.OneByteReader(strings.NewReader("data: a\r\rdata: b\n\n")))
	if err != nil || !slices.Equal(evs, []string{"a", "b"}) {
		t.Errorf("one byte at a time: %q, %v", evs, err)
	}
	for _, cut := range []string{"data: one\n\ndata: cut", "data: one\n\ndata: cut\n", "data: one\n\ndata: cut\r\n"} {
		evs, err = ReadEvents(strings.NewReader(cut))
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(evs) != 1 {
			t.Errorf("%q, a stream cut inside an event: %q, %v", cut, evs, err)
		}
	}
	// Trailing line breaks are no event.
	if evs, err = ReadEvents(strings.NewReader("data: a\n\n\n")); err != nil || len(evs) != 1 {
		t.Errorf("trailing blank line: %q, %v", evs, err)
	}
	// The body's own error ends the stream.
	broken := io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(io.ErrClosedPipe))
	if evs, err = ReadEvents(broken); !errors.Is(err, io.ErrClosedPipe) || len(evs) != 1 {
		t.Errorf("a failing body: %q, %v", evs, err)
	}
}

func TestReadNamedEvents(t *testing.T) {
	stream := "event: message_start\ndata: {\"a\":1}\n\nevent: ping\n\n: a comment\n\ndata: unnamed\n\nevent: x\nevent: y\ndata: two\ndata: lines\n\nevent: cut\ndata: c"
	evs, err := ReadNamedEvents(strings.NewReader(stream))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a stream cut inside an event: %v", err)
	}
	// An event without data (the bare "event: ping") is skipped, as by Next.
	want := []Event{{"message_start", `{"a":1}`}, {"", "unnamed"}, {"y", "two\nlines"}}
	if !slices.Equal(evs, want) {
		t.Errorf("events %q, want %q", evs, want)
	}
}

func TestConfigRender(t *testing.T) {
	c := NewConfig("generated by a test\nsecond line")
	c.MockLLM = &MockLLM{Listen: "127.0.0.1:9"}
	c.ShutdownTimeout = 10 * time.Second
	c.Client = &Client{HeaderTimeout: time.Second, IdleTimeout: 1500 * time.Millisecond, MaxBodyBytes: 8 << 20}
	c.Routes = []Route{
		UpstreamRoute("plain", "/healthz", "127.0.0.1:9", 10*time.Second),
		UpstreamRoute("plainchat", "/v1/chat/completions", "127.0.0.1:9", 0, "plain.test"),
		{ID: "chat", URI: "/v1/chat/completions", Plugins: map[string]any{
			"ai-proxy":              map[string]any{"provider": "openai-compatible", "timeout": time.Second},
			"ai-content-moderation": map[string]any{"deny_patterns": []string{`(?i)\bkill\b`, `"quoted"`}},
		}},
	}
	c.Extra = map[string]any{"metrics": map[string]any{"max_models_per_route": 100}}
	data, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("# generated by a test\n# second line\nlisten: 127.0.0.1:0\n")) {
		t.Errorf("head of the file:\n%s", data)
	}
	var got map[string]any
	if err := yaml.Unmarshal(data, &got); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	var want map[string]any
	if err := yaml.Unmarshal([]byte(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
log: { level: info, access_log: true }
mock_llm: { listen: 127.0.0.1:9 }
shutdown_timeout: 10s
client: { header_timeout: 1s, idle_timeout: 1.5s, max_body_bytes: 8388608 }
metrics: { max_models_per_route: 100 }
routes:
  - { id: plain, uri: /healthz, upstream: { nodes: { "127.0.0.1:9": 1 }, timeout: 10s } }
  - { id: plainchat, uri: /v1/chat/completions, hosts: [plain.test], upstream: { nodes: { "127.0.0.1:9": 1 } } }
  - id: chat
    uri: /v1/chat/completions
    plugins:
      ai-proxy: { provider: openai-compatible, timeout: 1s }
      ai-content-moderation: { deny_patterns: ["(?i)\\bkill\\b", "\"quoted\""] }
`), &want); err != nil {
		t.Fatal(err)
	}
	if !equalYAML(got, want) {
		t.Errorf("rendered:\n%s\nwant the same as:\n%v", data, want)
	}

	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, data) {
		t.Error("WriteFile wrote something else")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".next-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func equalYAML(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestChatBody(t *testing.T) {
	if got := string(ChatBody("m", `say "hi"`, true)); got != `{"model":"m","messages":[{"role":"user","content":"say \"hi\""}],"stream":true}` {
		t.Errorf("stream body %s", got)
	}
	if got := string(ChatBody("m", "hi", false)); got != `{"model":"m","messages":[{"role":"user","content":"hi"}]}` {
		t.Errorf("body %s", got)
	}
}
