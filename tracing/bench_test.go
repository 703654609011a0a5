package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phasegate/phasegate/internal/otlptest"
	"github.com/phasegate/phasegate/tracing"
)

// BenchmarkSpan measures one span's start and end, and one request's
// spans (a server span with attributes and phase events, and an LLM
// attempt as its child, built only when tracing is enabled), with tracing
// off, on with every trace sampled and exported to a live OTLP receiver,
// on with nothing sampled, and on with the collector down (spans dropped).
func BenchmarkSpan(b *testing.B) {
	zero := 0.0
	for _, tc := range []struct {
		name string
		cfg  func(r *otlptest.Receiver) *tracing.Config
	}{
		{"off", func(*otlptest.Receiver) *tracing.Config { return nil }},
		{"on", func(r *otlptest.Receiver) *tracing.Config { return config(r, tracing.ProtocolGRPC) }},
		{"on-unsampled", func(r *otlptest.Receiver) *tracing.Config {
			c := config(r, tracing.ProtocolGRPC)
			c.Sampler.Ratio = &zero
			return c
		}},
		{"on-collector-down", func(r *otlptest.Receiver) *tracing.Config {
			c := config(r, tracing.ProtocolGRPC)
			r.Stop()
			return c
		}},
	} {
		r := otlptest.Start(b)
		r.Discard()
		p, err := tracing.New(tc.cfg(r), tracing.Options{Registerer: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		tr := p.Tracer(tracing.ScopeName)
		ctx := context.Background()
		b.Run(tc.name+"/span", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, s := tr.Start(ctx, "span")
				s.End()
			}
		})
		b.Run(tc.name+"/request", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if p.Enabled() {
					request(ctx, tr)
				}
			}
		})
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		_ = p.Shutdown(sctx)
		cancel()
		r.Stop()
	}
}
