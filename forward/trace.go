package forward

// The client span of a plain upstream call (docs/tracing.md): started when
// the call goes out, carried to the node as traceparent, and ended by a
// binding on a child scope of the request that closes with the response's
// body, or at done at the latest, so it ends exactly once. With tracing
// off (no span in the request's context) none of this runs.

import (
	"context"
	"errors"
	"io"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/tracing"
)

// Names, in ledgers, of a traced call's child scope and of the binding
// that ends its span.
const (
	AttemptScope = "upstream attempt"
	AttemptSpan  = "upstream attempt span"
)

// attemptSpan is a traced upstream call. A nil *attemptSpan (tracing off)
// does nothing.
type attemptSpan struct {
	scope    *fsm.Scope
	span     trace.Span
	status   int
	err      error
	complete bool // the body reached its end
}

// traceAttempt starts the span of the call out to node as a child of the
// request's span in ctx, the request's context, and writes its context
// into out's header; nil when the request has no span.
func traceAttempt(ctx context.Context, r *phases.Request, out *http.Request, node string) *attemptSpan {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return nil
	}
	attrs := tracing.AppendHTTPMethod(make([]attribute.KeyValue, 0, 5), out.Method)
	attrs = tracing.AppendServerAddress(attrs, node)
	attrs = append(attrs, tracing.Attempt(1))
	sctx, span := parent.TracerProvider().Tracer(tracing.ScopeName).Start(ctx, tracing.ClientSpanName(out.Method),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	tracing.Propagator().Inject(sctx, propagation.HeaderCarrier(out.Header))
	a := &attemptSpan{scope: r.Scope.Child(AttemptScope), span: span}
	a.scope.Acquire(fsm.Resource{Name: AttemptSpan}, func() { a.finish(ctx) })
	return a
}

// answered records the node's status.
func (a *attemptSpan) answered(status int) {
	if a != nil {
		a.status = status
	}
}

// failed records the error that ended the call, the first one only.
func (a *attemptSpan) failed(err error) {
	if a != nil && a.err == nil && err != nil {
		a.err = err
	}
}

// read records how a read of the body ended: nil, io.EOF or a failure.
func (a *attemptSpan) read(err error) {
	switch {
	case a == nil || err == nil:
	case err == io.EOF:
		a.complete = true
	default:
		a.failed(err)
	}
}

// end ends the call: its scope closes, ending the span.
func (a *attemptSpan) end() {
	if a != nil {
		a.scope.Close()
	}
}

// finish records how the call ended and ends the span.
func (a *attemptSpan) finish(ctx context.Context) {
	attrs := make([]attribute.KeyValue, 0, 2)
	if a.status > 0 {
		attrs = append(attrs, tracing.HTTPResponseStatusCode(a.status))
	}
	errType, failed := tracing.ClientStatusError(a.status)
	if !failed && a.err == nil && !a.complete && a.status > 0 && ctx.Err() != nil {
		// The client left before the body's end: the runner closed it.
		errType, failed = tracing.ErrorType(string(phases.CauseClientClosed)), true
	}
	if !failed && a.err != nil {
		var te *TimeoutError
		switch {
		case errors.As(a.err, &te):
			errType = tracing.ErrorType(string(phases.CauseTimeout))
		case ctx.Err() != nil:
			errType = tracing.ErrorType(string(phases.CauseClientClosed))
		default:
			errType = tracing.ErrorType(string(phases.CauseUpstreamError))
		}
		failed = true
	}
	if failed {
		attrs = append(attrs, errType)
		a.span.SetStatus(codes.Error, errType.Value.AsString())
	}
	a.span.SetAttributes(attrs...)
	a.span.End()
}
