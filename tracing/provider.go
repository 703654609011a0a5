package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phasegate/phasegate/yamlconf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Defaults of Options, each overridden by its OTEL_BSP_* variable (as the
// OTel SDK's batch processor reads them) and then by the Options field.
const (
	DefaultQueueSize  = 2048            // OTEL_BSP_MAX_QUEUE_SIZE
	DefaultBatchSize  = 512             // OTEL_BSP_MAX_EXPORT_BATCH_SIZE
	DefaultBatchDelay = 5 * time.Second // OTEL_BSP_SCHEDULE_DELAY (milliseconds)
	// DefaultDrainTimeout bounds how long a provider replaced by a reload
	// waits for its spans in flight before it flushes and shuts down.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultMaxAttributeBytes bounds each attribute value unless
	// OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT or
	// OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT sets a limit: a client-supplied
	// model or path cannot make a queued span large.
	DefaultMaxAttributeBytes = 1024
)

// ScopeName is the instrumentation scope of phasegate's spans.
const ScopeName = "github.com/phasegate/phasegate"

// Options are the parts of a Provider that do not come from its Config.
// The zero value works: every field has a default.
type Options struct {
	// Registerer receives phasegate_tracing_dropped_spans_total; nil
	// keeps the counter unregistered. A counter already registered by an
	// earlier Provider on the same Registerer is reused.
	Registerer prometheus.Registerer
	// Version is the service.version resource attribute ("" leaves it out).
	Version string
	// Logger receives export failures (at most one line per 10s while a
	// collector stays down) and reload notices. The zero Logger discards.
	Logger zerolog.Logger
	// QueueSize bounds the spans ended and not yet exported, per provider
	// (default DefaultQueueSize).
	QueueSize int
	// BatchSize is the most spans one export carries (default
	// DefaultBatchSize, at most QueueSize).
	BatchSize int
	// BatchDelay is the longest a span waits in the queue before a partial
	// batch is exported (default DefaultBatchDelay).
	BatchDelay time.Duration
	// DrainTimeout bounds how long a provider replaced by Reload waits for
	// the spans started on it to end, before it flushes them and shuts
	// down (default DefaultDrainTimeout; the gateway passes its
	// shutdown_timeout).
	DrainTimeout time.Duration
}

// withDefaults fills o's zero fields from the OTEL_BSP_* variables and
// the defaults.
func (o Options) withDefaults(env lookupEnv) (Options, error) {
	bsp := func(name string, def int) (int, error) {
		v, ok := env(name)
		if !ok || v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s=%q: must be a positive integer", name, v)
		}
		return n, nil
	}
	var err error
	if o.QueueSize <= 0 {
		if o.QueueSize, err = bsp("OTEL_BSP_MAX_QUEUE_SIZE", DefaultQueueSize); err != nil {
			return o, err
		}
	}
	if o.BatchSize <= 0 {
		if o.BatchSize, err = bsp("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DefaultBatchSize); err != nil {
			return o, err
		}
	}
	o.BatchSize = min(o.BatchSize, o.QueueSize)
	if o.BatchDelay <= 0 {
		ms, err := bsp("OTEL_BSP_SCHEDULE_DELAY", int(DefaultBatchDelay/time.Millisecond))
		if err != nil {
			return o, err
		}
		o.BatchDelay = time.Duration(ms) * time.Millisecond
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	return o, nil
}

// Provider is phasegate's trace.TracerProvider: a handle on an OTel SDK
// provider that Reload can replace while tracers obtained from the handle
// keep working. A span ends on the provider it started on; a replaced
// provider waits for its spans in flight (up to Options.DrainTimeout),
// flushes them to its own collector and shuts down, in the background.
//
// Without a Config the Provider is off: Start returns the context as it is
// and a span whose methods do nothing, allocating nothing, and no
// goroutine runs. Build span options only when Enabled reports true, so
// that the off path stays free of allocations.
type Provider struct {
	embedded.TracerProvider

	cur   atomic.Pointer[generation]
	opts  Options
	drops drops
	env   lookupEnv

	mu       sync.Mutex // serialises Reload and Shutdown
	shut     bool
	retiring sync.WaitGroup
	// draining bounds every retirement's wait for its spans in flight;
	// Shutdown cancels it.
	draining     context.Context
	stopDraining context.CancelFunc
	// flushing bounds every retirement's flush; Shutdown cancels it when
	// its own context ends.
	flushing     context.Context
	stopFlushing context.CancelFunc
}

// generation is one SDK provider and its processor, or off (both nil).
type generation struct {
	cfg  *Config
	sdk  *sdktrace.TracerProvider
	proc *processor
}

var off = &generation{}

var _ trace.TracerProvider = (*Provider)(nil)

// New returns a Provider built from cfg, or an off Provider when cfg is
// nil. It fails when an OTEL_* variable it reads holds a value it cannot
// use, or when the counter cannot be registered.
func New(cfg *Config, opts Options) (*Provider, error) {
	return newProvider(cfg, opts, os.LookupEnv)
}

func newProvider(cfg *Config, opts Options, env lookupEnv) (*Provider, error) {
	o, err := opts.withDefaults(env)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	d, err := newDrops(o.Registerer)
	if err != nil {
		return nil, err
	}
	p := &Provider{opts: o, drops: d, env: env}
	g, err := p.build(cfg)
	if err != nil {
		return nil, err
	}
	p.draining, p.stopDraining = context.WithCancel(context.Background())
	p.flushing, p.stopFlushing = context.WithCancel(context.Background())
	p.cur.Store(g)
	return p, nil
}

// build makes the generation for cfg: an exporter, a processor and an SDK
// provider. Nothing connects yet: the exporter dials on its first export.
func (p *Provider) build(cfg *Config) (*generation, error) {
	if cfg == nil {
		return off, nil
	}
	if err := yamlconf.JoinFieldErrors("tracing", cfg.Validate()); err != nil {
		return nil, err
	}
	s, err := cfg.settings(p.env)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	exp, err := newExporter(s)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := newResource(cfg.ServiceName, p.opts.Version)
	if err != nil {
		_ = exp.Shutdown(context.Background())
		return nil, fmt.Errorf("tracing: %w", err)
	}
	log := p.opts.Logger
	proc := newProcessor(exp, processorOptions{
		queueSize: p.opts.QueueSize,
		batchSize: p.opts.BatchSize,
		delay:     p.opts.BatchDelay,
		timeout:   s.timeout,
	}, p.drops, func(err error) {
		log.Warn().Err(err).Str("endpoint", s.url).Msg("tracing: spans dropped: the collector did not take them")
	})
	limits := sdktrace.NewSpanLimits()
	if limits.AttributeValueLengthLimit < 0 {
		limits.AttributeValueLengthLimit = DefaultMaxAttributeBytes
	}
	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(proc),
		sdktrace.WithRawSpanLimits(limits),
	}
	if smp := cfg.Sampler.sampler(); smp != nil {
		tpOpts = append(tpOpts, sdktrace.WithSampler(smp))
	}
	return &generation{cfg: cfg, sdk: sdktrace.NewTracerProvider(tpOpts...), proc: proc}, nil
}

// sampler is the sampler the config asks for, or nil when it sets neither
// field (the SDK then reads OTEL_TRACES_SAMPLER, else samples every trace,
// parent-based).
func (s SamplerConfig) sampler() sdktrace.Sampler {
	if s.Ratio == nil && s.ParentBased == nil {
		return nil
	}
	ratio := DefaultRatio
	if s.Ratio != nil {
		ratio = *s.Ratio
	}
	smp := sdktrace.TraceIDRatioBased(ratio)
	if s.ParentBased == nil || *s.ParentBased {
		smp = sdktrace.ParentBased(smp)
	}
	return smp
}

// reconnectBackoff bounds the gRPC exporter's wait between connection
// attempts, so that a collector that comes back is reached within seconds
// (gRPC's own backoff grows to two minutes).
var reconnectBackoff = grpc.ConnectParams{Backoff: backoff.Config{
	BaseDelay: 500 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second,
}}

// newExporter makes the OTLP exporter for s. The options set here win over
// the environment; the SDK reads the other OTEL_EXPORTER_OTLP_* variables.
func newExporter(s exporterSettings) (sdktrace.SpanExporter, error) {
	ctx := context.Background() // neither exporter connects in New
	switch s.protocol {
	case ProtocolHTTP:
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(s.url), otlptracehttp.WithTimeout(s.timeout)}
		if len(s.headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(s.headers))
		}
		return otlptracehttp.New(ctx, opts...)
	default:
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpointURL(s.url),
			otlptracegrpc.WithTimeout(s.timeout),
			otlptracegrpc.WithDialOption(grpc.WithConnectParams(reconnectBackoff)),
		}
		if len(s.headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(s.headers))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
}

// newResource describes this process: service.name (the config's, else
// the environment's, else phasegate), service.version, the SDK, and
// OTEL_RESOURCE_ATTRIBUTES.
func newResource(serviceName, version string) (*resource.Resource, error) {
	defaults := []attribute.KeyValue{semconv.ServiceName(DefaultServiceName)}
	if version != "" {
		defaults = append(defaults, semconv.ServiceVersion(version))
	}
	opts := []resource.Option{
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(defaults...),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	}
	if serviceName != "" {
		opts = append(opts, resource.WithAttributes(semconv.ServiceName(serviceName)))
	}
	return resource.New(context.Background(), opts...)
}

// Enabled reports whether spans are recorded now: false when tracing is
// off. Callers build span options and attributes only when it is true.
func (p *Provider) Enabled() bool { return p.cur.Load().sdk != nil }

// Tracer returns a tracer that starts spans on whichever SDK provider is
// current when Start is called.
func (p *Provider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &tracer{p: p, name: name, opts: opts}
}

// Reload makes cfg the configuration: when it differs from the current one,
// a provider is built from it and swapped in, and the replaced one is
// retired in the background (see Provider). A nil cfg turns tracing off.
// On error the current provider stays.
func (p *Provider) Reload(cfg *Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return errors.New("tracing: Reload after Shutdown")
	}
	old := p.cur.Load()
	if reflect.DeepEqual(old.cfg, cfg) {
		return nil
	}
	g, err := p.build(cfg)
	if err != nil {
		return err
	}
	p.cur.Store(g)
	if old.proc != nil {
		p.retiring.Add(1)
		drain := p.opts.DrainTimeout
		go func() {
			defer p.retiring.Done()
			p.retire(old, drain)
		}()
	}
	p.opts.Logger.Info().Bool("enabled", g.sdk != nil).Msg("tracing: configuration swapped")
	return nil
}

// SetDrainTimeout changes Options.DrainTimeout for the providers the next
// Reloads replace (the gateway passes a reloaded shutdown_timeout); d <= 0
// means DefaultDrainTimeout.
func (p *Provider) SetDrainTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultDrainTimeout
	}
	p.mu.Lock()
	p.opts.DrainTimeout = d
	p.mu.Unlock()
}

// retire waits for the spans in flight on g, up to drain or until
// Shutdown, then flushes and shuts g down within its export timeout.
func (p *Provider) retire(g *generation, drain time.Duration) {
	ctx, cancel := context.WithTimeout(p.draining, drain)
	g.proc.drain(ctx)
	cancel()
	fctx, fcancel := context.WithTimeout(p.flushing, g.proc.timeout)
	defer fcancel()
	if err := g.proc.Shutdown(fctx); err != nil {
		p.opts.Logger.Warn().Err(err).Msg("tracing: the replaced exporter did not shut down cleanly")
	}
}

// ForceFlush exports the spans ended so far on the current provider,
// within ctx.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if g := p.cur.Load(); g.proc != nil {
		return g.proc.ForceFlush(ctx)
	}
	return nil
}

// Shutdown turns tracing off, then flushes what was queued, on the current
// provider and on those being retired, and shuts their exporters down,
// all within ctx: what is not exported when ctx ends is dropped and
// counted. Spans that end later are dropped and counted too.
func (p *Provider) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		return nil
	}
	p.shut = true
	g := p.cur.Swap(off)
	p.mu.Unlock()

	p.stopDraining()
	stop := context.AfterFunc(ctx, p.stopFlushing)
	defer stop()
	var err error
	if g.proc != nil {
		err = g.proc.Shutdown(ctx)
	}
	p.retiring.Wait() // prompt once ctx ends: stopFlushing ends their flushes
	p.stopFlushing()
	return err
}

// tracer starts spans on the provider current at each Start.
type tracer struct {
	embedded.Tracer
	p    *Provider
	name string
	opts []trace.TracerOption

	cached atomic.Pointer[tracerOf] // the SDK tracer of the last generation used
}

type tracerOf struct {
	g  *generation
	tr trace.Tracer
}

// noopSpan is what Start returns with tracing off: a span whose methods do
// nothing and that is not recording.
var noopSpan = trace.SpanFromContext(context.Background())

// Start starts a span on the current provider. With tracing off it returns
// ctx unchanged and a span that does nothing, without allocating.
func (t *tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	g := t.p.cur.Load()
	if g.sdk == nil {
		return ctx, noopSpan
	}
	c := t.cached.Load()
	if c == nil || c.g != g {
		topts := append([]trace.TracerOption{trace.WithInstrumentationVersion(t.p.opts.Version), trace.WithSchemaURL(semconv.SchemaURL)}, t.opts...)
		c = &tracerOf{g: g, tr: g.sdk.Tracer(t.name, topts...)}
		t.cached.Store(c)
	}
	return c.tr.Start(ctx, name, opts...)
}

// Propagator is the W3C trace context and baggage propagator: traceparent
// and tracestate continue a client's trace, and an upstream request
// carries the attempt span's context.
func Propagator() propagation.TextMapPropagator { return propagator }

var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
