package tracing

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRetireAfterDrainTimeout: a replaced provider waits for its span in
// flight only up to DrainTimeout; the span, ended later, is counted as
// dropped at shutdown.
func TestRetireAfterDrainTimeout(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cfg := &Config{OTLP: OTLPConfig{Endpoint: "127.0.0.1:1"}} // nothing is exported
	p, err := New(cfg, Options{Registerer: reg, DrainTimeout: 200 * time.Millisecond, BatchDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	old := p.cur.Load()
	_, span := p.Tracer(ScopeName).Start(context.Background(), "in flight")

	t0 := time.Now()
	if err := p.Reload(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.proc.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the replaced provider never shut down")
	}
	if took := time.Since(t0); took < 200*time.Millisecond {
		t.Errorf("the replaced provider shut down after %s, before its drain timeout", took)
	}
	span.End()
	if got := testutil.ToFloat64(p.drops.shutdown); got != 1 {
		t.Errorf("shutdown drops %v, want the span that ended after its provider", got)
	}
}

// TestSetDrainTimeout: a changed drain timeout (a reloaded
// shutdown_timeout) bounds the next retirement.
func TestSetDrainTimeout(t *testing.T) {
	cfg := &Config{OTLP: OTLPConfig{Endpoint: "127.0.0.1:1"}}
	p, err := New(cfg, Options{Registerer: prometheus.NewPedanticRegistry(), BatchDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(context.Background())
	p.SetDrainTimeout(100 * time.Millisecond)
	old := p.cur.Load()
	_, span := p.Tracer(ScopeName).Start(context.Background(), "in flight")
	defer span.End()
	if err := p.Reload(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.proc.done:
	case <-time.After(5 * time.Second): // the default would be 30 s
		t.Fatal("the replaced provider waited past the drain timeout it was given")
	}
}
