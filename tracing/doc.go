// Package tracing is phasegate's OpenTelemetry tracing: the tracing:
// config block, a reloadable TracerProvider on the official OTel SDK that
// exports over OTLP (gRPC or HTTP), the semantic-convention names every
// span uses, and histogram exemplars that link metrics to traces.
//
// Exporter faults never reach requests. Each provider queues ended spans
// in a bounded queue that a single goroutine exports in batches; a span
// that does not fit, or whose export fails or times out, is dropped and
// counted in phasegate_tracing_dropped_spans_total, so a collector that is
// down or stalled costs a request nothing and memory stays bounded by the
// queue's size.
//
// A Provider built without a Config is off: its tracers return the
// context unchanged and a span that does nothing, with no allocation and
// no goroutine. Code that builds span options or attributes does so only
// when Provider.Enabled reports true:
//
//	if tp.Enabled() {
//		var span trace.Span
//		ctx, span = tracer.Start(ctx, tracing.ServerSpanName(r.Method, route),
//			trace.WithSpanKind(trace.SpanKindServer),
//			trace.WithAttributes(tracing.AppendHTTPMethod(nil, r.Method)...))
//		defer span.End()
//	}
//
// Provider.Reload swaps the SDK provider when the config changes; tracers
// already handed out follow it, spans end on the provider they started
// on, and the replaced provider flushes to its own collector in the
// background. docs/tracing.md describes the config, the precedence of the
// config over OTEL_* environment variables, and the attributes.
package tracing
