package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phasegate/phasegate/internal/otlptest"
	"github.com/phasegate/phasegate/llm/provider/providertest"
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
	up := newUpstream(t)
	tg := newTestGateway(t, tracingBlock(rcv)+plainConfig(up.node()))
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

	spans := rcv.WaitSpans(1, 5*time.Second)
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

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
