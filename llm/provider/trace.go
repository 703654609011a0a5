package provider

// The client span of one upstream attempt (docs/tracing.md): started when
// the attempt's scope opens, carried to the upstream as traceparent, and
// ended by a binding on that scope, so it ends exactly once, when the
// attempt does. With tracing off (no span in the request's context) none
// of this runs.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/tracing"
)

// AttemptSpan is the name, in ledgers, of the binding that ends an
// attempt's span when its scope closes.
const AttemptSpan = "llm attempt span"

// attemptTrace is what an attempt's span records as the response arrives.
type attemptTrace struct {
	span          trace.Span
	responseModel string
	finish        []string
	err           error // a failure after the upstream answered (a broken body)
	complete      bool  // the stream reached its end
}

// traceAttempt starts a's span as a child of the request's span in ctx,
// binds its end to a's scope and writes its context into out's header.
// actx is the attempt's own context, whose cause tells a timeout.
func (in *Instance) traceAttempt(ctx, actx context.Context, a *attempt, c *call, out *http.Request) {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 9)
	attrs = append(attrs,
		tracing.GenAIOperationName(tracing.GenAIOperationChat),
		tracing.GenAIProviderName(in.provider),
		tracing.GenAIRequestModel(a.model),
		tracing.GenAIRequestStream(c.stream),
		tracing.Instance(in.name),
		tracing.Attempt(c.info.Attempts))
	attrs = tracing.AppendServerAddress(attrs, out.URL.Host)
	sctx, span := parent.TracerProvider().Tracer(tracing.ScopeName).Start(ctx,
		tracing.GenAISpanName(tracing.GenAIOperationChat, a.model),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	tracing.Propagator().Inject(sctx, propagation.HeaderCarrier(out.Header))
	a.trace = &attemptTrace{span: span}
	a.scope.Acquire(fsm.Resource{Name: AttemptSpan}, func() { a.endSpan(ctx, actx, c) })
}

// endSpan records how the attempt ended and ends its span.
func (a *attempt) endSpan(ctx, actx context.Context, c *call) {
	t := a.trace
	span := t.span
	if !span.IsRecording() {
		span.End()
		return
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	if a.status > 0 {
		attrs = append(attrs, tracing.HTTPResponseStatusCode(a.status))
	}
	if t.responseModel != "" {
		attrs = append(attrs, tracing.GenAIResponseModel(t.responseModel))
	}
	if len(t.finish) > 0 {
		attrs = append(attrs, tracing.GenAIResponseFinishReasons(t.finish...))
	}
	if c.final == a && c.info.UsageKnown {
		attrs = append(attrs, tracing.GenAIUsageInputTokens(c.info.PromptTokens),
			tracing.GenAIUsageOutputTokens(c.info.CompletionTokens))
	}
	if a.firstToken {
		span.AddEvent(tracing.EventFirstToken, trace.WithTimestamp(a.sent.Add(a.ttft)),
			trace.WithAttributes(tracing.GenAIResponseTimeToFirstChunk(a.ttft.Seconds())))
	}
	if errType, failed := a.errorType(ctx, actx); failed {
		attrs = append(attrs, errType)
		span.SetStatus(codes.Error, errType.Value.AsString())
	}
	span.SetAttributes(attrs...)
	span.End()
}

// errorType is error.type of a failed attempt: its status from 400, else,
// when it got no usable answer, why: timeout, client_closed or
// upstream_error.
func (a *attempt) errorType(ctx, actx context.Context) (attribute.KeyValue, bool) {
	if kv, ok := tracing.ClientStatusError(a.status); ok {
		return kv, true
	}
	if a.status > 0 && a.trace.err == nil {
		if a.sse && !a.trace.complete && ctx.Err() != nil {
			// The client left mid-stream: the runner closed the body.
			return tracing.ErrorType(string(phases.CauseClientClosed)), true
		}
		return attribute.KeyValue{}, false
	}
	var te *TimeoutError
	switch cause := context.Cause(actx); {
	case errors.Is(cause, errTimedOut), errors.Is(cause, errStreamCap), errors.As(a.trace.err, &te):
		return tracing.ErrorType(string(phases.CauseTimeout)), true
	case ctx.Err() != nil:
		return tracing.ErrorType(string(phases.CauseClientClosed)), true
	}
	return tracing.ErrorType(string(phases.CauseUpstreamError)), true
}

// traceComplete records that a's stream reached its end.
func (a *attempt) traceComplete() {
	if a.trace != nil {
		a.trace.complete = true
	}
}

// traceFailed records err, a failure after the upstream answered, on a's
// span.
func (a *attempt) traceFailed(err error) {
	if a.trace != nil && a.trace.err == nil {
		a.trace.err = err
	}
}

// observe records v on o, with the trace id as its exemplar when a's span
// is sampled.
func (a *attempt) observe(o prometheus.Observer, v float64) {
	if a.trace == nil {
		o.Observe(v)
		return
	}
	tracing.Observe(trace.ContextWithSpanContext(context.Background(), a.trace.span.SpanContext()), o, v)
}

// modelKey and the finish keys are looked for before a response or
// stream event is parsed for the span.
var (
	modelKey   = []byte(`"model"`)
	finishKeys = [][]byte{[]byte(`"finish_reason":"`), []byte(`"stop_reason":"`)}
)

func hasFinish(data []byte) bool {
	for _, k := range finishKeys {
		if bytes.Contains(data, k) {
			return true
		}
	}
	return false
}

// traceResponse takes the response model and finish reasons of a's span
// from data, the upstream's own bytes: a whole chat completion or
// Anthropic message, or one stream event of either (Anthropic's model is
// in message_start's message, its stop reason in message_delta's delta).
func (a *attempt) traceResponse(data []byte) {
	t := a.trace
	if t == nil || !t.span.IsRecording() {
		return
	}
	finish := hasFinish(data)
	if !finish && (t.responseModel != "" || !bytes.Contains(data, modelKey)) {
		return
	}
	var v struct {
		Model   string `json:"model"`
		Choices []struct {
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		StopReason *string `json:"stop_reason"` // Anthropic Messages
		Message    struct {
			Model string `json:"model"`
		} `json:"message"`
		Delta struct {
			StopReason *string `json:"stop_reason"`
		} `json:"delta"`
	}
	if json.Unmarshal(data, &v) != nil {
		return
	}
	if t.responseModel == "" {
		t.responseModel = cmp.Or(v.Model, v.Message.Model)
	}
	reasons := make([]*string, 0, len(v.Choices)+2)
	for _, ch := range v.Choices {
		reasons = append(reasons, ch.FinishReason)
	}
	reasons = append(reasons, v.StopReason, v.Delta.StopReason)
	for _, r := range reasons {
		if r != nil && *r != "" && len(t.finish) < maxFinishReasons {
			t.finish = append(t.finish, *r)
		}
	}
}

// maxFinishReasons bounds the finish reasons a span keeps: an upstream
// chooses how many choices it sends.
const maxFinishReasons = 16
