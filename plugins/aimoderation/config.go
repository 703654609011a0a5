package aimoderation

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/phasegate/phasegate/httpx"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/yamlconf"
)

// Values of Config.RequestMessages.
const (
	MessagesLast = "last"
	MessagesAll  = "all"
)

// Values of Config.StreamCheckMode.
const (
	ModeRealtime    = "realtime"
	ModeFinalPacket = "final_packet"
)

// Values of ModerationConfig.FailMode.
const (
	FailSkip  = "skip"
	FailError = "error"
)

// AnyRole in Config.RequestRoles selects the messages of every role.
const AnyRole = "*"

// Defaults of Config.
const (
	DefaultDenyCode             = 400
	DefaultDenyMessage          = "Your request was rejected by the content policy."
	DefaultStreamCheckCacheSize = 128
	DefaultTimeout              = 5 * time.Second
)

// Config is ai-content-moderation's configuration. Start from DefaultConfig.
type Config struct {
	// DenyPatterns are Go regular expressions (RE2 syntax); a text matching
	// any of them is refused. Default: none. At least one pattern or a
	// Moderation.Endpoint is required.
	DenyPatterns []string `yaml:"deny_patterns"`
	// Moderation is an OpenAI-compatible moderation endpoint asked after
	// the patterns. Default: none.
	Moderation ModerationConfig `yaml:"moderation"`

	// CheckRequest checks the request's messages in the access phase.
	// Default true.
	CheckRequest bool `yaml:"check_request"`
	// RequestMessages selects which of the messages of RequestRoles are
	// checked: "last" (the last one) or "all". Default "last".
	RequestMessages string `yaml:"request_messages"`
	// RequestRoles are the roles whose messages are checked, matched in
	// any case; "*" is any role. Default ["user"].
	RequestRoles []string `yaml:"request_roles"`

	// CheckResponse checks the text the model generates. Default false.
	CheckResponse bool `yaml:"check_response"`
	// StreamCheckMode is how a streamed response is checked: "realtime"
	// (during the stream, refusing the rest of it on a hit) or
	// "final_packet" (once at its end, recording the verdict only).
	// Default "realtime".
	StreamCheckMode string `yaml:"stream_check_mode"`
	// StreamCheckCacheSize is, in realtime mode, the most text past the
	// start of a match that may reach the client, how far back a pattern
	// without a bound on its match length looks, and how many new
	// characters of a text trigger an endpoint call (see the package
	// documentation). Default 128.
	StreamCheckCacheSize int `yaml:"stream_check_cache_size"`

	// DenyCode is the status of a refusal sent before the response
	// started (200–599). Default 400.
	DenyCode int `yaml:"deny_code"`
	// DenyMessage is the assistant content of a refusal. Default
	// "Your request was rejected by the content policy."
	DenyMessage string `yaml:"deny_message"`
}

// ModerationConfig is an OpenAI-compatible moderation endpoint
// (POST /v1/moderations). A text is refused when any result of the reply
// is "flagged".
type ModerationConfig struct {
	// Endpoint is the endpoint's absolute http or https URL, such as
	// "https://api.openai.com/v1/moderations". Default "": no endpoint.
	Endpoint string `yaml:"endpoint"`
	// Model is sent as the request's "model" when not empty. Default "".
	Model string `yaml:"model"`
	// Auth are the credentials sent with every call.
	Auth Auth `yaml:"auth"`
	// Timeout bounds each call. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// FailMode is what happens when a call fails (network error, timeout,
	// status other than 2xx, unreadable reply): "skip" lets the text
	// through unchecked by the endpoint and logs a warning; "error" answers
	// 502 with an error of type "moderation_error". Default "skip".
	FailMode string `yaml:"fail_mode"`
}

// Auth holds the credentials of the moderation endpoint.
type Auth struct {
	// Header are headers set on every call, such as
	// Authorization: "Bearer ${OPENAI_API_KEY}".
	Header map[string]string `yaml:"header"`
}

// DefaultConfig returns ai-content-moderation's defaults. They are not
// valid on their own: set deny_patterns or moderation.endpoint.
func DefaultConfig() Config {
	return Config{
		Moderation:           ModerationConfig{Timeout: DefaultTimeout, FailMode: FailSkip},
		CheckRequest:         true,
		RequestMessages:      MessagesLast,
		RequestRoles:         []string{"user"},
		StreamCheckMode:      ModeRealtime,
		StreamCheckCacheSize: DefaultStreamCheckCacheSize,
		DenyCode:             DefaultDenyCode,
		DenyMessage:          DefaultDenyMessage,
	}
}

// Validate reports the config's problems, each at its field.
func (c *Config) Validate() []pluginsdk.FieldError {
	var errs []pluginsdk.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, pluginsdk.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(c.DenyPatterns) == 0 && c.Moderation.Endpoint == "" {
		add("", "deny_patterns and moderation.endpoint are both empty: set at least one")
	}
	if !c.CheckRequest && !c.CheckResponse {
		add("", "check_request and check_response are both false: nothing would be checked")
	}
	_, perrs := compile(c.DenyPatterns)
	errs = append(errs, perrs...)

	m := &c.Moderation
	if m.Endpoint != "" {
		if u, err := url.Parse(m.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("moderation.endpoint", "%q is not an absolute http or https URL", m.Endpoint)
		}
	}
	if m.Timeout <= 0 {
		add("moderation.timeout", "must be positive, got %s", m.Timeout)
	}
	if m.FailMode != FailSkip && m.FailMode != FailError {
		add("moderation.fail_mode", "must be %q or %q, got %q", FailSkip, FailError, m.FailMode)
	}
	names := make([]string, 0, len(m.Auth.Header))
	for k := range m.Auth.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		field := yamlconf.PathKey("moderation.auth.header", k)
		if !httpx.IsToken(k) {
			add(field, "%q is not a valid HTTP header name", k)
		}
		if strings.ContainsAny(m.Auth.Header[k], "\r\n\x00") {
			add(field, "the value contains a line break or NUL")
		}
	}

	if c.RequestMessages != MessagesLast && c.RequestMessages != MessagesAll {
		add("request_messages", "must be %q or %q, got %q", MessagesLast, MessagesAll, c.RequestMessages)
	}
	if len(c.RequestRoles) == 0 {
		add("request_roles", "is empty: list the roles to check, or \"*\" for every role")
	}
	for i, r := range c.RequestRoles {
		if r == "" {
			add(fmt.Sprintf("request_roles[%d]", i), "is empty")
		}
	}
	if c.StreamCheckMode != ModeRealtime && c.StreamCheckMode != ModeFinalPacket {
		add("stream_check_mode", "must be %q or %q, got %q", ModeRealtime, ModeFinalPacket, c.StreamCheckMode)
	}
	if c.StreamCheckCacheSize <= 0 {
		add("stream_check_cache_size", "must be positive, got %d", c.StreamCheckCacheSize)
	}
	if c.DenyCode < 200 || c.DenyCode > 599 {
		add("deny_code", "must be an HTTP status from 200 to 599, got %d", c.DenyCode)
	}
	if c.DenyMessage == "" {
		add("deny_message", "is empty: a refusal needs a message")
	}
	return errs
}

// compile compiles deny patterns, reporting each problem at
// deny_patterns[i].
func compile(patterns []string) ([]*regexp.Regexp, []pluginsdk.FieldError) {
	var errs []pluginsdk.FieldError
	res := make([]*regexp.Regexp, 0, len(patterns))
	for i, s := range patterns {
		f := fmt.Sprintf("deny_patterns[%d]", i)
		if s == "" {
			errs = append(errs, pluginsdk.FieldError{Field: f, Msg: "empty pattern: it would match every text"})
			continue
		}
		re, err := regexp.Compile(s)
		if err != nil {
			errs = append(errs, pluginsdk.FieldError{Field: f, Msg: "invalid RE2: " + err.Error()})
			continue
		}
		if re.MatchString("") {
			errs = append(errs, pluginsdk.FieldError{Field: f, Msg: fmt.Sprintf("%q matches the empty string: it would refuse everything", s)})
			continue
		}
		res = append(res, re)
	}
	return res, errs
}
