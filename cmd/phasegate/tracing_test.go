package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phasegate/phasegate/internal/otlptest"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/mockllm"
)

// traceIDs are the client trace ids of the end-to-end requests, one each.
const (
	traceCompleted  = "11111111111111111111111111111111"
	traceModeration = "22222222222222222222222222222222"
	traceFallback   = "33333333333333333333333333333333"
	traceDisconnect = "44444444444444444444444444444444"
	clientSpanID    = "00f067aa0ba902b7"
)

func traceparent(traceID string) string { return "00-" + traceID + "-" + clientSpanID + "-01" }

// frontedMock is the mock LLM behind a proxy that records the traceparent
// of every request, by the trace id it carries.
type frontedMock struct {
	URL string
	mu  sync.Mutex
	got map[string][]string // trace id → traceparents received
}

func startFrontedMock(t *testing.T) *frontedMock {
	m := providertest.StartMock(t)
	target, _ := url.Parse(m.URL())
	f := &frontedMock{got: map[string][]string{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tp := r.Header.Get("traceparent"); len(tp) > 35 {
			f.mu.Lock()
			f.got[tp[3:35]] = append(f.got[tp[3:35]], tp)
			f.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *frontedMock) traceparents(traceID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[traceID]
}

func tracingConfig(collector, mock, failing string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
shutdown_timeout: 10s
tracing:
  otlp: { endpoint: %q, protocol: grpc, timeout: 5s }
  service_name: phasegate-e2e
routes:
  - id: chat
    uri: /v1/chat/completions
    plugins:
      ai-content-moderation:
        deny_patterns: ["(?i)\\bkill\\b"]
        check_response: true
        stream_check_mode: realtime
        deny_code: 400
        deny_message: rejected
      ai-proxy:
        provider: openai-compatible
        endpoint: %s/v1/chat/completions
        options: { model: gpt-4o-mini }
        timeout: 5s
  - id: multi
    uri: /multi/v1/chat/completions
    plugins:
      ai-proxy-multi:
        fallback_on: [http_5xx]
        instances:
          - { name: primary, provider: openai-compatible, endpoint: "%s/v1/chat/completions", priority: 1 }
          - { name: backup, provider: openai-compatible, endpoint: "%s/v1/chat/completions" }
`, collector, mock, failing, mock)
}

// The binary exports to a real OTLP receiver, over gRPC, one trace for
// each way a request ends: a completed stream, a moderation exit in the
// middle of a stream, an ai-proxy-multi fallback and a client that leaves
// mid-stream. Each continues the client's traceparent, each upstream call
// carries its attempt span's, and SIGTERM flushes them all.
func TestTracingEndToEnd(t *testing.T) {
	rcv := otlptest.Start(t)
	mock := startFrontedMock(t)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		io.WriteString(w, `{"error":{"message":"down","type":"server_error"}}`)
	}))
	defer failing.Close()
	// A long batch delay: only the SIGTERM flush can deliver the spans.
	p := startEnv(t, writeFile(t, "c.yaml", tracingConfig(rcv.GRPCEndpoint(), mock.URL, failing.URL)), "OTEL_BSP_SCHEDULE_DELAY=60000")
	addr := p.await(t, "phasegate serving")["listen"].(string)

	post := func(ctx context.Context, path, traceID string, stream bool, hdr map[string]string) (*http.Response, error) {
		body := fmt.Sprintf(`{"model":"m","stream":%v,"messages":[{"role":"user","content":"about gardens"}]}`, stream)
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("traceparent", traceparent(traceID))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return http.DefaultClient.Do(req)
	}
	readWhole := func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, b)
	}

	if got := readWhole(post(context.Background(), "/v1/chat/completions", traceCompleted, true, map[string]string{mockllm.HeaderChunks: "3"})); !strings.HasPrefix(got, "200") || !strings.Contains(got, "[DONE]") {
		t.Fatalf("completed stream: %s", got)
	}
	if got := readWhole(post(context.Background(), "/v1/chat/completions", traceModeration, true, map[string]string{
		mockllm.HeaderContent: "Sure. First, kill the weeds at the root.", mockllm.HeaderChunks: "4",
	})); !strings.Contains(got, "rejected") {
		t.Fatalf("moderation exit: %s", got)
	}
	if got := readWhole(post(context.Background(), "/multi/v1/chat/completions", traceFallback, false, nil)); !strings.HasPrefix(got, "200") {
		t.Fatalf("fallback: %s", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := post(ctx, "/v1/chat/completions", traceDisconnect, true, map[string]string{
		mockllm.HeaderChunks: "50", mockllm.HeaderChunkDelay: "50ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel() // the client leaves mid-stream
	resp.Body.Close()
	p.await(t, "access") // completed
	p.await(t, "access") // moderation
	p.await(t, "access") // fallback
	p.await(t, "access") // disconnect

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	spans := rcv.Spans()

	type want struct {
		traceID  string
		cause    string
		attempts int
		check    func(server otlptest.Span, attempts []otlptest.Span)
	}
	for _, w := range []want{
		{traceCompleted, "completed", 1, func(s otlptest.Span, a []otlptest.Span) {
			if got := strings.Join(s.EventNames(), ">"); got != "access>upstream>header_filter>body_filter>log" {
				t.Errorf("completed: events %s", got)
			}
			if a[0].Attr("gen_ai.usage.output_tokens") == nil || !strings.Contains(strings.Join(a[0].EventNames(), ","), "phasegate.first_token") {
				t.Errorf("completed: attempt %v %v, want usage and the first-token event", a[0].Attributes, a[0].EventNames())
			}
		}},
		{traceModeration, "exit", 1, func(s otlptest.Span, _ []otlptest.Span) {
			if s.Attr("phasegate.exit.phase") != "body_filter" || s.Attr("phasegate.exit.plugin") != "ai-content-moderation" {
				t.Errorf("moderation: attributes %v", s.Attributes)
			}
		}},
		{traceFallback, "completed", 2, func(s otlptest.Span, a []otlptest.Span) {
			first, second := a[0], a[1]
			if first.Attr("phasegate.attempt") != int64(1) {
				first, second = second, first
			}
			if first.Attr("phasegate.instance") != "primary" || first.Attr("error.type") != "500" || first.StatusCode != "error" ||
				first.Attr("http.response.status_code") != int64(500) {
				t.Errorf("fallback: first attempt %v (%s)", first.Attributes, first.StatusCode)
			}
			if second.Attr("phasegate.instance") != "backup" || second.Attr("error.type") != nil || second.Attr("phasegate.attempt") != int64(2) {
				t.Errorf("fallback: second attempt %v", second.Attributes)
			}
			if !first.End.Before(second.Start) && !first.End.Equal(second.Start) {
				t.Errorf("fallback: the first attempt ended at %v, after the second started at %v", first.End, second.Start)
			}
		}},
		{traceDisconnect, "client_closed", 1, func(s otlptest.Span, a []otlptest.Span) {
			if s.Attr("error.type") != "client_closed" || s.StatusCode != "error" {
				t.Errorf("disconnect: request span %v (%s)", s.Attributes, s.StatusCode)
			}
			if a[0].Attr("error.type") != "client_closed" {
				t.Errorf("disconnect: attempt %v", a[0].Attributes)
			}
		}},
	} {
		var inTrace []otlptest.Span
		for _, s := range spans {
			if s.TraceID == w.traceID {
				inTrace = append(inTrace, s)
			}
		}
		var server []otlptest.Span
		for _, s := range inTrace {
			if s.Kind == "server" {
				server = append(server, s)
			}
		}
		if len(server) != 1 {
			t.Errorf("trace %s: %d request spans in %+v", w.traceID, len(server), inTrace)
			continue
		}
		s := server[0]
		if s.ParentSpanID != clientSpanID || s.Attr("phasegate.cause") != w.cause || s.Resource["service.name"] != "phasegate-e2e" {
			t.Errorf("trace %s: request span parent %s cause %v service %v", w.traceID, s.ParentSpanID, s.Attr("phasegate.cause"), s.Resource["service.name"])
		}
		attempts := otlptest.Children(inTrace, s)
		if len(attempts) != w.attempts || len(inTrace) != 1+w.attempts {
			t.Errorf("trace %s: %d attempt spans of %d spans, want %d", w.traceID, len(attempts), len(inTrace), w.attempts)
			continue
		}
		// The upstream got each attempt's own context (the failing
		// primary is not behind the recording front).
		got := mock.traceparents(w.traceID)
		last := attempts[len(attempts)-1]
		if w.attempts == 2 && last.Attr("phasegate.attempt") != int64(2) {
			last = attempts[0]
		}
		if len(got) != 1 || got[0] != "00-"+w.traceID+"-"+last.SpanID+"-01" {
			t.Errorf("trace %s: the upstream got traceparents %q, want the attempt span %s's", w.traceID, got, last.SpanID)
		}
		w.check(s, attempts)
	}
}

// A SIGHUP that points tracing: at another collector swaps the exporter:
// spans of requests before go to the first, after to the second.
func TestTracingReloadSwapsTheCollector(t *testing.T) {
	a, b := otlptest.Start(t), otlptest.Start(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer origin.Close()
	block := func(r *otlptest.Receiver) string {
		return fmt.Sprintf("tracing: { otlp: { endpoint: %q, protocol: http, timeout: 5s } }\n", r.HTTPEndpoint())
	}
	file := writeFile(t, "c.yaml", block(a)+config(origin.Listener.Addr().String(), ""))
	p := startEnv(t, file, "OTEL_BSP_SCHEDULE_DELAY=60000")
	addr := p.await(t, "phasegate serving")["listen"].(string)
	get := func() {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		p.await(t, "access")
	}
	get()
	if err := os.WriteFile(file, []byte(block(b)+config(origin.Listener.Addr().String(), "")), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	p.await(t, "config reloaded")
	get()
	get()
	// The replaced provider flushes to a in the background, long before
	// its 60 s batch delay.
	// Two spans per request: the request's and its upstream call's.
	if got := a.WaitSpans(2, 5*time.Second); len(got) != 2 {
		t.Fatalf("collector a got %d spans, want the 2 from before the reload", len(got))
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if na, nb := len(a.Spans()), len(b.Spans()); na != 2 || nb != 4 {
		t.Fatalf("collector a got %d spans, b %d: want 2 and 4", na, nb)
	}
	if n := len(b.Find("GET slow")); n != 2 {
		t.Errorf("collector b got %d request spans, want 2", n)
	}
	for _, s := range b.Spans() {
		if s.Protocol != otlptest.HTTP {
			t.Errorf("span %q over %s", s.Name, s.Protocol)
		}
	}
}

// make run prints how to send traces to a collector when tracing is off.
func TestRunPrintsTheTracingHint(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	p := start(t, writeFile(t, "c.yaml", config(origin.Listener.Addr().String(), "")))
	line := p.await(t, tracingHint)
	if !strings.Contains(fmt.Sprint(line["message"]), "OTEL_EXPORTER_OTLP_ENDPOINT") {
		t.Fatalf("hint %v", line)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
}
