package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/internal/otlptest"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/tracing"
)

// tracingBlock is a tracing: block exporting over gRPC to r.
func tracingBlock(r *otlptest.Receiver) string {
	return fmt.Sprintf("tracing: { otlp: { endpoint: %q, protocol: grpc, timeout: 2s } }\n", r.GRPCEndpoint())
}

func flush(t *testing.T, g *Gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.traces.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
}

func shutdownTraces(t *testing.T, g *Gateway) {
	t.Cleanup(func() { _ = g.traces.Shutdown(context.Background()) })
}

const clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"

// A plain route's request span continues the client's traceparent, names
// the route, records each state entered as an event and how the request
// ended; the access log line names the same trace and span.
func TestTracingServerSpanContinuesTheClientTrace(t *testing.T) {
	rcv := otlptest.Start(t)
	var upstreamTraceparent atomic.Value
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamTraceparent.Store(r.Header.Get("traceparent"))
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	tg := newTestGateway(t, tracingBlock(rcv)+plainConfig(origin.Listener.Addr().String()))
	shutdownTraces(t, tg.Gateway)

	req, _ := http.NewRequest("GET", tg.url("/api/things?q=1"), nil)
	req.Header.Set("traceparent", "00-"+clientTraceID+"-00f067aa0ba902b7-01")
	req.Header.Set("tracestate", "vendor=x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	lines := tg.log.waitAccessLines(t, 1)
	flush(t, tg.Gateway)

	spans := rcv.WaitSpans(2, 5*time.Second)
	s := otlptest.ByName(spans, "GET api")
	if len(s) != 1 {
		t.Fatalf("spans %+v, want one named \"GET api\"", spans)
	}
	sp := s[0]
	if sp.Kind != "server" || sp.TraceID != clientTraceID || sp.ParentSpanID != "00f067aa0ba902b7" || sp.TraceState != "vendor=x" {
		t.Errorf("span %+v does not continue the client's trace", sp)
	}
	for k, want := range map[string]any{
		"http.request.method": "GET", "url.path": "/api/things", "http.route": "api",
		"http.response.status_code": int64(200), "phasegate.cause": "completed",
	} {
		if got := sp.Attr(k); got != want {
			t.Errorf("%s = %v (%T), want %v", k, got, got, want)
		}
	}
	if sp.Attr("error.type") != nil || sp.Attr("phasegate.request_id") == "" {
		t.Errorf("attributes %v: want no error.type and a request id", sp.Attributes)
	}
	if got, want := strings.Join(sp.EventNames(), ">"), "access>upstream>header_filter>body_filter>log"; got != want {
		t.Errorf("events %s, want %s", got, want)
	}
	calls := otlptest.Children(spans, sp)
	if len(calls) != 1 || calls[0].Name != "GET" || calls[0].Kind != "client" {
		t.Fatalf("spans %+v: want one client span \"GET\" under the request's", spans)
	}
	host, port, _ := net.SplitHostPort(origin.Listener.Addr().String())
	for k, want := range map[string]any{
		"http.request.method": "GET", "server.address": host, "server.port": int64(mustAtoi(t, port)),
		"http.response.status_code": int64(200), "phasegate.attempt": int64(1),
	} {
		if got := calls[0].Attr(k); got != want {
			t.Errorf("upstream call: %s = %v (%T), want %v", k, got, got, want)
		}
	}
	if got, want := upstreamTraceparent.Load(), "00-"+clientTraceID+"-"+calls[0].SpanID+"-01"; got != want {
		t.Errorf("the upstream got traceparent %q, want the call span's %q", got, want)
	}
	if lines[0]["trace_id"] != clientTraceID || lines[0]["span_id"] != sp.SpanID {
		t.Errorf("access log trace_id %v span_id %v, want %s %s", lines[0]["trace_id"], lines[0]["span_id"], clientTraceID, sp.SpanID)
	}
}

// Without a tracing: block the access log still has both fields, empty,
// and an incoming traceparent reaches the upstream as it came.
func TestTracingOffKeepsTheLogFields(t *testing.T) {
	up := newUpstream(t)
	tg := newTestGateway(t, plainConfig(up.node()))
	req, _ := http.NewRequest("GET", tg.url("/api/x"), nil)
	req.Header.Set("traceparent", "00-"+clientTraceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	line := tg.log.waitAccessLines(t, 1)[0]
	if v, ok := line["trace_id"]; !ok || v != "" || line["span_id"] != "" {
		t.Errorf("trace_id %v span_id %v, want both present and empty", line["trace_id"], line["span_id"])
	}
}

// An AI request's LLM attempt is a client span under the request's span,
// with the GenAI attributes; the upstream receives its traceparent.
func TestTracingLLMAttemptSpan(t *testing.T) {
	rcv := otlptest.Start(t)
	mock := providertest.StartMock(t)
	target, _ := url.Parse(mock.URL())
	var traceparent atomic.Value
	front := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		traceparent.Store(r.Header.Get("traceparent"))
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	tg := newTestGateway(t, tracingBlock(rcv)+aiConfig(front, failing(t)))
	shutdownTraces(t, tg.Gateway)

	resp, body := chat(t, tg.url("/v1/chat/completions"), true, map[string]string{
		"traceparent": "00-" + clientTraceID + "-00f067aa0ba902b7-01",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	tg.log.waitAccessLines(t, 1)
	flush(t, tg.Gateway)
	spans := rcv.WaitSpans(2, 5*time.Second)
	server := otlptest.ByName(spans, "POST chat")
	if len(server) != 1 {
		t.Fatalf("spans %+v: want one request span", spans)
	}
	attempts := otlptest.Children(spans, server[0])
	if len(attempts) != 1 {
		t.Fatalf("attempt spans %+v, want 1", attempts)
	}
	a := attempts[0]
	if a.Name != "chat gpt-4o-mini" || a.Kind != "client" {
		t.Errorf("attempt span %q kind %s", a.Name, a.Kind)
	}
	for k, want := range map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai-compatible",
		"gen_ai.request.model": "gpt-4o-mini", "gen_ai.request.stream": true,
		"phasegate.instance": "ai-proxy", "phasegate.attempt": int64(1),
		"http.response.status_code": int64(200),
	} {
		if got := a.Attr(k); got != want {
			t.Errorf("%s = %v (%T), want %v", k, got, got, want)
		}
	}
	if a.Attr("gen_ai.response.model") == nil || a.Attr("gen_ai.response.finish_reasons") == nil {
		t.Errorf("attributes %v: want the response model and finish reasons", a.Attributes)
	}
	if !strings.Contains(strings.Join(a.EventNames(), ","), "phasegate.first_token") {
		t.Errorf("events %v, want phasegate.first_token", a.EventNames())
	}
	if got, want := traceparent.Load(), "00-"+clientTraceID+"-"+a.SpanID+"-01"; got != want {
		t.Errorf("the upstream got traceparent %q, want the attempt's %q", got, want)
	}
	if a.End.After(server[0].End) || a.Start.Before(server[0].Start) {
		t.Errorf("the attempt span [%v, %v] is not inside the request span [%v, %v]", a.Start, a.End, server[0].Start, server[0].End)
	}
}

// An attempt to an Anthropic provider, streamed and whole, names the
// response model and the stop reason on its span, from the provider's own
// events (the model in message_start, the reason in message_delta).
func TestTracingAnthropicAttemptSpan(t *testing.T) {
	rcv := otlptest.Start(t)
	mock := providertest.StartMock(t)
	tg := newTestGateway(t, tracingBlock(rcv)+doorsConfig(mock.URL()))
	shutdownTraces(t, tg.Gateway)
	for i, stream := range []bool{true, false} {
		req, _ := http.NewRequest("POST", tg.url("/anthropic-up/v1/messages"), strings.NewReader(fmt.Sprintf(
			`{"model":"claude-test","max_tokens":64,"stream":%t,"messages":[{"role":"user","content":"hi"}]}`, stream)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("stream %t: status %d: %s", stream, resp.StatusCode, body)
		}
		tg.log.waitAccessLines(t, i+1)
	}
	flush(t, tg.Gateway)
	spans := rcv.WaitSpans(4, 5*time.Second)
	attempts := otlptest.ByName(spans, "chat claude-test")
	if len(attempts) != 2 {
		t.Fatalf("spans %+v: want two attempt spans", spans)
	}
	for _, a := range attempts {
		stream := a.Attr("gen_ai.request.stream")
		if got := a.Attr("gen_ai.provider.name"); got != "anthropic" {
			t.Errorf("stream %v: gen_ai.provider.name %v", stream, got)
		}
		if got := a.Attr("gen_ai.response.model"); got != "claude-test" {
			t.Errorf("stream %v: gen_ai.response.model %v, want claude-test", stream, got)
		}
		if got := fmt.Sprint(a.Attr("gen_ai.response.finish_reasons")); got != "[end_turn]" {
			t.Errorf("stream %v: gen_ai.response.finish_reasons %v, want [end_turn]", stream, got)
		}
		if first := strings.Contains(strings.Join(a.EventNames(), ","), "phasegate.first_token"); first != (stream == true) {
			t.Errorf("stream %v: events %v", stream, a.EventNames())
		}
	}
}

// /metrics serves exemplars with the trace id to a scraper that asks for
// OpenMetrics.
func TestTracingExemplarsInOpenMetrics(t *testing.T) {
	rcv := otlptest.Start(t)
	mock := providertest.StartMock(t)
	tg := newTestGateway(t, tracingBlock(rcv)+aiConfig(mock.URL(), failing(t)))
	shutdownTraces(t, tg.Gateway)
	resp, _ := chat(t, tg.url("/v1/chat/completions"), false, map[string]string{
		"traceparent": "00-" + clientTraceID + "-00f067aa0ba902b7-01",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	tg.log.waitAccessLines(t, 1)
	admin := httptestServer(t, tg.AdminHandler())
	req, _ := http.NewRequest("GET", admin+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	mresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text := readAll(t, mresp.Body)
	mresp.Body.Close()
	if ct := mresp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("Content-Type %q, want OpenMetrics", ct)
	}
	for _, name := range []string{"phasegate_http_request_duration_seconds_bucket", "phasegate_llm_request_duration_seconds_bucket"} {
		re := regexp.MustCompile(`(?m)^` + name + `\{[^}]*route="chat"[^}]*\} \d+ # \{trace_id="` + clientTraceID + `"\}`)
		if !re.MatchString(text) {
			t.Errorf("no exemplar with the trace id on %s:\n%s", name, grepLines(text, name))
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// droppedSpans sums phasegate_tracing_dropped_spans_total over its reasons.
func droppedSpans(t *testing.T, reg *prometheus.Registry) (total float64, byReason map[string]float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byReason = map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != tracing.DroppedSpansMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue()
			total += v
			byReason[m.GetLabel()[0].GetValue()] = v
		}
	}
	return total, byReason
}

// With the collector down, requests are answered as if tracing were off,
// every span is counted as dropped (none is held: after shutdown the count
// is every request's), and the heap does not grow with the requests.
func TestTracingCollectorDown(t *testing.T) {
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
	up := newUpstream(t)
	block := fmt.Sprintf("tracing: { otlp: { endpoint: %q, protocol: grpc, timeout: 200ms } }\n", providertest.DeadAddr(t))
	tg := newTestGateway(t, block+plainConfig(up.node()))

	const n = 3000
	do := func(k int) {
		for range k {
			resp, err := http.Get(tg.url("/api/x"))
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d with the collector down", resp.StatusCode)
			}
		}
	}
	do(200) // warm up connections and pools
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	do(n - 200)
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Errorf("the heap grew by %d bytes over %d requests with the collector down", grew, n-200)
	}
	if took > 20*time.Second {
		t.Errorf("%d requests took %s with the collector down", n-200, took)
	}
	if total, _ := droppedSpans(t, tg.reg); total == 0 {
		t.Error("no span counted as dropped while the collector is down")
	}
	tg.log.waitAccessLines(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = tg.traces.Shutdown(ctx)
	// Two spans per request: the request's and its upstream call's.
	if total, by := droppedSpans(t, tg.reg); total != 2*n {
		t.Errorf("%v spans dropped (%v), want every one of the %d", total, by, 2*n)
	}
}

// The tracing: block is part of the config: its problems are positioned
// at their fields, and a good block loads.
func TestTracingConfigProblemsArePositioned(t *testing.T) {
	route := "routes:\n  - id: a\n    uri: /a\n    upstream: { nodes: { \"127.0.0.1:8081\": 1 } }\n"
	_, err := LoadConfig("t.yaml", []byte("tracing:\n  otlp: { endpoint: \"http://c:4317\", protocol: udp }\n  sampler: { ratio: 2 }\n"+route), nil, nil)
	if err == nil {
		t.Fatal("a bad tracing: block loaded")
	}
	for _, want := range []string{"t.yaml:2:", "tracing.otlp.endpoint: must be host:port without a scheme", "tracing.otlp.protocol: must be grpc or http", "t.yaml:3:", "tracing.sampler.ratio: must be between 0 and 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems %q do not say %q", err, want)
		}
	}
	cfg, err := LoadConfig("t.yaml", []byte("tracing: { otlp: { endpoint: \"127.0.0.1:4317\" }, service_name: gw }\n"+route), nil, nil)
	if err != nil || cfg.Tracing == nil || cfg.Tracing.ServiceName != "gw" {
		t.Fatalf("a good block: %v %+v", err, cfg)
	}
	if err := Validate(cfg, nil); err != nil {
		t.Fatal(err)
	}
}

// Reload turns tracing on when the block appears and off when it goes.
func TestTracingReloadTurnsItOnAndOff(t *testing.T) {
	rcv := otlptest.Start(t)
	up := newUpstream(t)
	tg := newTestGateway(t, plainConfig(up.node()))
	shutdownTraces(t, tg.Gateway)
	load := func(text string) *Config {
		cfg, err := LoadConfig("t.yaml", []byte(text), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	get := func() {
		resp, err := http.Get(tg.url("/api/x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	if err := tg.Reload(load(tracingBlock(rcv) + plainConfig(up.node()))); err != nil {
		t.Fatal(err)
	}
	if !tg.traces.Enabled() {
		t.Fatal("tracing off after a reload that added the block")
	}
	get()
	tg.log.waitAccessLines(t, 2)
	if err := tg.Reload(load(plainConfig(up.node()))); err != nil {
		t.Fatal(err)
	}
	if tg.traces.Enabled() {
		t.Fatal("tracing on after a reload that removed the block")
	}
	get()
	lines := tg.log.waitAccessLines(t, 3)
	if got := rcv.WaitSpans(2, 5*time.Second); len(got) != 2 || got[0].TraceID != lines[1]["trace_id"] || got[1].TraceID != lines[1]["trace_id"] {
		t.Fatalf("spans %+v: want those of the one request made while tracing was on", got)
	}
	if lines[0]["trace_id"] != "" || lines[2]["trace_id"] != "" {
		t.Errorf("trace ids %v and %v on requests without tracing", lines[0]["trace_id"], lines[2]["trace_id"])
	}
}

// With tracing off, the request hooks of tracing allocate nothing: the
// request path costs what it cost before tracing existed
// (docs/benchmarks.md compares whole requests).
func TestTracingOffAllocatesNothing(t *testing.T) {
	tp, err := tracing.New(nil, tracing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spans := newRequestSpans(tp, "r")
	var values phases.Values
	m := fsm.New(nil)
	defer m.Release()
	r := &phases.Request{Method: "GET", Scope: m.Scope(), Header: http.Header{"Traceparent": {"00-" + clientTraceID + "-00f067aa0ba902b7-01"}}, Values: &values}
	s := &phases.Summary{Status: 200, Cause: phases.CauseCompleted, Values: &values}
	ctx := context.Background()
	l := zerolog.New(io.Discard)
	if n := testing.AllocsPerRun(100, func() {
		c := spans.start(ctx, r)
		spans.entered(r, fsm.Step{To: fsm.StateAccess})
		spans.finished(s)
		ev := l.Info()
		appendTraceIDs(ev, trace.SpanContextFromContext(c))
		ev.Msg("")
	}); n != 0 {
		t.Fatalf("%v allocations per request with tracing off, want 0", n)
	}
}
