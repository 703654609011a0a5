package tracing_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/internal/otlptest"
	"github.com/phasegate/phasegate/tracing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds how long a test waits for spans to reach the receiver.
const waitFor = 10 * time.Second

func config(r *otlptest.Receiver, protocol string) *tracing.Config {
	endpoint := r.GRPCEndpoint()
	if protocol == tracing.ProtocolHTTP {
		endpoint = r.HTTPEndpoint()
	}
	return &tracing.Config{OTLP: tracing.OTLPConfig{Endpoint: endpoint, Protocol: protocol}}
}

// start builds a provider on a fresh registry and shuts it down at the
// end of the test.
func start(t *testing.T, cfg *tracing.Config, o tracing.Options) (*tracing.Provider, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	o.Registerer = reg
	p, err := tracing.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = shutdownWithin(p, 10*time.Second) })
	return p, reg
}

// dropped reads phasegate_tracing_dropped_spans_total{reason} from reg.
func dropped(t *testing.T, reg *prometheus.Registry, reason string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != tracing.DroppedSpansMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return int(m.GetCounter().GetValue())
			}
		}
	}
	t.Fatalf("no %s{reason=%q}", tracing.DroppedSpansMetric, reason)
	return 0
}

func totalDropped(t *testing.T, reg *prometheus.Registry) int {
	return dropped(t, reg, tracing.DropQueueFull) + dropped(t, reg, tracing.DropExportFailed) + dropped(t, reg, tracing.DropShutdown)
}

// endN starts and ends n spans named name.
func endN(tr trace.Tracer, name string, n int) {
	for range n {
		_, s := tr.Start(context.Background(), name)
		s.End()
	}
}

// shutdownWithin shuts p down with a context of d and says how long it took.
func shutdownWithin(p *tracing.Provider, d time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	err := p.Shutdown(ctx)
	return time.Since(start), err
}

// request traces what a chat request through the gateway looks like: a
// server span with its phases as events and one LLM attempt as its child.
func request(ctx context.Context, tr trace.Tracer) {
	attrs := tracing.AppendHTTPMethod(nil, "POST")
	attrs = append(attrs, tracing.HTTPRoute("chat"), tracing.URLPath("/v1/chat/completions"))
	ctx, srv := tr.Start(ctx, tracing.ServerSpanName("POST", "chat"),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	srv.AddEvent(tracing.PhaseEvent("access"))
	srv.AddEvent(tracing.PhaseEvent("upstream"))
	_, att := tr.Start(ctx, tracing.GenAISpanName(tracing.GenAIOperationChat, "gpt-4o-mini"),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			tracing.GenAIOperationName(tracing.GenAIOperationChat),
			tracing.GenAIProviderName(tracing.GenAIProviderOpenAI),
			tracing.GenAIRequestModel("gpt-4o-mini"),
			tracing.Attempt(1)))
	att.AddEvent(tracing.EventFirstToken, trace.WithAttributes(tracing.GenAIResponseTimeToFirstChunk(0.25)))
	att.SetAttributes(tracing.GenAIUsageInputTokens(12), tracing.GenAIUsageOutputTokens(48),
		tracing.GenAIResponseFinishReasons("stop"), tracing.GenAIResponseModel("gpt-4o-mini-2024"))
	att.End()
	srv.AddEvent(tracing.PhaseEvent("log"))
	srv.SetAttributes(tracing.HTTPResponseStatusCode(200), tracing.Cause("completed"))
	srv.End()
}

func TestExportEndToEnd(t *testing.T) {
	for _, protocol := range []string{tracing.ProtocolGRPC, tracing.ProtocolHTTP} {
		t.Run(protocol, func(t *testing.T) {
			r := otlptest.Start(t)
			cfg := config(r, protocol)
			cfg.ServiceName = "gw-test"
			cfg.OTLP.Headers = map[string]string{"X-Api-Key": "secret"}
			p, reg := start(t, cfg, tracing.Options{Version: "1.2.3", BatchDelay: time.Hour})
			if !p.Enabled() {
				t.Fatal("Enabled() = false with a config")
			}
			request(context.Background(), p.Tracer(tracing.ScopeName))
			if err := p.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			spans := r.WaitSpans(2, waitFor)

			srv := otlptest.ByName(spans, "POST chat")
			att := otlptest.ByName(spans, "chat gpt-4o-mini")
			if len(srv) != 1 || len(att) != 1 {
				t.Fatalf("spans %+v", spans)
			}
			s, a := srv[0], att[0]
			if s.Kind != "server" || s.ParentSpanID != "" || s.Protocol != protocol {
				t.Errorf("server span %+v", s)
			}
			for k, v := range map[string]any{
				"http.request.method": "POST", "http.route": "chat", "url.path": "/v1/chat/completions",
				"http.response.status_code": int64(200), "phasegate.cause": "completed",
			} {
				if s.Attr(k) != v {
					t.Errorf("server span %s = %v, want %v", k, s.Attr(k), v)
				}
			}
			if got := strings.Join(s.EventNames(), ">"); got != "access>upstream>log" {
				t.Errorf("server span events %s", got)
			}
			if a.ParentSpanID != s.SpanID || a.TraceID != s.TraceID || a.Kind != "client" {
				t.Errorf("attempt span %+v is not the server span's child", a)
			}
			for k, v := range map[string]any{
				"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
				"gen_ai.response.model": "gpt-4o-mini-2024", "gen_ai.usage.input_tokens": int64(12),
				"gen_ai.usage.output_tokens": int64(48), "phasegate.attempt": int64(1),
			} {
				if a.Attr(k) != v {
					t.Errorf("attempt span %s = %v, want %v", k, a.Attr(k), v)
				}
			}
			if fr, ok := a.Attr("gen_ai.response.finish_reasons").([]any); !ok || len(fr) != 1 || fr[0] != "stop" {
				t.Errorf("finish reasons %v", a.Attr("gen_ai.response.finish_reasons"))
			}
			if len(a.Events) != 1 || a.Events[0].Name != "phasegate.first_token" || a.Events[0].Attributes["gen_ai.response.time_to_first_chunk"] != 0.25 {
				t.Errorf("attempt events %+v", a.Events)
			}
			if s.Resource["service.name"] != "gw-test" || s.Resource["service.version"] != "1.2.3" || s.Scope != tracing.ScopeName {
				t.Errorf("resource %v scope %q", s.Resource, s.Scope)
			}
			for _, ex := range r.Exports() {
				if h := ex.Headers["x-api-key"]; len(h) != 1 || h[0] != "secret" {
					t.Errorf("export headers %v: the configured header is missing", ex.Headers)
				}
			}
			if n := totalDropped(t, reg); n != 0 {
				t.Errorf("%d spans dropped", n)
			}
		})
	}
}

// TestEnvironment: with an empty tracing: block, the standard variables
// decide where spans go, with which headers, under which service name; a
// field of the block wins over its variable.
func TestEnvironment(t *testing.T) {
	r := otlptest.Start(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+r.HTTPEndpoint())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-env=from%20env")
	t.Setenv("OTEL_SERVICE_NAME", "env-service")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")

	p, _ := start(t, &tracing.Config{}, tracing.Options{BatchDelay: time.Hour})
	_, s := p.Tracer(tracing.ScopeName).Start(context.Background(), "from-env")
	s.End()
	_ = p.ForceFlush(context.Background())
	got := r.WaitSpans(1, waitFor)[0]
	if got.Protocol != otlptest.HTTP || got.Resource["service.name"] != "env-service" || got.Resource["deployment.environment.name"] != "test" {
		t.Errorf("span %+v", got)
	}
	if h := r.Exports()[0].Headers["x-env"]; len(h) != 1 || h[0] != "from env" {
		t.Errorf("x-env header %q, want OTEL_EXPORTER_OTLP_HEADERS's", h)
	}

	// The file's service name and endpoint win.
	p2, _ := start(t, &tracing.Config{ServiceName: "file-service", OTLP: tracing.OTLPConfig{Endpoint: r.GRPCEndpoint(), Protocol: "grpc"}}, tracing.Options{BatchDelay: time.Hour})
	_, s = p2.Tracer(tracing.ScopeName).Start(context.Background(), "from-file")
	s.End()
	_ = p2.ForceFlush(context.Background())
	got = r.WaitSpans(2, waitFor)[1]
	if got.Protocol != otlptest.GRPC || got.Resource["service.name"] != "file-service" {
		t.Errorf("span %+v", got)
	}
}

func TestSamplerEnvironmentAndConfig(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	r := otlptest.Start(t)
	sampled := func(cfg *tracing.Config) bool {
		p, _ := start(t, cfg, tracing.Options{})
		_, s := p.Tracer(tracing.ScopeName).Start(context.Background(), "x")
		defer s.End()
		return s.SpanContext().IsSampled()
	}
	if sampled(config(r, "grpc")) {
		t.Error("OTEL_TRACES_SAMPLER=always_off was ignored without a sampler: block")
	}
	cfg := config(r, "grpc")
	one := 1.0
	cfg.Sampler.Ratio = &one
	if !sampled(cfg) {
		t.Error("sampler.ratio: 1 did not win over OTEL_TRACES_SAMPLER")
	}
}

func TestParentBasedSampling(t *testing.T) {
	r := otlptest.Start(t)
	zero, yes, no := 0.0, true, false
	remote := func(sampled bool) context.Context {
		flags := trace.TraceFlags(0)
		if sampled {
			flags = trace.FlagsSampled
		}
		return trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: flags, Remote: true,
		}))
	}
	for _, tc := range []struct {
		parentBased *bool
		parent      context.Context
		want        bool
	}{
		{&yes, context.Background(), false}, // a new trace: ratio 0
		{&yes, remote(true), true},          // a sampled caller is followed
		{&no, remote(true), false},          // not parent-based: ratio 0 decides
	} {
		cfg := config(r, "grpc")
		cfg.Sampler = tracing.SamplerConfig{Ratio: &zero, ParentBased: tc.parentBased}
		p, _ := start(t, cfg, tracing.Options{})
		_, s := p.Tracer(tracing.ScopeName).Start(tc.parent, "x")
		if got := s.SpanContext().IsSampled(); got != tc.want {
			t.Errorf("parent_based %v, parent %v: sampled %v, want %v", *tc.parentBased, trace.SpanContextFromContext(tc.parent).IsSampled(), got, tc.want)
		}
		s.End()
	}
}

// TestCollectorDown: with no collector, span ends never wait, every span
// is dropped and counted exactly, and the heap holds at most the queue.
func TestCollectorDown(t *testing.T) {
	for _, protocol := range []string{tracing.ProtocolGRPC, tracing.ProtocolHTTP} {
		t.Run(protocol, func(t *testing.T) {
			r := otlptest.Start(t)
			r.Stop()
			cfg := config(r, protocol)
			cfg.OTLP.Timeout = time.Second // a blocked End would show as a second
			const queue, spans = 100, 10000
			p, reg := start(t, cfg, tracing.Options{QueueSize: queue, BatchSize: 50, BatchDelay: 10 * time.Millisecond})
			tr := p.Tracer(tracing.ScopeName)
			big := strings.Repeat("x", tracing.DefaultMaxAttributeBytes)

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var longest, total time.Duration
			for i := range spans {
				_, s := tr.Start(context.Background(), "down", trace.WithAttributes(tracing.URLPath(big[:len(big)-i%7])))
				t0 := time.Now()
				s.End()
				d := time.Since(t0)
				total += d
				longest = max(longest, d)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			t.Logf("%d span ends with the collector down: %s in all, longest %s", spans, total, longest)
			if longest > 500*time.Millisecond {
				t.Errorf("an End took %s: it waited for the exporter", longest)
			}
			// 10,000 spans of 1 KiB would be 10 MiB; the queue holds 100.
			if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
				t.Errorf("the heap grew by %d bytes while the collector was down", grew)
			}

			_, _ = shutdownWithin(p, 2*time.Second)
			if got := totalDropped(t, reg); got != spans {
				t.Errorf("dropped %d spans (queue_full %d, export_failed %d, shutdown %d), want exactly %d", got,
					dropped(t, reg, tracing.DropQueueFull), dropped(t, reg, tracing.DropExportFailed), dropped(t, reg, tracing.DropShutdown), spans)
			}
			if dropped(t, reg, tracing.DropQueueFull) == 0 {
				t.Error("no span was dropped for a full queue")
			}
			if n := len(r.Spans()); n != 0 {
				t.Errorf("a stopped receiver got %d spans", n)
			}
		})
	}
}

// TestCollectorStalled: a collector that takes exports and never answers
// costs each batch the export timeout, and its spans are counted.
func TestCollectorStalled(t *testing.T) {
	for _, protocol := range []string{tracing.ProtocolGRPC, tracing.ProtocolHTTP} {
		t.Run(protocol, func(t *testing.T) {
			r := otlptest.Start(t)
			r.Stall()
			cfg := config(r, protocol)
			cfg.OTLP.Timeout = 300 * time.Millisecond
			p, reg := start(t, cfg, tracing.Options{BatchDelay: time.Hour})
			endN(p.Tracer(tracing.ScopeName), "stalled", 20)
			t0 := time.Now()
			_ = p.ForceFlush(context.Background())
			took := time.Since(t0)
			if took < 250*time.Millisecond || took > 5*time.Second {
				t.Errorf("the stalled export ended after %s, want about its 300ms timeout", took)
			}
			if got := dropped(t, reg, tracing.DropExportFailed); got != 20 {
				t.Errorf("export_failed %d, want 20", got)
			}
			if r.Stalled() == 0 {
				t.Error("the receiver never saw the export")
			}
		})
	}
}

// TestCollectorRecovers: spans dropped during an outage are counted, and
// spans flow again once the collector is back.
func TestCollectorRecovers(t *testing.T) {
	r := otlptest.Start(t)
	cfg := config(r, tracing.ProtocolGRPC)
	cfg.OTLP.Timeout = 500 * time.Millisecond
	p, reg := start(t, cfg, tracing.Options{BatchDelay: time.Hour})
	tr := p.Tracer(tracing.ScopeName)
	endN(tr, "before", 1)
	_ = p.ForceFlush(context.Background())
	r.WaitSpans(1, waitFor)

	r.Stop()
	endN(tr, "outage", 5)
	_ = p.ForceFlush(context.Background())
	if got := dropped(t, reg, tracing.DropExportFailed); got != 5 {
		t.Fatalf("export_failed %d during the outage, want 5", got)
	}

	r.Restart()
	ended := 0
	deadline := time.Now().Add(waitFor)
	for len(r.Find("after")) == 0 && time.Now().Before(deadline) {
		endN(tr, "after", 1)
		ended++
		_ = p.ForceFlush(context.Background())
	}
	if len(r.Find("after")) == 0 {
		t.Fatalf("no span arrived within %s of the collector's return", waitFor)
	}
	if got, want := len(r.Find("after"))+dropped(t, reg, tracing.DropExportFailed)-5, ended; got != want {
		t.Errorf("after the restart: %d spans arrived or were dropped, %d ended", got, want)
	}
	if len(r.Find("outage")) != 0 {
		t.Error("spans of the outage arrived after all")
	}
}

// TestReloadSwap: a reload sends new spans to the new collector while a
// span in flight at the reload ends on the old provider and is flushed to
// the old collector; nothing is left running.
func TestReloadSwap(t *testing.T) {
	a, b := otlptest.Start(t), otlptest.Start(t)
	p, reg := start(t, config(a, tracing.ProtocolGRPC), tracing.Options{BatchDelay: time.Hour})
	tr := p.Tracer(tracing.ScopeName) // held across the reload, as the gateway holds it

	_, old := tr.Start(context.Background(), "old")
	if err := p.Reload(config(b, tracing.ProtocolHTTP)); err != nil {
		t.Fatal(err)
	}
	_, neu := tr.Start(context.Background(), "new")
	neu.End()
	old.End() // the old provider's last span: it flushes and shuts down

	a.WaitSpans(1, waitFor)
	_ = p.ForceFlush(context.Background())
	b.WaitSpans(1, waitFor)
	if got := a.Spans(); len(got) != 1 || got[0].Name != "old" {
		t.Errorf("old collector got %+v, want the span in flight at the reload", got)
	}
	if got := b.Spans(); len(got) != 1 || got[0].Name != "new" || got[0].Protocol != otlptest.HTTP {
		t.Errorf("new collector got %+v, want the span started after the reload", got)
	}

	// The same config again changes nothing; nil turns tracing off.
	if err := p.Reload(config(b, tracing.ProtocolHTTP)); err != nil || !p.Enabled() {
		t.Fatalf("Reload(same) = %v, Enabled %v", err, p.Enabled())
	}
	if err := p.Reload(nil); err != nil || p.Enabled() {
		t.Fatalf("Reload(nil) = %v, Enabled %v", err, p.Enabled())
	}
	if _, s := tr.Start(context.Background(), "off"); s.IsRecording() {
		t.Error("a span recorded with tracing off")
	}
	// An invalid config is refused and the current provider stays.
	if err := p.Reload(&tracing.Config{OTLP: tracing.OTLPConfig{Protocol: "carrier-pigeon"}}); err == nil {
		t.Error("Reload took an invalid config")
	}

	if _, err := shutdownWithin(p, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := totalDropped(t, reg); n != 0 {
		t.Errorf("%d spans dropped", n)
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

func TestShutdownFlushes(t *testing.T) {
	r := otlptest.Start(t)
	p, reg := start(t, config(r, tracing.ProtocolGRPC), tracing.Options{BatchDelay: time.Hour})
	tr := p.Tracer(tracing.ScopeName)
	endN(tr, "queued", 7)
	if _, err := shutdownWithin(p, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := len(r.Spans()); got != 7 {
		t.Errorf("the collector got %d spans at shutdown, want 7", got)
	}
	_, s := tr.Start(context.Background(), "late")
	s.End()
	if s.IsRecording() || totalDropped(t, reg) != 0 {
		t.Error("a span started after Shutdown was recorded")
	}
}

func TestShutdownWithinContext(t *testing.T) {
	r := otlptest.Start(t)
	r.Stall()
	cfg := config(r, tracing.ProtocolGRPC)
	cfg.OTLP.Timeout = time.Minute
	p, reg := start(t, cfg, tracing.Options{BatchDelay: time.Hour})
	endN(p.Tracer(tracing.ScopeName), "queued", 7)
	took, err := shutdownWithin(p, 300*time.Millisecond)
	if took > 3*time.Second {
		t.Errorf("Shutdown took %s with a 300ms context and a 1m export timeout", took)
	}
	if err == nil {
		t.Error("Shutdown reported success though nothing was exported")
	}
	if got := totalDropped(t, reg); got != 7 {
		t.Errorf("dropped %d, want 7", got)
	}
}

// TestOff: without a config nothing runs and a span costs nothing.
func TestOff(t *testing.T) {
	p, err := tracing.New(nil, tracing.Options{})
	if err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t) // no goroutine, even before Shutdown
	if p.Enabled() {
		t.Fatal("Enabled() with no config")
	}
	tr := p.Tracer(tracing.ScopeName)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		ctx2, s := tr.Start(ctx, "off")
		s.End()
		if ctx2 != ctx || s.IsRecording() {
			t.Fatal("the off tracer changed the context or recorded")
		}
	})
	if allocs != 0 {
		t.Errorf("a span start and end with tracing off allocates %v times, want 0", allocs)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestOffAfterReload: turning tracing off by reload is as cheap as never
// turning it on.
func TestOffAfterReload(t *testing.T) {
	r := otlptest.Start(t)
	p, _ := start(t, config(r, tracing.ProtocolGRPC), tracing.Options{})
	tr := p.Tracer(tracing.ScopeName)
	if err := p.Reload(nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if allocs := testing.AllocsPerRun(1000, func() {
		_, s := tr.Start(ctx, "off")
		s.End()
	}); allocs != 0 {
		t.Errorf("%v allocations per span after Reload(nil), want 0", allocs)
	}
}

func TestDroppedCounterExposition(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for range 2 { // a second provider on the same registry reuses the counter
		p, err := tracing.New(nil, tracing.Options{Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		_ = p.Shutdown(context.Background())
	}
	want := `# HELP phasegate_tracing_dropped_spans_total Spans ended but never exported, by reason: queue_full, export_failed, shutdown.
# TYPE phasegate_tracing_dropped_spans_total counter
phasegate_tracing_dropped_spans_total{reason="export_failed"} 0
phasegate_tracing_dropped_spans_total{reason="queue_full"} 0
phasegate_tracing_dropped_spans_total{reason="shutdown"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestBadEnvironmentRefused(t *testing.T) {
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "lots")
	if _, err := tracing.New(nil, tracing.Options{}); err == nil || !strings.Contains(err.Error(), "OTEL_BSP_MAX_QUEUE_SIZE") {
		t.Errorf("New = %v, want the variable named", err)
	}
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	if _, err := tracing.New(&tracing.Config{}, tracing.Options{}); err == nil || !strings.Contains(err.Error(), "http/json") {
		t.Errorf("New = %v, want the protocol refused", err)
	}
}
