package tracing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Reasons a span is dropped: the values of the reason label of
// phasegate_tracing_dropped_spans_total.
const (
	// DropQueueFull: the span ended while its provider's queue was full.
	DropQueueFull = "queue_full"
	// DropExportFailed: the export carrying the span failed or timed out.
	DropExportFailed = "export_failed"
	// DropShutdown: the span ended after its provider was shut down or
	// retired, or was still queued when the shutdown's context ended.
	DropShutdown = "shutdown"
)

// DroppedSpansMetric is the name of the counter of spans lost to the
// exporter: a full queue, a failed or timed-out export, or a shutdown.
const DroppedSpansMetric = "phasegate_tracing_dropped_spans_total"

// drops are the dropped-spans counters of each reason.
type drops struct {
	queueFull, exportFailed, shutdown prometheus.Counter
}

// newDrops creates the dropped-spans counter, with a series at 0 for each
// reason, and registers it, or reuses the one already registered.
func newDrops(reg prometheus.Registerer) (drops, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: DroppedSpansMetric,
		Help: "Spans ended but never exported, by reason: queue_full, export_failed, shutdown.",
	}, []string{"reason"})
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			var are prometheus.AlreadyRegisteredError
			existing, ok := (*prometheus.CounterVec)(nil), false
			if errors.As(err, &are) {
				existing, ok = are.ExistingCollector.(*prometheus.CounterVec)
			}
			if !ok {
				return drops{}, fmt.Errorf("tracing: registering %s: %w", DroppedSpansMetric, err)
			}
			vec = existing
		}
	}
	return drops{
		queueFull:    vec.WithLabelValues(DropQueueFull),
		exportFailed: vec.WithLabelValues(DropExportFailed),
		shutdown:     vec.WithLabelValues(DropShutdown),
	}, nil
}

// errorReportInterval bounds how often export failures are reported: a
// collector that stays down must not flood the log.
const errorReportInterval = 10 * time.Second

// processor is a span processor with a bounded queue, exporting batches
// from one goroutine. OnEnd never blocks: a span that does not fit in the
// queue is dropped and counted, so a slow or dead collector costs requests
// nothing. The queue holds every span that is ended and not yet exported,
// the batch being exported included, so memory is bounded by the queue's
// size times a span's size.
type processor struct {
	exp       sdktrace.SpanExporter
	timeout   time.Duration // bounds each export
	batchSize int
	delay     time.Duration // longest wait before a partial batch is exported
	drops     drops
	report    func(error) // export failures, at most once per errorReportInterval

	mu     sync.Mutex
	queue  []sdktrace.ReadOnlySpan // a ring of fixed size
	head   int                     // index of the oldest span
	n      int                     // spans in the ring
	closed bool                    // Shutdown was called: OnEnd drops

	kick    chan struct{} // a full batch is waiting (capacity 1)
	flushes chan flushReq
	stop    chan struct{} // closed by Shutdown, after stopCtx is set
	stopCtx context.Context
	done    chan struct{} // closed when the worker has exited

	// base is the context of regular exports, cancelled when a shutdown's
	// context ends so that Shutdown returns within its context.
	base       context.Context
	cancelBase context.CancelFunc

	// active counts spans started and not yet ended, so that a retired
	// provider can wait for the spans in flight before shutting down.
	active   atomic.Int64
	retiring atomic.Bool
	idle     chan struct{} // signalled when active reaches 0 while retiring

	batch        []sdktrace.ReadOnlySpan // the batch being exported; worker only
	lastReport   time.Time               // worker only
	failedSince  int                     // failed exports since the last report; worker only
	shutdownOnce sync.Once
	shutdownErr  error
	stopErr      error // what the worker lost while draining at stop; read after done
}

type flushReq struct {
	ctx  context.Context
	done chan error
}

// processorOptions size a processor.
type processorOptions struct {
	queueSize, batchSize int
	delay, timeout       time.Duration
}

func newProcessor(exp sdktrace.SpanExporter, o processorOptions, d drops, report func(error)) *processor {
	base, cancel := context.WithCancel(context.Background())
	p := &processor{
		exp:        exp,
		timeout:    o.timeout,
		batchSize:  min(o.batchSize, o.queueSize),
		delay:      o.delay,
		drops:      d,
		report:     report,
		queue:      make([]sdktrace.ReadOnlySpan, o.queueSize),
		kick:       make(chan struct{}, 1),
		flushes:    make(chan flushReq),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		base:       base,
		cancelBase: cancel,
		idle:       make(chan struct{}, 1),
	}
	go p.run()
	return p
}

var _ sdktrace.SpanProcessor = (*processor)(nil)

// OnStart counts the span as in flight.
func (p *processor) OnStart(context.Context, sdktrace.ReadWriteSpan) { p.active.Add(1) }

// OnEnd queues a sampled span for export, or drops and counts it when the
// queue is full or the processor is shut down. It never blocks on I/O.
func (p *processor) OnEnd(s sdktrace.ReadOnlySpan) {
	// The span stops counting as in flight only once it is queued: a
	// retiring provider must not shut down between the two.
	defer p.ended()
	if !s.SpanContext().IsSampled() {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.drops.shutdown.Inc()
		return
	}
	if p.n == len(p.queue) {
		p.mu.Unlock()
		p.drops.queueFull.Inc()
		return
	}
	p.queue[(p.head+p.n)%len(p.queue)] = s
	p.n++
	full := p.n >= p.batchSize
	p.mu.Unlock()
	if full {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// ended counts a span out of flight and wakes a drain waiting for the last.
func (p *processor) ended() {
	if p.active.Add(-1) == 0 && p.retiring.Load() {
		select {
		case p.idle <- struct{}{}:
		default:
		}
	}
}

// ForceFlush exports every span queued when it is called, within ctx.
func (p *processor) ForceFlush(ctx context.Context) error {
	req := flushReq{ctx: ctx, done: make(chan error, 1)}
	select {
	case p.flushes <- req:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops accepting spans, exports those queued within ctx (each
// export also bounded by the exporter's timeout), drops and counts what
// could not be exported, and shuts the exporter down. It returns once the
// worker has exited, promptly after ctx ends. Later calls return the first
// call's result.
func (p *processor) Shutdown(ctx context.Context) error {
	p.shutdownOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.stopCtx = ctx
		stopAfter := context.AfterFunc(ctx, p.cancelBase)
		close(p.stop)
		<-p.done
		stopAfter()
		p.cancelBase()
		err := errors.Join(p.stopErr, p.exp.Shutdown(ctx))
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = errors.Join(ctx.Err(), err)
		}
		p.shutdownErr = err
	})
	return p.shutdownErr
}

// run is the worker: it exports a batch when one is full or when delay
// has passed since the last export, serves flushes, and drains the queue
// on shutdown.
func (p *processor) run() {
	defer close(p.done)
	timer := time.NewTimer(p.delay)
	defer timer.Stop()
	for {
		select {
		case <-p.kick:
			p.exportWhile(p.base, func(n int) bool { return n >= p.batchSize })
			continue
		case <-timer.C:
			_ = p.exportQueued(p.base) // an error here is the shutdown's, handled below
		case req := <-p.flushes:
			// A flush reports only its context's end: failed exports
			// are counted and reported as they happen.
			_ = p.exportQueued(req.ctx)
			req.done <- req.ctx.Err()
		case <-p.stop:
			if err := p.exportQueued(p.stopCtx); err != nil {
				p.dropQueued()
				p.stopErr = err
			}
			return
		}
		timer.Reset(p.delay)
	}
}

// exportQueued exports the spans queued now, in batches, with exports
// bounded by ctx. It returns ctx's error if ctx ended first, else the
// first failed export's: an exporter may give up on its own deadline a
// moment before ctx's timer fires.
func (p *processor) exportQueued(ctx context.Context) error {
	p.mu.Lock()
	left := p.n
	p.mu.Unlock()
	var failed error
	for left > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, err := p.exportBatch(ctx)
		left -= k
		if failed == nil {
			failed = err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return failed
}

// exportWhile exports batches while more(spans queued) holds.
func (p *processor) exportWhile(ctx context.Context, more func(int) bool) {
	for {
		p.mu.Lock()
		n := p.n
		p.mu.Unlock()
		if !more(n) || ctx.Err() != nil {
			return
		}
		_, _ = p.exportBatch(ctx) // a failure is counted and reported there
	}
}

// exportBatch exports up to batchSize of the oldest spans and removes them
// from the queue, counting them as dropped if the export failed. The spans
// stay in the queue, and count against its size, while they are exported.
func (p *processor) exportBatch(ctx context.Context) (int, error) {
	p.mu.Lock()
	k := min(p.n, p.batchSize)
	for i := range k {
		p.batch = append(p.batch, p.queue[(p.head+i)%len(p.queue)])
	}
	p.mu.Unlock()
	if k == 0 {
		return 0, nil
	}

	ectx, cancel := context.WithTimeout(ctx, p.timeout)
	err := p.exp.ExportSpans(ectx, p.batch)
	cancel()
	clear(p.batch)
	p.batch = p.batch[:0]
	if err != nil {
		err = fmt.Errorf("tracing: exporting %d spans: %w", k, err)
		p.drops.exportFailed.Add(float64(k))
		p.failed(err)
	}

	p.mu.Lock()
	for i := range k {
		p.queue[(p.head+i)%len(p.queue)] = nil
	}
	p.head = (p.head + k) % len(p.queue)
	p.n -= k
	p.mu.Unlock()
	return k, err
}

// dropQueued drops and counts every span still queued.
func (p *processor) dropQueued() {
	p.mu.Lock()
	n := p.n
	for i := range n {
		p.queue[(p.head+i)%len(p.queue)] = nil
	}
	p.head, p.n = 0, 0
	p.mu.Unlock()
	p.drops.shutdown.Add(float64(n))
}

// failed reports an export failure, or counts it for the next report when
// the last one was less than errorReportInterval ago.
func (p *processor) failed(err error) {
	if p.report == nil {
		return
	}
	now := time.Now()
	if !p.lastReport.IsZero() && now.Sub(p.lastReport) < errorReportInterval {
		p.failedSince++
		return
	}
	if p.failedSince > 0 {
		err = fmt.Errorf("%w (and %d more failed exports since the last report)", err, p.failedSince)
	}
	p.lastReport, p.failedSince = now, 0
	p.report(err)
}

// drain waits until every span started on the processor has ended, or
// until ctx ends.
func (p *processor) drain(ctx context.Context) {
	p.retiring.Store(true)
	for p.active.Load() > 0 {
		select {
		case <-p.idle:
		case <-ctx.Done():
			return
		}
	}
}
