package tracing

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// fakeExporter counts what it exports; fail makes exports fail, gate
// holds them until it is closed or their context ends.
type fakeExporter struct {
	exported atomic.Int64
	calls    atomic.Int64
	fail     atomic.Bool
	gate     chan struct{}
	shut     atomic.Bool
}

func (e *fakeExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.calls.Add(1)
	if e.gate != nil {
		select {
		case <-e.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if e.fail.Load() {
		return errors.New("collector says no")
	}
	e.exported.Add(int64(len(spans)))
	return nil
}

func (e *fakeExporter) Shutdown(context.Context) error { e.shut.Store(true); return nil }

type dropCounts struct {
	reg   *prometheus.Registry
	drops drops
}

func newDropCounts(t *testing.T) dropCounts {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	d, err := newDrops(reg)
	if err != nil {
		t.Fatal(err)
	}
	return dropCounts{reg, d}
}

func (d dropCounts) get() (queueFull, exportFailed, shutdown int) {
	return int(testutil.ToFloat64(d.drops.queueFull)), int(testutil.ToFloat64(d.drops.exportFailed)), int(testutil.ToFloat64(d.drops.shutdown))
}

// endSpans starts and ends n spans on a provider whose only processor is p,
// and returns the longest End.
func endSpans(p *processor, n int) time.Duration {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tr := tp.Tracer("test")
	var longest time.Duration
	for range n {
		_, s := tr.Start(context.Background(), "span")
		start := time.Now()
		s.End()
		longest = max(longest, time.Since(start))
	}
	return longest
}

func TestProcessorQueueFullCountedExactly(t *testing.T) {
	d := newDropCounts(t)
	exp := &fakeExporter{gate: make(chan struct{})}
	p := newProcessor(exp, processorOptions{queueSize: 10, batchSize: 5, delay: time.Hour, timeout: time.Hour}, d.drops, nil)

	// The first batch is held by the exporter and still counts against
	// the queue: 10 spans fit, 90 are dropped, and no End waits.
	if longest := endSpans(p, 100); longest > 100*time.Millisecond {
		t.Errorf("an End took %s while the exporter was stuck", longest)
	}
	if q, f, s := d.get(); q != 90 || f != 0 || s != 0 {
		t.Errorf("drops: queue_full %d export_failed %d shutdown %d, want 90 0 0", q, f, s)
	}
	close(exp.gate)
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exp.exported.Load(); got != 10 {
		t.Errorf("exported %d spans, want the 10 queued", got)
	}
	if !exp.shut.Load() {
		t.Error("the exporter was not shut down")
	}
	if q, f, s := d.get(); q != 90 || f != 0 || s != 0 {
		t.Errorf("after shutdown, drops: %d %d %d, want 90 0 0", q, f, s)
	}
}

func TestProcessorExportFailuresCountedAndReported(t *testing.T) {
	d := newDropCounts(t)
	exp := &fakeExporter{}
	exp.fail.Store(true)
	var mu sync.Mutex
	var reports []string
	p := newProcessor(exp, processorOptions{queueSize: 100, batchSize: 10, delay: time.Hour, timeout: time.Second}, d.drops, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, err.Error())
	})
	defer p.Shutdown(context.Background())
	endSpans(p, 25)
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if q, f, s := d.get(); q != 0 || f != 25 || s != 0 {
		t.Errorf("drops: %d %d %d, want 0 25 0", q, f, s)
	}
	mu.Lock()
	defer mu.Unlock()
	// Three failed exports, one report: the others wait for the next one.
	if len(reports) != 1 || !strings.Contains(reports[0], "exporting 10 spans: collector says no") {
		t.Errorf("reports = %q, want one", reports)
	}
}

func TestProcessorShutdownWithinContext(t *testing.T) {
	d := newDropCounts(t)
	exp := &fakeExporter{gate: make(chan struct{})} // never opened: a stalled collector
	p := newProcessor(exp, processorOptions{queueSize: 50, batchSize: 5, delay: time.Hour, timeout: time.Hour}, d.drops, nil)
	endSpans(p, 20)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Shutdown(ctx)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Shutdown took %s with a 100ms context", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the context's deadline", err)
	}
	// The batch being exported failed, the rest was dropped at shutdown.
	q, f, s := d.get()
	if q != 0 || f+s != 20 || f != 5 {
		t.Errorf("drops: queue_full %d export_failed %d shutdown %d, want 0, 5, 15", q, f, s)
	}
	endSpans(p, 3)
	if _, _, s2 := d.get(); s2 != s+3 {
		t.Errorf("spans ended after Shutdown: shutdown drops %d, want %d", s2, s+3)
	}
	if p.ForceFlush(context.Background()) != nil {
		t.Error("ForceFlush after Shutdown failed")
	}
}

func TestProcessorExportsOnDelay(t *testing.T) {
	d := newDropCounts(t)
	exp := &fakeExporter{}
	p := newProcessor(exp, processorOptions{queueSize: 100, batchSize: 50, delay: 20 * time.Millisecond, timeout: time.Second}, d.drops, nil)
	defer p.Shutdown(context.Background())
	endSpans(p, 3)
	deadline := time.Now().Add(5 * time.Second)
	for exp.exported.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := exp.exported.Load(); got != 3 {
		t.Errorf("a partial batch was not exported after the delay: %d of 3", got)
	}
}

func TestProcessorDrainWaitsForSpansInFlight(t *testing.T) {
	d := newDropCounts(t)
	p := newProcessor(&fakeExporter{}, processorOptions{queueSize: 10, batchSize: 10, delay: time.Hour, timeout: time.Second}, d.drops, nil)
	defer p.Shutdown(context.Background())
	tr := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p)).Tracer("test")
	_, a := tr.Start(context.Background(), "a")
	_, b := tr.Start(context.Background(), "b")

	drained := make(chan struct{})
	go func() { p.drain(context.Background()); close(drained) }()
	a.End()
	select {
	case <-drained:
		t.Fatal("drain returned with a span in flight")
	case <-time.After(50 * time.Millisecond):
	}
	b.End()
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not return once every span had ended")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, c := tr.Start(context.Background(), "c")
	defer c.End()
	p.drain(ctx) // returns at the deadline with c in flight
}
