package gateway

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/tracing"
)

// tracerSource is where request spans come from: the gateway's
// *tracing.Provider, or a recording provider in tests.
type tracerSource interface {
	Enabled() bool
	Tracer(name string, opts ...trace.TracerOption) trace.Tracer
}

// RequestSpan is the name, in ledgers, of the binding that ends a
// request's server span at done (docs/tracing.md).
const RequestSpan = "request span"

// spanKey holds the request's server span for the hooks that annotate it.
var spanKey = phases.NewKey[trace.Span]("server span")

// requestSpans starts one server span per request of a route and binds its
// end to the request's scope, so that it ends exactly once, at done,
// however the request ends. With tracing off it does nothing and
// allocates nothing.
type requestSpans struct {
	src    tracerSource
	tracer trace.Tracer
	route  string
}

func newRequestSpans(src tracerSource, route string) *requestSpans {
	if src == nil {
		return nil
	}
	return &requestSpans{src: src, tracer: src.Tracer(tracing.ScopeName), route: route}
}

// start is Hooks.Context: it continues the client's trace (traceparent,
// tracestate, baggage) with the request's span.
func (t *requestSpans) start(ctx context.Context, r *phases.Request) context.Context {
	if t == nil || !t.src.Enabled() {
		return ctx
	}
	ctx = tracing.Propagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
	attrs := tracing.AppendHTTPMethod(make([]attribute.KeyValue, 0, 4), r.Method)
	attrs = append(attrs, tracing.URLPath(r.Info.Path))
	if t.route != "" {
		attrs = append(attrs, tracing.HTTPRoute(t.route))
	}
	ctx, span := t.tracer.Start(ctx, tracing.ServerSpanName(r.Method, t.route),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	r.Scope.Acquire(fsm.Resource{Name: RequestSpan}, func() { span.End() })
	spanKey.Set(r.Values, span)
	return ctx
}

// entered records each lifecycle state the request enters as an event.
func (t *requestSpans) entered(r *phases.Request, s fsm.Step) {
	if s.To == fsm.StateDone {
		return
	}
	if span, ok := spanKey.Get(r.Values); ok {
		span.AddEvent(tracing.PhaseEvent(string(s.To)))
	}
}

// finished records how the request ended; the span itself ends at done.
func (t *requestSpans) finished(s *phases.Summary) {
	span, ok := spanKey.Get(s.Values)
	if !ok || !span.IsRecording() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	if s.Status > 0 {
		attrs = append(attrs, tracing.HTTPResponseStatusCode(s.Status))
	}
	attrs = append(attrs, tracing.Cause(string(s.Cause)))
	if s.ExitPhase != "" {
		attrs = append(attrs, tracing.ExitPhase(string(s.ExitPhase)), tracing.ExitPlugin(s.ExitPlugin))
	}
	if id := pluginsdk.Get(s.Values, pluginsdk.RequestID); id != "" {
		attrs = append(attrs, tracing.RequestID(id))
	}
	errType, failed := serverErrorType(s.Cause, s.Status)
	if failed {
		attrs = append(attrs, errType)
		span.SetStatus(codes.Error, errType.Value.AsString())
	}
	span.SetAttributes(attrs...)
}

// serverErrorType is error.type of a request: its cause when the request
// failed, else its status from 500 (docs/tracing.md).
func serverErrorType(cause phases.Cause, status int) (attribute.KeyValue, bool) {
	switch cause {
	case phases.CauseCompleted, phases.CauseExit, "":
		return tracing.ServerStatusError(status)
	}
	return tracing.ErrorType(string(cause)), true
}
