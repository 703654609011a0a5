package gateway

import (
	"cmp"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/requestid"
	"github.com/phasegate/phasegate/yamlconf"
)

// state is one loaded config, ready to serve. A Gateway swaps whole states,
// so a request runs entirely on the state it started with.
type state struct {
	cfg      *Config
	client   ClientConfig // cfg.Client with defaults
	timeouts phases.ClientTimeouts
	router   *router
	notFound *phases.Chain
}

// deps are what building a state needs from the gateway.
type deps struct {
	metrics    *metrics.Set
	registerer prometheus.Registerer
	log        zerolog.Logger
	transport  http.RoundTripper
}

// build compiles cfg into a state: every plugin built, every route's chain
// ordered, the router sorted. Problems are positioned in cfg's file.
func build(cfg *Config, d deps) (*state, error) {
	var ps yamlconf.Problems
	client := cfg.Client.withDefaults()
	log := d.log
	if lvl, err := zerolog.ParseLevel(cfg.Log.Level); err == nil {
		log = log.Level(lvl)
	}
	routes := make([]*route, 0, len(cfg.Routes))
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		path := fmt.Sprintf("routes[%d]", i)
		env := phases.Env{
			Route:      rc.ID,
			Registerer: d.registerer,
			Metrics:    d.metrics,
			Logger:     log.With().Str("route", rc.ID).Logger(),
			Transport:  d.transport,
			Consumers:  cfg.Consumers,
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
			if _, ok := p.(phases.Upstream); ok {
				upstreams = append(upstreams, pc.name)
			}
			if pc.name == requestid.Spec.Name {
				rid = p
			}
			plugins = append(plugins, p)
		}
		if rid == nil {
			p, err := requestid.New(requestid.DefaultConfig())
			if err != nil {
				return nil, err
			}
			rid = p
			plugins = append(plugins, p)
		}
		if rc.Upstream != nil {
			up, err := forward.New(*rc.Upstream, d.transport)
			if err != nil {
				ps.Add(cfg.problem(path+".upstream", "%v", err))
			} else {
				plugins = append(plugins, up)
				upstreams = append(upstreams, "upstream")
			}
		}
		switch {
		case len(upstreams) == 0:
			ps.Add(cfg.problem(path, "%s", msgNoUpstream))
			continue
		case len(upstreams) > 1:
			ps.Add(cfg.problem(path, "route has %d upstreams (%s): keep exactly one", len(upstreams), strings.Join(upstreams, ", ")))
			continue
		}
		obs := newObserver(rc.ID, d.metrics, log, cfg.Log.AccessLogEnabled())
		opts := phases.Options{Route: rc.ID, Hooks: obs.hooks(), MaxRequestBodyBytes: cmp.Or(rc.MaxBodyBytes, client.MaxBodyBytes)}
		chain, err := phases.NewChain(opts, plugins...)
		if err != nil {
			ps.Add(cfg.problem(path, "%v", err))
			continue
		}
		badPathChain, err := phases.NewChain(phases.Options{Route: rc.ID, Hooks: obs.hooks()}, rid, badPath{}, unreachable{})
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
		cfg:      cfg,
		client:   client,
		timeouts: phases.ClientTimeouts{Body: client.BodyTimeout, Send: client.SendTimeout},
		router:   newRouter(routes),
	}
	rid, err := requestid.New(requestid.DefaultConfig())
	if err != nil {
		return nil, err
	}
	obs := newObserver("", d.metrics, log, cfg.Log.AccessLogEnabled())
	st.notFound, err = phases.NewChain(phases.Options{Hooks: obs.hooks(), MaxRequestBodyBytes: client.MaxBodyBytes}, rid, notFound{st.router}, unreachable{})
	if err != nil {
		return nil, err
	}
	return st, nil
}
