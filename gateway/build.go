package gateway

import (
	"cmp"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/yamlconf"
)

// state is one loaded config, ready to serve. A Gateway swaps whole states,
// so a request runs entirely on the state it started with.
type state struct {
	cfg      *Config
	client   ClientConfig // cfg.Client with defaults
	router   *router
	notFound *phases.Chain
	// plugins are every plugin built for the state, closed (io.Closer)
	// when the state is retired and its last request has ended.
	plugins []phases.Plugin
	// refs counts the requests running on the state, plus one while it is
	// the gateway's current state.
	refs atomic.Int64
}

// deps are what building a state needs from the gateway.
type deps struct {
	metrics    *metrics.Set
	registerer prometheus.Registerer
	log        zerolog.Logger
	transport  http.RoundTripper
	shared     *pluginsdk.Shared
	traces     tracerSource // request spans; nil: none
}

// build compiles cfg into a state: every plugin built, every route's chain
// ordered, the router sorted. Problems are positioned in cfg's file.
func build(cfg *Config, d deps) (*state, error) {
	var ps yamlconf.Problems
	client := cfg.Client.withDefaults()
	var built []phases.Plugin // every plugin built, closed if the state is not used
	done := false
	defer func() {
		if !done {
			_ = pluginsdk.ClosePlugins(built)
		}
	}()
	newRequestID := func(env pluginsdk.Env) (phases.Plugin, bool, error) {
		spec, ok := cfg.registry().Lookup(requestIDName)
		if !ok {
			return nil, false, nil
		}
		p, err := spec.New(nil, env)
		if err == nil {
			built = append(built, p)
		}
		return p, true, err
	}
	log := d.log
	if lvl, err := zerolog.ParseLevel(cfg.Log.Level); err == nil {
		log = log.Level(lvl)
	}
	routes := make([]*route, 0, len(cfg.Routes))
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		path := fmt.Sprintf("routes[%d]", i)
		env := pluginsdk.Env{
			Route:      rc.ID,
			Registerer: d.registerer,
			Metrics:    d.metrics,
			Logger:     log.With().Str("route", rc.ID).Logger(),
			Transport:  d.transport,
			Consumers:  cfg.Consumers,
			Shared:     d.shared,
		}
		var plugins []phases.Plugin
		var upstreams []string
		var rid phases.Plugin // the route's request-id, also run by its badPath chain
		for _, pc := range rc.plugins {
			p, err := pc.spec.New(pc.cfg, env)
			if err != nil {
				ps.Add(cfg.problem(pc.path, "%v", err))
				continue
			}
			built = append(built, p)
			if _, ok := p.(phases.Upstream); ok {
				upstreams = append(upstreams, pc.name)
			}
			if pc.name == requestIDName {
				rid = p
			}
			plugins = append(plugins, p)
		}
		if rid == nil {
			p, ok, err := newRequestID(env)
			if err != nil {
				return nil, err
			}
			if ok {
				rid = p
				plugins = append(plugins, p)
			}
		}
		if rc.Upstream != nil {
			up, err := forward.New(*rc.Upstream, d.transport)
			if err != nil {
				ps.Add(cfg.problem(path+".upstream", "%v", err))
			} else {
				plugins = append(plugins, up)
				upstreams = append(upstreams, upstreamBlock)
			}
		}
		plugins = withDoor(plugins)
		if msg := upstreamProblem(upstreams); msg != "" {
			ps.Add(cfg.problem(path, "%s", msg))
			continue
		}
		obs := newObserver(rc.ID, d.metrics, log, cfg.Log.AccessLogEnabled(), d.traces)
		obs.fielders = logFielders(plugins)
		opts := phases.Options{Route: rc.ID, Hooks: obs.hooks(), MaxRequestBodyBytes: cmp.Or(rc.MaxBodyBytes, client.MaxBodyBytes),
			BodyTimeout: client.BodyTimeout, SendTimeout: client.SendTimeout}
		chain, err := phases.NewChain(opts, plugins...)
		if err != nil {
			ps.Add(cfg.problem(path, "%v", err))
			continue
		}
		badPathChain, err := phases.NewChain(phases.Options{Route: rc.ID, Hooks: obs.hooks(),
			BodyTimeout: client.BodyTimeout, SendTimeout: client.SendTimeout}, withRequestID(rid, badPath{}, unreachable{})...)
		if err != nil {
			return nil, err
		}
		rt := &route{id: rc.ID, methods: rc.Methods, order: i, chain: chain,
			allowEncodedSlashes: rc.AllowEncodedSlashes, badPath: badPathChain}
		if p, ok := strings.CutSuffix(rc.URI, "*"); ok {
			rt.prefix = p
		} else {
			rt.exact = rc.URI
		}
		for _, h := range rc.Hosts {
			rt.hosts = append(rt.hosts, strings.ToLower(h))
		}
		routes = append(routes, rt)
	}
	if len(ps) > 0 {
		ps.Sort()
		return nil, ps
	}
	st := &state{
		cfg:     cfg,
		client:  client,
		router:  newRouter(routes),
		plugins: built,
	}
	st.refs.Store(1) // the gateway's own, until a reload or shutdown
	rid, _, err := newRequestID(pluginsdk.Env{Registerer: d.registerer, Metrics: d.metrics, Logger: log,
		Transport: d.transport, Consumers: cfg.Consumers, Shared: d.shared})
	if err != nil {
		return nil, err
	}
	obs := newObserver("", d.metrics, log, cfg.Log.AccessLogEnabled(), d.traces)
	st.notFound, err = phases.NewChain(phases.Options{Hooks: obs.hooks(), MaxRequestBodyBytes: client.MaxBodyBytes,
		BodyTimeout: client.BodyTimeout, SendTimeout: client.SendTimeout}, withRequestID(rid, notFound{st.router}, unreachable{})...)
	if err != nil {
		return nil, err
	}
	st.plugins, done = built, true
	return st, nil
}

// requestIDName is the plugin every route runs, configured or not, so that
// every request has an id (docs/configuration.md).
const requestIDName = "request-id"

// withRequestID prepends rid, when there is one, to ps.
func withRequestID(rid phases.Plugin, ps ...phases.Plugin) []phases.Plugin {
	if rid == nil {
		return ps
	}
	return append([]phases.Plugin{rid}, ps...)
}

// registry is the registry c was loaded with.
func (c *Config) registry() *pluginsdk.Registry {
	if c.reg == nil {
		return pluginsdk.NewRegistry()
	}
	return c.reg
}

// acquire takes a hold on st for one request, unless st has been retired
// and has drained already.
func (st *state) acquire() bool {
	for {
		n := st.refs.Load()
		if n <= 0 {
			return false
		}
		if st.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release gives back a hold on st. The last one, after st was retired by a
// reload or shutdown, closes st's plugins: no request runs on them any
// more.
func (st *state) release(log zerolog.Logger) {
	if st.refs.Add(-1) == 0 {
		if err := pluginsdk.ClosePlugins(st.plugins); err != nil {
			log.Error().Err(err).Msg("closing the plugins of a retired config")
		}
	}
}
