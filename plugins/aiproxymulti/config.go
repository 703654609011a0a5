package aiproxymulti

import (
	"fmt"
	"slices"
	"time"

	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/plugins/aiproxy"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/yamlconf"
)

// Values of Config.FallbackOn.
const (
	// FallbackHTTP5xx falls back when an instance answers a 5xx status.
	FallbackHTTP5xx = "http_5xx"
	// FallbackHTTP429 falls back when an instance answers 429.
	FallbackHTTP429 = "http_429"
	// FallbackNetwork falls back when an instance cannot be reached, breaks
	// before its response is complete, or times out.
	FallbackNetwork = "network"
)

// DefaultWeight is an instance's weight when it sets none.
const DefaultWeight = 1

// Config is ai-proxy-multi's configuration. Start from DefaultConfig.
type Config struct {
	// ClientProtocol is the protocol the route's clients speak (see
	// aiproxy.Config.ClientProtocol). Default "auto".
	ClientProtocol string `yaml:"client_protocol"`
	// Instances are the upstream instances. Required, names unique.
	Instances []Instance `yaml:"instances" conf:"required"`
	// FallbackOn lists the failures after which the next instance is
	// tried: http_5xx, http_429, network. Default all three; [] never
	// falls back.
	FallbackOn []string `yaml:"fallback_on"`
	// FallbackHTTPStatuses are more upstream statuses (400–599) after
	// which the next instance is tried. Default none.
	FallbackHTTPStatuses []int `yaml:"fallback_http_statuses"`
	// MaxRetries bounds the attempts after the first. Default (nil): one
	// fewer than the instances, so that each may be tried once.
	MaxRetries *int `yaml:"max_retries"`
	// MaxRequestBodyBytes, when positive, is the route's request body
	// limit (413 beyond), above or below the route's and the gateway's.
	// Default 0: theirs.
	MaxRequestBodyBytes int64 `yaml:"max_request_body_bytes"`
}

// Instance is one upstream of ai-proxy-multi: a name, a place in the
// balancing, and ai-proxy's upstream fields. Zero durations and sizes
// select ai-proxy's defaults.
type Instance struct {
	// Name identifies the instance in metrics (the instance label), logs
	// and LLMInfo.Instance. Required, unique.
	Name string `yaml:"name" conf:"required"`
	// Weight is the instance's share of the requests among the instances
	// of its priority, by smooth weighted round robin. At least 1;
	// absent (0) means DefaultWeight.
	Weight int `yaml:"weight"`
	// Priority groups instances: a group of higher priority is tried
	// first, a lower one only when every instance of the higher groups has
	// failed this request. Default 0.
	Priority int `yaml:"priority"`

	// Provider is "openai", "openai-compatible" or "anthropic". Required.
	Provider string `yaml:"provider"`
	// Endpoint is the chat-completions URL (see aiproxy.Config.Endpoint).
	Endpoint string `yaml:"endpoint"`
	// Auth are the credentials sent to this instance instead of the
	// client's.
	Auth aiproxy.Auth `yaml:"auth"`
	// Options are merged into the request body sent to this instance
	// only; options.model overrides the client's model.
	Options map[string]any `yaml:"options"`
	// Timeout bounds the wait for the response header, then every wait
	// for body bytes. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxResponseBytes bounds the response body. Default 16 MiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// MaxStreamDuration bounds a streamed response. Default 10m.
	MaxStreamDuration time.Duration `yaml:"max_stream_duration"`
}

// DefaultConfig returns ai-proxy-multi's defaults. They are not valid on
// their own: list the instances.
func DefaultConfig() Config {
	return Config{
		ClientProtocol: door.Auto,
		FallbackOn:     []string{FallbackHTTP5xx, FallbackHTTP429, FallbackNetwork},
	}
}

func (i *Instance) llm() provider.Config {
	return provider.Config{
		Name:              i.Name,
		Provider:          i.Provider,
		Endpoint:          i.Endpoint,
		AuthHeader:        i.Auth.Header,
		AuthQuery:         i.Auth.Query,
		Options:           i.Options,
		Timeout:           i.Timeout,
		MaxResponseBytes:  i.MaxResponseBytes,
		MaxStreamDuration: i.MaxStreamDuration,
	}
}

// Validate reports the config's problems, each at its field
// ("instances[1].endpoint", "fallback_on[0]", ...).
func (c *Config) Validate() []pluginsdk.FieldError {
	var errs []pluginsdk.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, pluginsdk.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(c.Instances) == 0 {
		add("instances", "must list at least one instance")
	}
	names := map[string]int{}
	for i := range c.Instances {
		in := &c.Instances[i]
		base := yamlconf.PathIndex("instances", i)
		switch prev, dup := names[in.Name]; {
		case in.Name == "":
			add(base+".name", "is required")
		case dup:
			add(base+".name", "%q is also instances[%d]'s name", in.Name, prev)
		default:
			names[in.Name] = i
		}
		if in.Weight < 0 {
			add(base+".weight", "must be at least 1, got %d", in.Weight)
		}
		ic := in.llm()
		errs = append(errs, provider.Prefix(base, ic.Validate(true))...)
	}
	for i, f := range c.FallbackOn {
		switch f {
		case FallbackHTTP5xx, FallbackHTTP429, FallbackNetwork:
		default:
			add(yamlconf.PathIndex("fallback_on", i), "must be %q, %q or %q, got %q", FallbackHTTP5xx, FallbackHTTP429, FallbackNetwork, f)
		}
	}
	for i, s := range c.FallbackHTTPStatuses {
		if s < 400 || s > 599 {
			add(yamlconf.PathIndex("fallback_http_statuses", i), "must be an error status from 400 to 599, got %d", s)
		}
	}
	if c.MaxRetries != nil && *c.MaxRetries < 0 {
		add("max_retries", "must not be negative, got %d", *c.MaxRetries)
	}
	errs = append(errs, provider.ValidateClientProtocol(c.ClientProtocol)...)
	return append(errs, provider.ValidateRequestLimit(c.MaxRequestBodyBytes)...)
}

// fallbackOn reports whether the config falls back on what.
func (c *Config) fallbackOn(what string) bool { return slices.Contains(c.FallbackOn, what) }
