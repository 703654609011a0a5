// Package aiproxy is phasegate's ai-proxy plugin: the upstream of an AI
// route, proxying OpenAI chat-completions requests to one OpenAI or
// OpenAI-compatible endpoint.
//
//	plugins:
//	  ai-proxy:
//	    provider: openai-compatible          # openai | openai-compatible
//	    endpoint: http://127.0.0.1:9082/v1/chat/completions
//	    auth: { header: { Authorization: "Bearer ${OPENAI_API_KEY}" } }  # and/or query: {key: value}
//	    options: { model: gpt-4o-mini }      # merged into the body; model overrides the client's
//	    timeout: 30s                         # default
//	    max_request_body_bytes: 16777216     # default 0: the route's limit (8 MiB unless set)
//	    max_response_bytes: 16777216         # default (16 MiB)
//	    max_stream_duration: 10m             # default
//
// provider openai defaults the endpoint to
// https://api.openai.com/v1/chat/completions; openai-compatible needs one.
//
// # Access
//
// In the access phase (priority 1100: before ai-prompt-guard at 1070 and
// ai-content-moderation at 1050, which read what it records) the plugin
// validates the request: Content-Type application/json (parameters
// allowed), a body within the limit (413 beyond): max_request_body_bytes
// when set, which raises or lowers the route's max_body_bytes and the
// gateway's client.max_body_bytes, else theirs; a valid JSON object whose known fields
// have the right types, and a model, the client's or options.model. Each
// problem is answered with an OpenAI-shaped JSON error, 400 or 413. It
// then records the request's *llm.Info under llm.InfoKey: the model
// that will be sent, instance "ai-proxy", and whether the client streams.
//
// # Upstream
//
// The upstream request carries the client's headers except hop-by-hop
// ones, Accept-Encoding and Host; with auth configured, the client's
// Authorization and whatever header or query parameter the auth sets are
// replaced. The body is the client's with options merged in (and, for a
// stream, stream_options.include_usage set unless the client chose). The
// timeout bounds the wait for the response header (504 beyond) and then
// every wait for body bytes; an unreachable endpoint is answered 502.
// Upstream error statuses and their bodies reach the client as they are.
//
// A server-sent event stream is forwarded event by event as each event
// completes, byte for byte; LLMInfo follows it (time to first token, usage
// from the final usage chunk). max_stream_duration and max_response_bytes
// end a started stream with a final data event carrying an error and
// "data: [DONE]". Any other response is read whole (up to
// max_response_bytes, 502 beyond) and handed to the body filters in one
// piece, so that content moderation sees the complete body before anything
// is sent. When the client goes away the upstream request is cancelled at
// once.
//
// # Metrics
//
// phasegate_llm_active_connections{route,instance="ai-proxy",model,request_type}
// is raised for each upstream attempt and bound to the attempt's scope, so
// it falls exactly once however the request ends (see package
// llm/provider). The log hook records the token counters, the request
// duration (statuses below 400) and, for streams, the time to first token.
package aiproxy

import (
	"context"
	"time"

	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Name is the plugin's name in routes' plugins mappings, in logs and the
// instance label of its metrics.
const Name = "ai-proxy"

// priority places ai-proxy's access hook before ai-prompt-guard (1070) and
// ai-content-moderation (1050), which read the LLMInfo it records.
const priority = 1100

// Providers.
const (
	ProviderOpenAI           = provider.ProviderOpenAI
	ProviderOpenAICompatible = provider.ProviderOpenAICompatible
	ProviderAnthropic        = provider.ProviderAnthropic
)

// Defaults of Config.
const (
	DefaultTimeout           = provider.DefaultTimeout
	DefaultMaxResponseBytes  = provider.DefaultMaxResponseBytes
	DefaultMaxStreamDuration = provider.DefaultMaxStreamDuration
	DefaultOpenAIEndpoint    = provider.DefaultOpenAIEndpoint
	DefaultAnthropicEndpoint = provider.DefaultAnthropicEndpoint
)

// Config is ai-proxy's configuration. Start from DefaultConfig.
type Config struct {
	// ClientProtocol is the protocol the route's clients speak: "auto"
	// (the default) picks it by the request path's suffix
	// (/chat/completions, /messages, /messages/count_tokens, /responses),
	// or "openai-chat", "anthropic-messages", "openai-responses".
	ClientProtocol string `yaml:"client_protocol"`
	// Provider is "openai", "openai-compatible" or "anthropic". Required.
	Provider string `yaml:"provider"`
	// Endpoint is the chat-completions URL (the messages URL for
	// anthropic), absolute http or https. Required for openai-compatible;
	// default DefaultOpenAIEndpoint for openai, DefaultAnthropicEndpoint
	// for anthropic.
	Endpoint string `yaml:"endpoint"`
	// Auth are the credentials sent upstream instead of the client's.
	Auth Auth `yaml:"auth"`
	// Options are set at the top level of the request body, replacing the
	// client's values; options.model, a string, overrides the client's
	// model.
	Options map[string]any `yaml:"options"`
	// Timeout bounds the wait for the response header, then every wait
	// for body bytes. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRequestBodyBytes, when positive, is the route's request body
	// limit (413 beyond), above or below the route's and the gateway's.
	// Default 0: theirs.
	MaxRequestBodyBytes int64 `yaml:"max_request_body_bytes"`
	// MaxResponseBytes bounds the upstream's response body (a stream's
	// total). Default 16 MiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// MaxStreamDuration bounds a streamed response, from its header.
	// Default 10m.
	MaxStreamDuration time.Duration `yaml:"max_stream_duration"`
}

// Auth holds the credentials of an upstream.
type Auth struct {
	// Header are headers set on every upstream request, such as
	// Authorization: "Bearer ${OPENAI_API_KEY}".
	Header map[string]string `yaml:"header"`
	// Query are query parameters set on every upstream request.
	Query map[string]string `yaml:"query"`
}

// DefaultConfig returns ai-proxy's defaults. They are not valid on their
// own: set provider (and, for openai-compatible, endpoint).
func DefaultConfig() Config {
	return Config{
		ClientProtocol:    door.Auto,
		Timeout:           DefaultTimeout,
		MaxResponseBytes:  DefaultMaxResponseBytes,
		MaxStreamDuration: DefaultMaxStreamDuration,
	}
}

// instance returns the provider instance config of c, named name.
func (c *Config) instance(name string) provider.Config {
	return provider.Config{
		Name:              name,
		Provider:          c.Provider,
		Endpoint:          c.Endpoint,
		AuthHeader:        c.Auth.Header,
		AuthQuery:         c.Auth.Query,
		Options:           c.Options,
		Timeout:           c.Timeout,
		MaxResponseBytes:  c.MaxResponseBytes,
		MaxStreamDuration: c.MaxStreamDuration,
	}
}

// Validate reports the config's problems, each at its field.
func (c *Config) Validate() []pluginsdk.FieldError {
	ic := c.instance(Name)
	errs := ic.Validate(false)
	errs = append(errs, provider.ValidateClientProtocol(c.ClientProtocol)...)
	return append(errs, provider.ValidateRequestLimit(c.MaxRequestBodyBytes)...)
}

// Spec declares ai-proxy to the gateway's registry.
var Spec = pluginsdk.Typed(pluginsdk.Spec{Name: Name, Upstream: true}, DefaultConfig,
	func(c Config, env pluginsdk.Env) (phases.Plugin, error) { return New(c, env) })

// Plugin is the ai-proxy plugin. It is immutable and safe for concurrent
// use: per-request state lives in the request's values.
type Plugin struct {
	proxy    *provider.Proxy
	instance *provider.Instance
	maxBody  int64
}

// New builds the plugin from cfg, which must be valid (see
// Config.Validate). It records metrics into env.Metrics (none when nil)
// under the route env.Route, calls the upstream through env.Transport
// (http.DefaultTransport when nil) and logs to env.Logger.
func New(cfg Config, env pluginsdk.Env) (*Plugin, error) {
	if err := pluginsdk.ConfigError(Name, cfg.Validate()); err != nil {
		return nil, err
	}
	in, err := provider.NewInstance(cfg.instance(Name), env.Transport)
	if err != nil {
		return nil, err
	}
	return &Plugin{
		instance: in,
		maxBody:  cfg.MaxRequestBodyBytes,
		proxy: &provider.Proxy{
			Route:          env.Route,
			Metrics:        env.Metrics,
			Logger:         env.Logger,
			Model:          in.Model,
			Instance:       Name,
			ClientProtocol: cfg.ClientProtocol,
		},
	}, nil
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

// Upstream implements phases.Upstream: one attempt on the endpoint.
func (p *Plugin) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	used := false
	next := func() *provider.Instance {
		if used {
			return nil
		}
		used = true
		return p.instance
	}
	return p.proxy.Serve(ctx, r, next, nil)
}

// Log implements phases.LogHook: it records the LLM metrics.
func (p *Plugin) Log(ctx context.Context, s *phases.Summary) { p.proxy.Log(s) }

// Interface guards.
var (
	_ phases.AccessHook  = (*Plugin)(nil)
	_ phases.Upstream    = (*Plugin)(nil)
	_ phases.LogHook     = (*Plugin)(nil)
	_ phases.Prioritized = (*Plugin)(nil)
	_ phases.BodyLimiter = (*Plugin)(nil)

	_ pluginsdk.ClientProtocol = (*Plugin)(nil)
)
