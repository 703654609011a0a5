package gateway

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/airatelimiting"
	"github.com/phasegate/phasegate/plugins/keyauth"
	"github.com/phasegate/phasegate/plugins/requestid"
)

// observer is one route's accounting: the active-requests gauge, held as a
// binding from access to done, and the counters, histogram and access-log
// line recorded in log from the request's final state.
type observer struct {
	route     string
	m         *metrics.Set
	active    phases.BoundGauge
	duration  prometheus.Observer
	log       zerolog.Logger
	accessLog bool
}

func newObserver(route string, m *metrics.Set, log zerolog.Logger, accessLog bool) *observer {
	m.InitRoute(route)
	return &observer{
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
		Entered:   o.entered,
		Finished:  o.finished,
		Recovered: o.recovered,
	}
}

func (o *observer) entered(r *phases.Request, s fsm.Step) {
	if s.To == fsm.StateAccess {
		o.active.Acquire(r.Scope(), o.route)
	}
}

func (o *observer) recovered(r *phases.Request, phase fsm.State, plugin string, v any) {
	o.log.Error().Str("route", o.route).Str("phase", string(phase)).Str("plugin", plugin).
		Str("request_id", requestid.From(r.Values())).Interface("panic", v).Msg("recovered panic")
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
	o.duration.Observe(s.Duration.Seconds())
	if s.ExitPhase != "" {
		o.m.LifecycleExits.WithLabelValues(o.route, string(s.ExitPhase), s.ExitPlugin).Inc()
	}
	for _, st := range s.Trace {
		if st.Event == fsm.EventAbort {
			o.m.LifecycleAborts.WithLabelValues(o.route, string(st.From), string(s.Cause)).Inc()
		}
	}
	if o.accessLog {
		o.writeAccessLog(s)
	}
}

// maxLogModelBytes bounds the access log's model, which a client may choose.
const maxLogModelBytes = 256

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// writeAccessLog writes CONTRACT §6's line. Only fields named here are
// written: no header, no query string, so no credential can leak into it.
func (o *observer) writeAccessLog(s *phases.Summary) {
	v := s.Values()
	llm, _ := phases.LLM.Get(v)
	if llm == nil {
		llm = &phases.LLMInfo{}
	}
	ev := o.log.Info().
		Str("request_id", requestid.From(v)).
		Str("route", o.route).
		Str("method", s.Request.Method()).
		Str("path", s.Request.Path()).
		Int("status", s.Status).
		Float64("duration_ms", ms(s.Duration)).
		Float64("upstream_ms", ms(s.UpstreamDuration)).
		Float64("ttft_ms", ms(llm.TTFT)).
		Str("model", metrics.Cut(llm.Model, maxLogModelBytes)).
		Str("instance", llm.Instance).
		Int("prompt_tokens", llm.PromptTokens).
		Int("completion_tokens", llm.CompletionTokens).
		Str("lifecycle", s.Path()).
		Str("cause", string(s.Cause)).
		Str("exit_phase", string(s.ExitPhase)).
		Str("exit_plugin", s.ExitPlugin)
	if c := keyauth.ConsumerFrom(v); c != "" {
		ev = ev.Str("consumer", c)
	}
	if llm.Moderation != "" {
		ev = ev.Str("moderation", llm.Moderation)
	}
	if rl := airatelimiting.OutcomeFrom(v); rl != nil {
		ev = ev.Str("ratelimit", rl.Rejected).
			Dict("reserved", amounts(rl.Limits, rl.Reserved)).
			Dict("committed", amounts(rl.Limits, rl.Committed))
	}
	ev.Msg("access")
}

// amounts is a rate limit's figures by limit name, for the access log.
func amounts(names []string, v []int64) *zerolog.Event {
	d := zerolog.Dict()
	for i, n := range names {
		if i < len(v) {
			d = d.Int64(n, v[i])
		}
	}
	return d
}
