package provider

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/phasegate/phasegate/httpx"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/yamlconf"
)

// Providers.
const (
	// ProviderOpenAI is OpenAI itself: the endpoint defaults to
	// DefaultOpenAIEndpoint.
	ProviderOpenAI = "openai"
	// ProviderOpenAICompatible is any server speaking OpenAI's
	// chat-completions API; its endpoint is required.
	ProviderOpenAICompatible = "openai-compatible"
	// ProviderAnthropic speaks Anthropic Messages: the endpoint defaults
	// to DefaultAnthropicEndpoint, and every request carries an
	// anthropic-version header (the client's, else
	// DefaultAnthropicVersion). Its key goes in auth.header as x-api-key.
	ProviderAnthropic = "anthropic"
)

// DefaultOpenAIEndpoint is the endpoint of provider openai.
const DefaultOpenAIEndpoint = "https://api.openai.com/v1/chat/completions"

// DefaultAnthropicEndpoint is the endpoint of provider anthropic.
const DefaultAnthropicEndpoint = "https://api.anthropic.com/v1/messages"

// DefaultAnthropicVersion is the anthropic-version header sent to provider
// anthropic when the client sends none.
const DefaultAnthropicVersion = "2023-06-01"

// Protocol returns the protocol a provider speaks (Chat for an unknown
// one).
func Protocol(provider string) llm.Protocol {
	if provider == ProviderAnthropic {
		return llm.AnthropicMessages
	}
	return llm.OpenAIChat
}

// Defaults of Config's optional fields.
const (
	DefaultTimeout           = 30 * time.Second
	DefaultMaxResponseBytes  = 16 << 20
	DefaultMaxStreamDuration = 10 * time.Minute
)

// Config is one upstream instance. Field problems are reported under the
// names the plugins' YAML uses (provider, endpoint, auth.header, ...).
type Config struct {
	// Name is the instance's name: the instance label of the LLM metrics
	// and LLMInfo.Instance ("ai-proxy" for ai-proxy).
	Name string
	// Provider is ProviderOpenAI, ProviderOpenAICompatible or
	// ProviderAnthropic.
	Provider string
	// Endpoint is the chat-completions URL, or the messages URL of
	// provider anthropic (absolute http or https). Required for
	// openai-compatible; DefaultOpenAIEndpoint for openai and
	// DefaultAnthropicEndpoint for anthropic.
	Endpoint string
	// AuthHeader are headers set on every upstream request, replacing the
	// client's; with any auth configured, the client's Authorization is
	// dropped too.
	AuthHeader map[string]string
	// AuthQuery are query parameters set on every upstream request,
	// replacing the client's of the same name.
	AuthQuery map[string]string
	// Options are merged into the request body at the top level, replacing
	// the client's values ("model" overrides the client's model).
	Options map[string]any
	// Timeout bounds the wait for the response header, then every wait for
	// body bytes. 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes bounds a response body (a stream's total). 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// MaxStreamDuration bounds a streamed response, from its header. 0
	// means DefaultMaxStreamDuration.
	MaxStreamDuration time.Duration
}

// SetDefaults fills the optional fields left zero.
func (c *Config) SetDefaults() {
	if c.Endpoint == "" {
		switch c.Provider {
		case ProviderOpenAI:
			c.Endpoint = DefaultOpenAIEndpoint
		case ProviderAnthropic:
			c.Endpoint = DefaultAnthropicEndpoint
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxStreamDuration == 0 {
		c.MaxStreamDuration = DefaultMaxStreamDuration
	}
}

// Validate reports the instance's problems, each at its field's YAML name
// ("endpoint", `auth.header["X-Key"]`, "options.model", ...). When
// zeroIsDefault is set, zero durations and sizes are accepted (they select
// the defaults); otherwise they must be positive, as in a config preset
// with its defaults.
func (c *Config) Validate(zeroIsDefault bool) []pluginsdk.FieldError {
	var errs []pluginsdk.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, pluginsdk.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch c.Provider {
	case ProviderOpenAI, ProviderOpenAICompatible, ProviderAnthropic:
	case "":
		add("provider", "is required: %q, %q or %q", ProviderOpenAI, ProviderOpenAICompatible, ProviderAnthropic)
	default:
		add("provider", "must be %q, %q or %q, got %q", ProviderOpenAI, ProviderOpenAICompatible, ProviderAnthropic, c.Provider)
	}
	switch {
	case c.Endpoint == "" && c.Provider == ProviderOpenAICompatible:
		add("endpoint", "is required for provider %q", ProviderOpenAICompatible)
	case c.Endpoint != "":
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("endpoint", "%q is not an absolute http or https URL", redactURL(c.Endpoint))
		}
	}
	for _, k := range sortedKeys(c.AuthHeader) {
		field := yamlconf.PathKey("auth.header", k)
		if !httpx.IsToken(k) {
			add(field, "%q is not a valid HTTP header name", k)
		}
		if strings.ContainsAny(c.AuthHeader[k], "\r\n\x00") {
			add(field, "the value contains a line break or NUL")
		}
	}
	for _, k := range sortedKeys(c.AuthQuery) {
		if k == "" {
			add("auth.query", "has an empty parameter name")
		}
	}
	for _, k := range sortedKeys(c.Options) {
		field := yamlconf.PathKey("options", k)
		v := c.Options[k]
		if k == "model" {
			if s, ok := v.(string); !ok || s == "" {
				add(field, "must be a non-empty string, got %s", describe(v))
			}
			continue
		}
		if _, err := json.Marshal(v); err != nil {
			add(field, "cannot be sent as JSON: %v", err)
		}
	}
	positive := func(field string, bad bool, v any) {
		if bad {
			add(field, "must be positive, got %v", v)
		}
	}
	positive("timeout", c.Timeout < 0 || (!zeroIsDefault && c.Timeout == 0), c.Timeout)
	positive("max_response_bytes", c.MaxResponseBytes < 0 || (!zeroIsDefault && c.MaxResponseBytes == 0), c.MaxResponseBytes)
	positive("max_stream_duration", c.MaxStreamDuration < 0 || (!zeroIsDefault && c.MaxStreamDuration == 0), c.MaxStreamDuration)
	return errs
}

// ValidateRequestLimit reports a negative max_request_body_bytes (0
// leaves the route's limit).
func ValidateRequestLimit(n int64) []pluginsdk.FieldError {
	if n < 0 {
		return []pluginsdk.FieldError{{Field: "max_request_body_bytes", Msg: fmt.Sprintf("must not be negative, got %d (0 keeps the route's limit)", n)}}
	}
	return nil
}

// Prefix returns errs with prefix prepended to their fields ("instances[1]"
// and "endpoint" make "instances[1].endpoint").
func Prefix(prefix string, errs []pluginsdk.FieldError) []pluginsdk.FieldError {
	for i := range errs {
		switch f := errs[i].Field; {
		case f == "":
			errs[i].Field = prefix
		case strings.HasPrefix(f, "["):
			errs[i].Field = prefix + f
		default:
			errs[i].Field = prefix + "." + f
		}
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// describe names the kind of a decoded YAML value.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("%q", v)
	case bool:
		return "a boolean"
	case int, int64, uint64, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("a %T", v)
}

// redactURL drops the query and user info of a URL for messages: they may
// hold a secret.
func redactURL(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			s = s[:j+3] + "…@" + s[i+1:]
		}
	}
	return s
}

// ValidateClientProtocol reports a client_protocol that is not "auto" or
// one of the protocols ("" is auto).
func ValidateClientProtocol(s string) []pluginsdk.FieldError {
	if door.ValidSetting(s) {
		return nil
	}
	return []pluginsdk.FieldError{{Field: "client_protocol",
		Msg: fmt.Sprintf("must be one of %s, got %q", strings.Join(door.Settings(), ", "), s)}}
}
