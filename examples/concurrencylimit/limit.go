// Package concurrencylimit is the plugin that docs/writing-plugins.md
// builds: it caps how many requests a route serves at once, holding each
// request's slot as a binding so the slot comes back exactly once, however
// the request ends.
package concurrencylimit

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Config is the plugin's YAML config: `concurrency-limit: { max: 8 }`.
type Config struct {
	Max int `yaml:"max"`
}

// Validate is called by the gateway after decoding; each error is reported
// at its field's file, line and column.
func (c *Config) Validate() []pluginsdk.FieldError {
	if c.Max < 1 {
		return []pluginsdk.FieldError{{Field: "max", Msg: fmt.Sprintf("must be at least 1, got %d", c.Max)}}
	}
	return nil
}

// Spec registers the plugin with a gateway: plugins.Builtins().Register(Spec).
var Spec = pluginsdk.Typed(pluginsdk.Spec{Name: "concurrency-limit"},
	func() Config { return Config{Max: 64} },
	func(c Config, env pluginsdk.Env) (phases.Plugin, error) { return New(c, env.Route, env.Registerer) })

// Limit is the plugin. One value serves all of a route's requests, so it
// keeps no per-request state in its fields.
type Limit struct {
	slots chan struct{}
	held  phases.BoundGauge
}

// New builds a limit of cfg.Max concurrent requests for route, exposing the
// slots in use as phasegate_concurrency_limit_slots{route}.
func New(cfg Config, route string, reg prometheus.Registerer) (*Limit, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("concurrency-limit: %s: %s", errs[0].Field, errs[0].Msg)
	}
	vec, err := pluginsdk.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "phasegate_concurrency_limit_slots",
		Help: "Slots of the concurrency limit in use.",
	}, []string{"route"}))
	if err != nil {
		return nil, err
	}
	return &Limit{
		slots: make(chan struct{}, cfg.Max),
		held:  phases.BoundGauge{Name: "phasegate_concurrency_limit_slots", Vec: vec},
	}, nil
}

// Name identifies the plugin in logs, metrics and traces.
func (l *Limit) Name() string { return "concurrency-limit" }

// Priority runs the limit after authentication (2500) and before the AI
// plugins (≤ 1100).
func (l *Limit) Priority() int { return 2000 }

// Access takes a slot or refuses the request with 429. The slot is released
// by the binding, not by a later hook: there is no code path to forget.
func (l *Limit) Access(ctx context.Context, r *phases.Request) phases.Exit {
	select {
	case l.slots <- struct{}{}:
	default:
		return phases.Error(http.StatusTooManyRequests, "rate_limit_error", "too many concurrent requests")
	}
	r.Scope.Acquire(fsm.Resource{Name: "concurrency slot"}, func() { <-l.slots })
	l.held.Acquire(r.Scope, r.Route)
	return phases.Exit{}
}

// InUse reports how many slots are taken.
func (l *Limit) InUse() int { return len(l.slots) }

var _ phases.AccessHook = (*Limit)(nil)
