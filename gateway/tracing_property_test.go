package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
	"github.com/phasegate/phasegate/plugins/aiproxymulti"
	"github.com/phasegate/phasegate/pluginsdk"
)

// countingTracing is an in-process tracer provider over the OTel SDK that
// counts the End calls of every span it started (the SDK ignores an End
// after the first, so it cannot tell a double end) and remembers each
// span's parent.
type countingTracing struct {
	embedded.TracerProvider
	sdk *sdktrace.TracerProvider

	mu    sync.Mutex
	spans []*countedSpan
}

func newCountingTracing() *countingTracing {
	return &countingTracing{sdk: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))}
}

func (c *countingTracing) Enabled() bool { return true }

func (c *countingTracing) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &countingTracer{c: c, tr: c.sdk.Tracer(name, opts...)}
}

// take returns the spans started since the last take.
func (c *countingTracing) take() []*countedSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.spans
	c.spans = nil
	return s
}

type countingTracer struct {
	embedded.Tracer
	c  *countingTracing
	tr trace.Tracer
}

func (t *countingTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanContextFromContext(ctx)
	ctx, s := t.tr.Start(ctx, name, opts...)
	cs := &countedSpan{Span: s, c: t.c, name: name, parent: parent}
	t.c.mu.Lock()
	t.c.spans = append(t.c.spans, cs)
	t.c.mu.Unlock()
	return trace.ContextWithSpan(ctx, cs), cs
}

type countedSpan struct {
	trace.Span
	c      *countingTracing
	name   string
	parent trace.SpanContext
	ends   atomic.Int32
}

func (s *countedSpan) End(opts ...trace.SpanEndOption) {
	s.ends.Add(1)
	s.Span.End(opts...)
}

// TracerProvider is the counting provider, so that the attempt spans,
// started from the request span's provider, are counted too.
func (s *countedSpan) TracerProvider() trace.TracerProvider { return s.c }

// The harness's random exits, panics, mutations, stalls and disconnects
// around ai-proxy-multi over random instances (unreachable, always 500,
// the mock with a random fault) and fallback policies, with the gateway's
// own request hooks and tracing on: every span started ends exactly once,
// by the time the request is done; there is one request span, and one
// attempt span per attempt scope, each a child of the request span.
func TestPropertyTracingSpansEndOnceAndNest(t *testing.T) {
	m := providertest.StartMock(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":"broken"}`))
	}))
	defer broken.Close()
	transport := forward.NewTransport()
	defer transport.CloseIdleConnections()
	urls := map[string]string{
		"dead":   "http://" + providertest.DeadAddr(t) + "/v1/chat/completions",
		"broken": broken.URL + "/v1/chat/completions",
		"mock":   m.URL() + mockllm.PathChatCompletions,
	}
	tr := newCountingTracing()
	defer func() { _ = tr.sdk.Shutdown(context.Background()) }()
	set, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	nop := zerologNop()
	obs := newObserver("r", set, nop, false, tr)

	var cfg aiproxymulti.Config
	phasetest.Check(t, phasetest.Config{
		AttemptScope: provider.AttemptScope,
		Options:      phases.Options{Route: "r", Hooks: obs.hooks()},
		Request: func(rt *rapid.T) *http.Request {
			cfg = drawMultiConfig(rt, urls)
			return drawChatRequest(rt)
		},
		Plugins: func(env *phasetest.Env) []phases.Plugin {
			s, err := metrics.New(env.Registry)
			if err != nil {
				panic(err)
			}
			c := cfg
			if len(c.Instances) == 0 { // the probe, before the first draw
				c = aiproxymulti.DefaultConfig()
				c.Instances = []aiproxymulti.Instance{{Name: "mock", Provider: "openai-compatible", Endpoint: urls["mock"], Timeout: time.Second}}
			}
			p, err := aiproxymulti.New(c, pluginsdk.Env{Route: "r", Metrics: s, Transport: transport})
			if err != nil {
				panic(err)
			}
			return []phases.Plugin{p}
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			checkSpans(t, tr.take(), r, provider.AttemptScope, provider.AttemptSpan)
		},
	})
}

// checkSpans checks the spans of one path against its bindings: scope and
// span name the attempt scope and the binding that ends its span.
func checkSpans(t phasetest.TB, spans []*countedSpan, r *phasetest.Result, scope, span string) {
	t.Helper()
	var problems []string
	var server *countedSpan
	attempts := 0
	for _, s := range spans {
		if n := s.ends.Load(); n != 1 {
			problems = append(problems, fmt.Sprintf("span %q ended %d times", s.name, n))
		}
		if strings.HasPrefix(s.name, "POST ") {
			if server != nil {
				problems = append(problems, "two request spans")
			}
			server = s
		} else {
			attempts++
		}
	}
	if server == nil {
		problems = append(problems, "no request span")
	} else {
		for _, s := range spans {
			if s != server && s.parent.SpanID() != server.SpanContext().SpanID() {
				problems = append(problems, fmt.Sprintf("attempt span %q has parent %s, not the request span %s", s.name, s.parent.SpanID(), server.SpanContext().SpanID()))
			}
		}
	}
	scopes, spanBindings := 0, 0
	for _, b := range r.Bindings {
		switch b.Resource.Name {
		case scope:
			scopes++
		case span:
			spanBindings++
		}
	}
	if attempts != scopes || attempts != spanBindings {
		problems = append(problems, fmt.Sprintf("%d attempt spans for %d attempt scopes and %d span bindings", attempts, scopes, spanBindings))
	}
	if len(problems) > 0 {
		t.Fatalf("%s\n\ntrace:\n%s", strings.Join(problems, "\n"), strings.Join(r.Journal, "\n"))
	}
}

// The same with a plain upstream (forward) whose node answers, streams,
// hangs, fails or resets at random: one call span per upstream call, a
// child of the request span, each ended exactly once.
func TestPropertyTracingPlainUpstreamSpans(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body whole lets net/http see the gateway hang up
		// (it watches the connection only once the body is read).
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.Header.Get("X-Behave") {
		case "fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "hang":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "reset":
			w.Header().Set("Content-Length", "100")
			_, _ = w.Write([]byte("short"))
			panic(http.ErrAbortHandler)
		default:
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(2 * time.Millisecond)
			}
		}
	}))
	defer origin.Close()
	transport := forward.NewTransport()
	defer transport.CloseIdleConnections()
	tr := newCountingTracing()
	defer func() { _ = tr.sdk.Shutdown(context.Background()) }()
	set, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	obs := newObserver("r", set, zerologNop(), false, tr)
	cfg := forward.Config{Nodes: map[string]int{origin.Listener.Addr().String(): 1}, Timeout: 100 * time.Millisecond}
	cfg.SetDefaults()
	phasetest.Check(t, phasetest.Config{
		Options: phases.Options{Route: "r", Hooks: obs.hooks()},
		Request: func(rt *rapid.T) *http.Request {
			req := httptest.NewRequest(http.MethodPost, "/v1/things", strings.NewReader(`{"a":1}`))
			req.Header.Set("X-Behave", rapid.SampledFrom([]string{"ok", "ok", "fail", "hang", "reset"}).Draw(rt, "behave"))
			return req
		},
		Plugins: func(*phasetest.Env) []phases.Plugin {
			up, err := forward.New(cfg, transport)
			if err != nil {
				panic(err)
			}
			return []phases.Plugin{up}
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			checkSpans(t, tr.take(), r, forward.AttemptScope, forward.AttemptSpan)
		},
	})
}

// drawMultiConfig draws one to three instances of the kinds in urls and
// the fallback policy.
func drawMultiConfig(t *rapid.T, urls map[string]string) aiproxymulti.Config {
	kinds := rapid.SliceOfN(rapid.SampledFrom([]string{"dead", "broken", "mock", "mock"}), 1, 3).Draw(t, "instances")
	cfg := aiproxymulti.DefaultConfig()
	for i, k := range kinds {
		cfg.Instances = append(cfg.Instances, aiproxymulti.Instance{
			Name: fmt.Sprintf("%s-%d", k, i), Provider: "openai-compatible", Endpoint: urls[k],
			Priority: rapid.IntRange(0, 2).Draw(t, "priority"), Weight: 1,
			Timeout: 100 * time.Millisecond, MaxStreamDuration: 60 * time.Millisecond,
		})
	}
	if rapid.Bool().Draw(t, "never fall back") {
		cfg.FallbackOn = []string{}
	}
	return cfg
}

// drawChatRequest draws a chat request, streamed or not, with a mock
// fault.
func drawChatRequest(t *rapid.T) *http.Request {
	stream := rapid.Bool().Draw(t, "stream")
	body := `{"model":"m1","messages":[{"role":"user","content":"hello there"}]` + map[bool]string{true: `,"stream":true`}[stream] + `}`
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(mockllm.HeaderChunks, strconv.Itoa(rapid.IntRange(1, 4).Draw(t, "chunks")))
	switch rapid.SampledFrom([]string{"", "", "status", "reset", "hang", "drip"}).Draw(t, "fault") {
	case "status":
		req.Header.Set(mockllm.HeaderStatus, strconv.Itoa(rapid.SampledFrom([]int{400, 429, 500}).Draw(t, "status")))
	case "reset":
		req.Header.Set(mockllm.HeaderResetAfter, strconv.Itoa(rapid.IntRange(0, 3).Draw(t, "reset after")))
	case "hang":
		req.Header.Set(mockllm.HeaderHang, "true")
	case "drip":
		req.Header.Set(mockllm.HeaderChunkDelay, strconv.Itoa(rapid.IntRange(1, 15).Draw(t, "delay ms"))+"ms")
	}
	return req
}
