package tracing

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// ExemplarTraceID is the exemplar label that carries a trace id, the name
// Prometheus and Grafana look for.
const ExemplarTraceID = "trace_id"

// ExemplarLabels returns the exemplar labels of an observation made in
// ctx: the trace id when ctx carries a sampled span, else nil (and nothing
// is allocated).
func ExemplarLabels(ctx context.Context) prometheus.Labels {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsSampled() || !sc.TraceID().IsValid() {
		return nil
	}
	return prometheus.Labels{ExemplarTraceID: sc.TraceID().String()}
}

// Observe records v on o, with ctx's trace id as its exemplar when ctx
// carries a sampled span and o keeps exemplars (client_golang's
// histograms do; /metrics shows them to scrapers that negotiate
// OpenMetrics).
func Observe(ctx context.Context, o prometheus.Observer, v float64) {
	if labels := ExemplarLabels(ctx); labels != nil {
		if eo, ok := o.(prometheus.ExemplarObserver); ok {
			eo.ObserveWithExemplar(v, labels)
			return
		}
	}
	o.Observe(v)
}
