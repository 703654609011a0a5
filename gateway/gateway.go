package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/gateway/internal/canonpath"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/tracing"
)

// Options are what a Gateway is built with besides its Config. The zero
// value works: every field's comment gives its default.
type Options struct {
	// Registerer receives the gateway's metrics. Default: a new
	// prometheus.Registry (never the global one).
	Registerer prometheus.Registerer
	// Gatherer is what the admin listener's /metrics serves. Default: the
	// Registerer, when it is also a Gatherer (a *prometheus.Registry is).
	Gatherer prometheus.Gatherer
	// Logger receives the access log and the gateway's own messages.
	// Default: JSON lines on stdout.
	Logger *zerolog.Logger
	// Plugins are the plugins routes may name. Default: none;
	// cmd/phasegate passes plugins.Builtins().
	Plugins *pluginsdk.Registry
	// Transport carries upstream requests. Default: a shared keep-alive
	// transport (one per Gateway).
	Transport http.RoundTripper
	// Version is the service.version of the gateway's spans ("" leaves it
	// out).
	Version string
}

// defaultPlugins is the registry used when none is given: empty, since the
// gateway knows no plugin of its own (the package's tests set the
// built-ins).
var defaultPlugins = pluginsdk.NewRegistry

// Gateway serves a Config. It is an http.Handler.
type Gateway struct {
	state atomic.Pointer[state]
	opts  Options
	deps  deps

	mu       sync.Mutex // guards the servers below
	data     *http.Server
	admin    *http.Server
	dataAddr net.Addr
	adminAdr net.Addr
	serveErr chan error

	released atomic.Bool // Shutdown gave back the current config's hold

	// traces is the tracing: block's provider, swapped by Reload and
	// flushed by Shutdown (docs/tracing.md).
	traces *tracing.Provider
}

// errShutDown answers a request handed to a gateway after its Shutdown.
var errShutDown = openai.ErrorBody("the gateway is shut down", "service_unavailable", http.StatusServiceUnavailable)

// New builds a gateway serving cfg (from LoadConfig). It starts no
// listener: use it as an http.Handler, or call Start.
func New(cfg *Config, opts Options) (*Gateway, error) {
	if cfg == nil {
		return nil, errors.New("gateway: nil config")
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Gatherer == nil {
		if g, ok := opts.Registerer.(prometheus.Gatherer); ok {
			opts.Gatherer = g
		} else {
			opts.Gatherer = prometheus.NewRegistry()
		}
	}
	if opts.Logger == nil {
		l := zerolog.New(os.Stdout).With().Timestamp().Logger()
		opts.Logger = &l
	}
	if opts.Plugins == nil {
		opts.Plugins = defaultPlugins()
	}
	if opts.Transport == nil {
		opts.Transport = forward.NewTransport()
	}
	m, err := metrics.New(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	tp, err := tracing.New(cfg.Tracing, tracing.Options{
		Registerer:   opts.Registerer,
		Version:      opts.Version,
		Logger:       *opts.Logger,
		DrainTimeout: cfg.ShutdownTimeout,
	})
	if err != nil {
		return nil, err
	}
	g := &Gateway{opts: opts, traces: tp, deps: deps{
		metrics:    m,
		registerer: opts.Registerer,
		log:        *opts.Logger,
		transport:  opts.Transport,
		shared:     pluginsdk.NewShared(),
		traces:     tp,
	}}
	st, err := build(cfg, g.deps)
	if err != nil {
		_ = tp.Shutdown(context.Background())
		return nil, err
	}
	g.state.Store(st)
	m.SetMaxModelsPerRoute(cfg.Metrics.MaxModelsPerRoute)
	return g, nil
}

// Validate builds every plugin of cfg against a scratch registry without
// serving anything: what `phasegate validate` runs after LoadConfig.
func Validate(cfg *Config, plugins *pluginsdk.Registry) error {
	l := zerolog.Nop()
	g, err := New(cfg, Options{Plugins: plugins, Logger: &l, Transport: http.DefaultTransport})
	if err != nil {
		return err
	}
	g.state.Load().release(l)
	return g.traces.Shutdown(context.Background())
}

// Config returns the config being served.
func (g *Gateway) Config() *Config { return g.state.Load().cfg }

// Reload swaps in cfg. Requests in flight finish on the config they started
// with; new requests see cfg. The old config's plugins that implement
// io.Closer are closed once its last request has ended. If cfg cannot be
// built, nothing changes and the error says why. Listener addresses are
// not changed by a reload.
func (g *Gateway) Reload(cfg *Config) error {
	st, err := build(cfg, g.deps)
	if err != nil {
		return err
	}
	// A changed tracing: block swaps the exporter; the replaced one
	// flushes in the background, waiting for its spans up to the new
	// shutdown_timeout.
	g.traces.SetDrainTimeout(cfg.ShutdownTimeout)
	if err := g.traces.Reload(cfg.Tracing); err != nil {
		st.release(g.deps.log)
		return err
	}
	old := g.state.Swap(st)
	// The old plugins close once the last request that started on them
	// has ended.
	old.release(g.deps.log)
	g.deps.metrics.SetMaxModelsPerRoute(cfg.Metrics.MaxModelsPerRoute)
	if old.cfg.Listen != cfg.Listen || old.cfg.Admin.Listen != cfg.Admin.Listen {
		g.deps.log.Warn().Msg("reload: listen addresses do not change until a restart")
	}
	if old.client.HeaderTimeout != st.client.HeaderTimeout || old.client.IdleTimeout != st.client.IdleTimeout {
		g.deps.log.Warn().Msg("reload: client.header_timeout and client.idle_timeout do not change until a restart")
	}
	return nil
}

// ServeHTTP routes r and runs it through its route's chain, with the
// client's body and send timeouts on its connection. A response cut short
// panics with http.ErrAbortHandler (see phases.Chain.ServeHTTP).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := g.state.Load()
	for !st.acquire() {
		next := g.state.Load()
		if next == st {
			// Retired by Shutdown, not replaced by a reload: its plugins
			// are closed, so nothing can serve the request.
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(errShutDown)
			return
		}
		st = next // retired by a reload between the load and the hold
	}
	defer st.release(g.deps.log)
	chain := st.notFound
	// A path that cannot be made canonical, or that no route takes, goes to
	// notFound, which answers 400, 404 or 405.
	if p, err := canonpath.FromURL(r.URL); err == nil {
		rt, _ := st.router.match(r.Method, r.Host, p.Route)
		switch {
		case rt != nil && p.EncodedSlash && !rt.allowEncodedSlashes:
			chain = rt.badPath
			// Logged as sent: decoded, /a%2Fb would read as /a/b.
			r.URL.Path, r.URL.RawPath = r.URL.EscapedPath(), ""
		default:
			if rt != nil {
				chain = rt.chain
			}
			// The router and the upstream see the same path.
			r.URL.Path, r.URL.RawPath = p.Path, p.RawPath
		}
	}
	chain.ServeHTTP(w, r)
}

// Metrics returns the gateway's metric set.
func (g *Gateway) Metrics() *metrics.Set { return g.deps.metrics }

// Start listens on the config's data-plane and admin addresses and serves
// in the background; it does not start the mock LLM (cmd/phasegate does). Use Addr and
// AdminAddr to learn the addresses when the config asked for port 0.
func (g *Gateway) Start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.data != nil {
		return errors.New("gateway: already started")
	}
	cfg := g.Config()
	dl, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	al, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		_ = dl.Close()
		return fmt.Errorf("admin listen: %w", err)
	}
	g.dataAddr, g.adminAdr = dl.Addr(), al.Addr()
	client := g.state.Load().client
	// The body and send timeouts are set per request (ServeHTTP): net/http's
	// ReadTimeout and WriteTimeout would bound whole bodies and streams.
	g.data = &http.Server{
		Handler:           g,
		ReadHeaderTimeout: client.HeaderTimeout,
		IdleTimeout:       client.IdleTimeout,
		ErrorLog:          stdLogger(g.deps.log),
	}
	// The admin listener serves small GETs: its whole request must arrive
	// within the header timeout, its whole response go out within the send
	// timeout.
	g.admin = &http.Server{
		Handler:           g.AdminHandler(),
		ReadHeaderTimeout: client.HeaderTimeout,
		ReadTimeout:       client.HeaderTimeout,
		WriteTimeout:      client.SendTimeout,
		IdleTimeout:       client.IdleTimeout,
		ErrorLog:          stdLogger(g.deps.log),
	}
	g.serveErr = make(chan error, 2)
	for _, s := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{g.data, dl}, {g.admin, al}} {
		go func() {
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.serveErr <- err
			}
		}()
	}
	g.deps.log.Info().Str("listen", dl.Addr().String()).Str("admin", al.Addr().String()).
		Int("routes", len(cfg.Routes)).Msg("phasegate serving")
	return nil
}

// Addr is the data-plane address after Start.
func (g *Gateway) Addr() net.Addr { g.mu.Lock(); defer g.mu.Unlock(); return g.dataAddr }

// AdminAddr is the admin address after Start.
func (g *Gateway) AdminAddr() net.Addr { g.mu.Lock(); defer g.mu.Unlock(); return g.adminAdr }

// Err reports a listener that stopped serving on its own.
func (g *Gateway) Err() <-chan error { return g.serveErr }

// Shutdown stops accepting connections and waits for requests in flight to
// finish until ctx is done; then it closes whatever is left. The admin
// listener stops after the data plane has drained. io.Closer plugins are
// closed when the last request running on them ends, drained or not.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	data, admin := g.data, g.admin
	g.mu.Unlock()
	if data == nil {
		return g.traces.Shutdown(ctx)
	}
	err := data.Shutdown(ctx)
	if err != nil {
		_ = data.Close()
	}
	_ = admin.Close()
	if t, ok := g.opts.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
	if g.released.CompareAndSwap(false, true) {
		// The current plugins close once the last request running on them
		// has ended, which after a drain that ran out of time is a request
		// it gave up on. Only once: a second Shutdown must not give back a
		// hold it does not have.
		g.state.Load().release(g.deps.log)
	}
	// The spans of the requests above are queued: flush them within what
	// is left of ctx; what does not make it is counted as dropped.
	if terr := g.traces.Shutdown(ctx); terr != nil {
		g.deps.log.Warn().Err(terr).Msg("tracing: spans not exported before shutdown")
	}
	return err
}
