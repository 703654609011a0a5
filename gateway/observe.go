package gateway

import (
	"cmp"
	"context"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/tracing"
)

// observer is one route's accounting: the active-requests gauge, held as a
// binding from access to done, and the counters, histogram and access-log
// line recorded in log from the request's final state.
type observer struct {
	route     string
	fielders  []pluginsdk.LogFielder // the chain's plugins that add access-log fields
	m         *metrics.Set
	active    phases.BoundGauge
	duration  prometheus.Observer
	log       zerolog.Logger
	accessLog bool
	spans     *requestSpans // nil: no tracing
}

func newObserver(route string, m *metrics.Set, log zerolog.Logger, accessLog bool, traces tracerSource) *observer {
	m.InitRoute(route)
	return &observer{
		spans:     newRequestSpans(traces, route),
		route:     route,
		m:         m,
		active:    phases.BoundGauge{Name: metrics.NameHTTPActive, Vec: m.HTTPActive},
		duration:  m.HTTPDuration.WithLabelValues(route),
		log:       log,
		accessLog: accessLog,
	}
}

func (o *observer) hooks() phases.Hooks {
	return phases.Hooks{
		Context:   o.spans.start,
		Entered:   o.entered,
		Finished:  o.finished,
		Recovered: o.recovered,
	}
}

func (o *observer) entered(r *phases.Request, s fsm.Step) {
	if s.To == fsm.StateAccess {
		o.active.Acquire(r.Scope, o.route)
	}
	if o.spans != nil {
		o.spans.entered(r, s)
	}
}

func (o *observer) recovered(r *phases.Request, phase fsm.State, plugin string, v any) {
	o.log.Error().Str("route", o.route).Str("phase", string(phase)).Str("plugin", plugin).
		Str("request_id", pluginsdk.Get(r.Values, pluginsdk.RequestID)).Interface("panic", v).Msg("recovered panic")
}

// statusText caches status codes as label values.
var statusText = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func code(status int) string {
	if status >= 0 && status < len(statusText) {
		return statusText[status]
	}
	return strconv.Itoa(status)
}

func (o *observer) finished(ctx context.Context, s *phases.Summary) {
	o.m.HTTPRequests.WithLabelValues(o.route, code(s.Status)).Inc()
	tracing.Observe(ctx, o.duration, s.Duration.Seconds())
	if s.ExitPhase != "" {
		o.m.LifecycleExits.WithLabelValues(o.route, string(s.ExitPhase), s.ExitPlugin).Inc()
	}
	for _, st := range s.Trace {
		if st.Event == fsm.EventAbort {
			o.m.LifecycleAborts.WithLabelValues(o.route, string(st.From), string(s.Cause)).Inc()
		}
	}
	if o.spans != nil {
		o.spans.finished(s)
	}
	if o.accessLog {
		o.writeAccessLog(ctx, s)
	}
}

// maxLogModelBytes bounds the access log's model, which a client may choose.
const maxLogModelBytes = 256

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// noInfo stands, read only, for the LLM facts of a request that has none.
var noInfo llm.Info

// writeAccessLog writes the access-log line of docs/metrics.md. Only fields
// named here or by a plugin's LogFields are written: no header, no query
// string, so no credential can leak into it.
func (o *observer) writeAccessLog(ctx context.Context, s *phases.Summary) {
	v := s.Values
	info, _ := llm.InfoKey.Get(v)
	if info == nil {
		info = &noInfo
	}
	client := info.ClientProtocol
	if client == "" { // refused before the AI upstream read the request
		client, _ = door.Entered(v)
	}
	ev := o.log.Info().
		Str("request_id", pluginsdk.Get(v, pluginsdk.RequestID)).
		Str("route", o.route).
		Str("method", s.Request.Method).
		Str("path", s.Request.Path).
		Int("status", s.Status).
		Float64("duration_ms", ms(s.Duration)).
		Float64("upstream_ms", ms(s.UpstreamDuration)).
		Float64("ttft_ms", ms(info.TTFT)).
		Str("model", metrics.Cut(info.Model, maxLogModelBytes)).
		Str("instance", info.Instance).
		Int("prompt_tokens", info.PromptTokens).
		Int("completion_tokens", info.CompletionTokens).
		Str("client_protocol", string(client)).
		Str("provider_protocol", string(info.ProviderProtocol)).
		Str("lifecycle", fsm.Path(s.Trace)).
		Str("cause", string(s.Cause)).
		Str("exit_phase", string(s.ExitPhase)).
		Str("exit_plugin", s.ExitPlugin)
	appendTraceIDs(ev, trace.SpanContextFromContext(ctx))
	for _, f := range o.fielders {
		f.LogFields(s, ev)
	}
	ev.Msg("access")
}

// appendTraceIDs adds trace_id and span_id, in the W3C hex form, empty when
// the request has no span, so that every line has the same fields.
func appendTraceIDs(ev *zerolog.Event, sc trace.SpanContext) {
	if !sc.IsValid() {
		ev.Str("trace_id", "").Str("span_id", "")
		return
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	var buf [2 * (len(tid) + len(sid))]byte
	hex.Encode(buf[:], tid[:])
	hex.Encode(buf[2*len(tid):], sid[:])
	ev.Bytes("trace_id", buf[:2*len(tid)]).Bytes("span_id", buf[2*len(tid):])
}

// logFielders returns the plugins of ps that add access-log fields, in the
// order the chain runs them: descending priority, then ascending name.
func logFielders(ps []phases.Plugin) []pluginsdk.LogFielder {
	var out []pluginsdk.LogFielder
	for _, p := range ps {
		if f, ok := p.(pluginsdk.LogFielder); ok {
			out = append(out, f)
		}
	}
	prio := func(p phases.Plugin) int {
		if q, ok := p.(phases.Prioritized); ok {
			return q.Priority()
		}
		return 0
	}
	slices.SortStableFunc(out, func(a, b pluginsdk.LogFielder) int {
		if c := cmp.Compare(prio(b), prio(a)); c != 0 {
			return c
		}
		return strings.Compare(a.Name(), b.Name())
	})
	return out
}
