package pluginsdk

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/yamlconf"
)

// Spec declares a plugin to the gateway's registry, under the name that
// routes use in their plugins: mapping.
type Spec struct {
	// Name is the plugin's key in a route's plugins: mapping.
	Name string
	// Config returns a pointer to a new config value with its defaults set.
	// The gateway decodes the plugin's YAML into it strictly (yaml tags;
	// unknown fields are errors). If the value has a method
	// Validate() []FieldError, it is called after decoding and each error is
	// reported at its field's file, line and column. Nil means the plugin
	// takes no config (only {} or null).
	Config func() any
	// New builds the plugin for one route from its decoded, validated
	// config. An error is reported at the plugin's key. New is called again
	// on every reload: anything registered on Env.Registerer must tolerate
	// that (see Register).
	New func(cfg any, env Env) (phases.Plugin, error)
	// Upstream declares that the plugin provides the route's upstream (its
	// plugins implement phases.Upstream), so that a config naming two
	// upstreams, or none, is caught when it is loaded.
	Upstream bool
}

// FieldError is a problem in a plugin's config, at Field (relative to the
// plugin's config; "" for the config as a whole; nested fields and indexes
// as in "instances[1].name", map keys as in `nodes["10.0.0.1:80"]`). The
// gateway's decoder calls Validate() []FieldError on every config struct it
// decodes and positions each error at its field.
type FieldError = yamlconf.FieldError

// Env is what a plugin is built with.
type Env struct {
	// Route is the id of the route the plugin serves.
	Route string
	// Registerer is the gateway's registry, for the plugin's own metrics.
	Registerer prometheus.Registerer
	// Metrics are the gateway's own metrics (docs/metrics.md).
	Metrics *metrics.Set
	// Logger is the gateway's logger.
	Logger zerolog.Logger
	// Transport is the gateway's shared keep-alive transport for upstream
	// calls.
	Transport http.RoundTripper
	// Consumers are the config's top-level consumers (key-auth).
	Consumers []ConsumerConfig
	// Shared holds the resources that plugins share across routes and
	// reloads (see AcquireShared). Nil in a plugin built alone: AcquireShared
	// then opens a resource of the plugin's own.
	Shared *Shared
}

// ConsumerConfig is an API consumer of the config's top-level consumers
// list.
type ConsumerConfig struct {
	Username string `yaml:"username" conf:"required"`
	Key      string `yaml:"key" conf:"required"`
}

// Register registers c on reg, or returns the collector already registered
// under the same descriptor, so that a plugin rebuilt on reload keeps its
// series.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// Typed completes s for a plugin whose config type is C: s.Config returns
// defaults() as a *C for the gateway to decode into, and s.New hands the
// decoded value to build (defaults() when there is none). It is how every
// built-in plugin declares itself:
//
//	var Spec = pluginsdk.Typed(pluginsdk.Spec{Name: "key-auth"}, DefaultConfig,
//		func(c Config, env pluginsdk.Env) (phases.Plugin, error) { return New(c, env.Consumers) })
func Typed[C any](s Spec, defaults func() C, build func(cfg C, env Env) (phases.Plugin, error)) Spec {
	s.Config = func() any {
		c := defaults()
		return &c
	}
	s.New = func(cfg any, env Env) (phases.Plugin, error) {
		switch c := cfg.(type) {
		case nil:
			return build(defaults(), env)
		case *C:
			if c == nil {
				return build(defaults(), env)
			}
			return build(*c, env)
		}
		var want *C
		return nil, fmt.Errorf("%s: config is a %T, want a %T", s.Name, cfg, want)
	}
	return s
}

// ConfigError turns a config's field errors into one error, a line
// "plugin: field: problem" per error, or nil when there are none: what a
// plugin's New returns for a config that does not validate.
func ConfigError(plugin string, errs []FieldError) error {
	return yamlconf.JoinFieldErrors(plugin, errs)
}

// ClientProtocol is implemented by a plugin that chooses the protocol a
// route's clients speak (ai-proxy's client_protocol). Before any plugin of
// the route runs, the gateway has it enter each request's door, setting
// the request's Renderer, so that every exit of the route (key-auth's 401
// as much as the framework's 413) is answered in that protocol.
type ClientProtocol interface {
	EnterDoor(r *phases.Request)
}
