// Package aiproxymulti is phasegate's ai-proxy-multi plugin: the upstream of
// an AI route balanced over several OpenAI or OpenAI-compatible instances,
// with fallback from a failing instance to the next.
//
//	plugins:
//	  ai-proxy-multi:
//	    fallback_on: [http_5xx, http_429, network]   # default: all three
//	    fallback_http_statuses: [404]                # more statuses, default none
//	    max_retries: 1                               # default: instances − 1
//	    max_request_body_bytes: 16777216             # default 0: the route's limit (8 MiB unless set)
//	    instances:
//	      - name: primary
//	        provider: openai-compatible
//	        endpoint: http://127.0.0.1:18080/v1/chat/completions
//	        weight: 4                                # default 1
//	        priority: 1                              # default 0; higher first
//	        options: { model: gpt-4o-mini }
//	      - name: backup
//	        provider: openai
//	        auth: { header: { Authorization: "Bearer ${OPENAI_API_KEY}" } }
//
// Each instance takes ai-proxy's upstream fields (provider, endpoint, auth,
// options, timeout, max_response_bytes, max_stream_duration), with the
// same meaning and defaults; see package aiproxy.
//
// # Selection and fallback
//
// Instances are grouped by priority. Each attempt picks, by smooth weighted
// round robin (nginx's algorithm), an instance of the highest-priority
// group that still has instances this request has not tried. When an
// attempt fails in a way fallback_on (or fallback_http_statuses) names,
// the attempt is ended (its in-flight gauge series falls at once) and the
// next instance is tried, up to max_retries more attempts. network covers
// unreachable instances, responses broken before they were complete, and
// timeouts. Each attempt's body is rewritten afresh from the client's with
// that instance's options, so options never leak from one instance to
// another.
//
// Fallback happens only in the upstream phase, before anything is sent to
// the client: a stream that breaks after it started is ended as ai-proxy
// ends it. A failure fallback_on does not name is answered at once: an
// error status with its body as is, an unreachable instance with 502, a
// timeout with 504. When every attempt failed, the client gets the last
// status and body an instance answered, as they were, or, if none
// answered, 504 when the last failure was a timeout and 502 otherwise.
//
// Access validation, LLMInfo, streaming, caps and metrics are ai-proxy's
// (see package aiproxy); LLMInfo.Instance, Model and Attempts, and the
// instance and model labels, are those of the attempt whose response the
// client gets. During access, before any attempt, LLMInfo.Model is the
// model the first instance of the highest priority would send.
package aiproxymulti

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/phasegate/phasegate/forward/wrr"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Name is the plugin's name in routes' plugins mappings and in logs.
const Name = "ai-proxy-multi"

// priority is ai-proxy's: before ai-prompt-guard (1070) and
// ai-content-moderation (1050).
const priority = 1100

// Spec declares ai-proxy-multi to the gateway's registry.
var Spec = pluginsdk.Typed(pluginsdk.Spec{Name: Name, Upstream: true}, DefaultConfig,
	func(c Config, env pluginsdk.Env) (phases.Plugin, error) { return New(c, env) })

// Plugin is the ai-proxy-multi plugin. It is safe for concurrent use: its
// only mutable state is the balancer's, behind a mutex; per-request state
// lives in the request's values and in Upstream's locals.
type Plugin struct {
	proxy      *provider.Proxy
	instances  []*provider.Instance
	balancer   *balancer
	maxTries   int // 1 + max_retries
	on5xx      bool
	on429      bool
	onNetwork  bool
	statuses   []int
	allModel   bool // every instance sets options.model
	firstIndex int  // the first instance of the highest priority
	maxBody    int64
}

// New builds the plugin from cfg, which must be valid (see
// Config.Validate). It records metrics into env.Metrics (none when nil)
// under the route env.Route, calls the instances through env.Transport
// (http.DefaultTransport when nil) and logs fallbacks to env.Logger.
func New(cfg Config, env pluginsdk.Env) (*Plugin, error) {
	if err := pluginsdk.ConfigError(Name, cfg.Validate()); err != nil {
		return nil, err
	}
	p := &Plugin{
		on5xx:     cfg.fallbackOn(FallbackHTTP5xx),
		on429:     cfg.fallbackOn(FallbackHTTP429),
		onNetwork: cfg.fallbackOn(FallbackNetwork),
		statuses:  slices.Clone(cfg.FallbackHTTPStatuses),
		allModel:  true,
	}
	weights := make([]int, len(cfg.Instances))
	priorities := make([]int, len(cfg.Instances))
	for i := range cfg.Instances {
		ic := &cfg.Instances[i]
		in, err := provider.NewInstance(ic.llm(), env.Transport)
		if err != nil {
			return nil, fmt.Errorf("%s: instances[%d]: %w", Name, i, err)
		}
		p.instances = append(p.instances, in)
		p.allModel = p.allModel && in.SetsModel()
		weights[i] = ic.Weight
		if weights[i] == 0 {
			weights[i] = DefaultWeight
		}
		priorities[i] = ic.Priority
	}
	p.balancer = newBalancer(weights, priorities)
	p.firstIndex = p.balancer.groups[0][0]
	retries := len(cfg.Instances) - 1
	if cfg.MaxRetries != nil {
		retries = *cfg.MaxRetries
	}
	p.maxTries = 1 + retries
	p.maxBody = cfg.MaxRequestBodyBytes
	p.proxy = &provider.Proxy{
		Route:          env.Route,
		Metrics:        env.Metrics,
		Logger:         env.Logger,
		Model:          p.model,
		Instance:       "",
		ClientProtocol: cfg.ClientProtocol,
	}
	return p, nil
}

// model is the model recorded during access: the one the first instance
// of the highest priority would send, or "" (a 400) when the client sets
// none and some instance does not set one either.
func (p *Plugin) model(client string) string {
	if client == "" && !p.allModel {
		return ""
	}
	return p.instances[p.firstIndex].Model(client)
}

// Name implements phases.Plugin.
func (*Plugin) Name() string { return Name }

// Priority implements phases.Prioritized.
func (*Plugin) Priority() int { return priority }

// MaxRequestBodyBytes implements phases.BodyLimiter: max_request_body_bytes,
// or 0 for the route's limit.
func (p *Plugin) MaxRequestBodyBytes() int64 { return p.maxBody }

// EnterDoor implements pluginsdk.ClientProtocol: the gateway calls it
// before any plugin of the route runs.
func (p *Plugin) EnterDoor(r *phases.Request) { door.Enter(r, p.proxy.ClientProtocol) }

// Access implements phases.AccessHook: it validates the request and records
// its LLMInfo.
func (p *Plugin) Access(ctx context.Context, r *phases.Request) phases.Exit {
	return p.proxy.Access(r)
}

// Upstream implements phases.Upstream: attempts on the instances the
// balancer picks, falling back as configured.
func (p *Plugin) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	tried := make([]bool, len(p.instances))
	attempts := 0
	next := func() *provider.Instance {
		if attempts >= p.maxTries {
			return nil
		}
		i := p.balancer.pick(tried)
		if i < 0 {
			return nil
		}
		tried[i] = true
		attempts++
		return p.instances[i]
	}
	return p.proxy.Serve(ctx, r, next, p.eligible)
}

// eligible reports whether f is a failure to fall back from.
func (p *Plugin) eligible(f provider.Failure) bool {
	switch {
	case f.Network():
		return p.onNetwork
	case f.Status >= 500 && f.Status <= 599 && p.on5xx:
		return true
	case f.Status == http.StatusTooManyRequests && p.on429:
		return true
	}
	return slices.Contains(p.statuses, f.Status)
}

// Log implements phases.LogHook: it records the LLM metrics.
func (p *Plugin) Log(ctx context.Context, s *phases.Summary) { p.proxy.Log(s) }

// balancer is smooth weighted round robin within priority groups.
type balancer struct {
	groups [][]int // instance indexes, highest priority first
	wrr    []*wrr.Balancer
}

func newBalancer(weights, priorities []int) *balancer {
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return priorities[y] - priorities[x] })
	b := &balancer{}
	for k, i := range order {
		if k == 0 || priorities[i] != priorities[order[k-1]] {
			b.groups = append(b.groups, nil)
		}
		g := &b.groups[len(b.groups)-1]
		*g = append(*g, i)
	}
	for _, g := range b.groups {
		w := make([]int, len(g))
		for k, i := range g {
			w[k] = weights[i]
		}
		b.wrr = append(b.wrr, wrr.New(w))
	}
	return b
}

// pick returns the next instance of the highest-priority group with
// untried instances, by smooth weighted round robin among that group's
// untried instances, or -1 when every instance has been tried.
func (b *balancer) pick(tried []bool) int {
	for n, g := range b.groups {
		if k := b.wrr[n].Next(func(k int) bool { return tried[g[k]] }); k >= 0 {
			return g[k]
		}
	}
	return -1
}

// Interface guards.
var (
	_ phases.AccessHook  = (*Plugin)(nil)
	_ phases.Upstream    = (*Plugin)(nil)
	_ phases.LogHook     = (*Plugin)(nil)
	_ phases.Prioritized = (*Plugin)(nil)
	_ phases.BodyLimiter = (*Plugin)(nil)

	_ pluginsdk.ClientProtocol = (*Plugin)(nil)
)
