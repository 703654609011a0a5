package tracing_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/phasegate/phasegate/tracing"
)

func spanContext(sampled bool) context.Context {
	flags := trace.TraceFlags(0)
	if sampled {
		flags = trace.FlagsSampled
	}
	return trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{1}, TraceFlags: flags,
	}))
}

func TestExemplarOnSampledSpansOnly(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "d_seconds", Help: "d", Buckets: []float64{1}}, []string{"route"})
	reg.MustRegister(h)
	tracing.Observe(spanContext(true), h.WithLabelValues("sampled"), 0.5)
	tracing.Observe(spanContext(false), h.WithLabelValues("unsampled"), 0.5)
	tracing.Observe(context.Background(), h.WithLabelValues("none"), 0.5)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range mfs[0].GetMetric() {
		route := m.GetLabel()[0].GetValue()
		if m.GetHistogram().GetSampleCount() != 1 {
			t.Errorf("%s: %d observations, want 1", route, m.GetHistogram().GetSampleCount())
		}
		for _, b := range m.GetHistogram().GetBucket() {
			if ex := b.GetExemplar(); ex != nil {
				got[route] = ex.GetLabel()[0].GetName() + "=" + ex.GetLabel()[0].GetValue()
			}
		}
	}
	want := map[string]string{"sampled": "trace_id=4bf92f3577b34da6a3ce929d0e0e4736"}
	if len(got) != 1 || got["sampled"] != want["sampled"] {
		t.Errorf("exemplars %v, want %v", got, want)
	}
}

func TestExemplarLabelsUnsampledAllocateNothing(t *testing.T) {
	ctx := spanContext(false)
	if allocs := testing.AllocsPerRun(1000, func() {
		if tracing.ExemplarLabels(ctx) != nil {
			t.Fatal("labels for an unsampled span")
		}
	}); allocs != 0 {
		t.Errorf("%v allocations, want 0", allocs)
	}
}
