// Package requestid is phasegate's request-id plugin: it gives every request
// an id that the upstream, the client and the access log all see.
//
// In the access phase, before any other plugin (priority 12000), it takes the
// id the client sent in the configured header, or generates a random UUID
// (version 4) when there is none or it is not acceptable: longer than
// max_length, empty, or containing anything but visible ASCII (0x21–0x7E),
// so that a client cannot inject ids that break log lines. The id is then
// set on the request header (the upstream gets it), on every response the
// client gets, including exits decided later by other plugins (unless
// include_in_response is false), and in the request's values under Key,
// where later plugins and the access log read it with From.
//
// The gateway runs request-id on every route, with DefaultConfig when the
// route does not configure it:
//
//	plugins:
//	  request-id:
//	    header_name: X-Request-Id   # default
//	    max_length: 128             # default
//	    include_in_response: true   # default
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/phasegate/phasegate/httpx"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Name is the plugin's name in routes' plugins mappings and in logs.
const Name = "request-id"

// Defaults and limits of Config.
const (
	DefaultHeaderName = "X-Request-Id"
	DefaultMaxLength  = 128
	// MinMaxLength is the smallest max_length accepted: the length of a
	// generated id, so that ids made by a phasegate in front are kept.
	MinMaxLength = 36
	// MaxMaxLength is the largest max_length accepted.
	MaxMaxLength = 1024
)

// priority places request-id before every other access hook.
const priority = 12000

// Key is the request value holding the request's id.
var Key = pluginsdk.RequestID

// From returns the request id stored in v, or "" if there is none.
func From(v *phases.Values) string {
	id, _ := Key.Get(v)
	return id
}

// Config is request-id's configuration. Start from DefaultConfig: the zero
// Config is not valid.
type Config struct {
	// HeaderName is the request and response header carrying the id.
	HeaderName string `yaml:"header_name"`
	// MaxLength is the longest incoming id kept; longer ones are replaced.
	MaxLength int `yaml:"max_length"`
	// IncludeInResponse sets the id on every response.
	IncludeInResponse bool `yaml:"include_in_response"`
}

// DefaultConfig returns the configuration the gateway uses on routes that do
// not configure request-id.
func DefaultConfig() Config {
	return Config{
		HeaderName:        DefaultHeaderName,
		MaxLength:         DefaultMaxLength,
		IncludeInResponse: true,
	}
}

// Validate reports the config's problems.
func (c *Config) Validate() []pluginsdk.FieldError {
	var errs []pluginsdk.FieldError
	switch {
	case c.HeaderName == "":
		errs = append(errs, pluginsdk.FieldError{Field: "header_name", Msg: "must not be empty"})
	case !httpx.IsToken(c.HeaderName):
		errs = append(errs, pluginsdk.FieldError{Field: "header_name", Msg: fmt.Sprintf("%q is not a valid HTTP header name", c.HeaderName)})
	}
	if c.MaxLength < MinMaxLength || c.MaxLength > MaxMaxLength {
		errs = append(errs, pluginsdk.FieldError{Field: "max_length", Msg: fmt.Sprintf("must be between %d (the length of a generated id) and %d", MinMaxLength, MaxMaxLength)})
	}
	return errs
}

// Spec declares request-id to the gateway's registry.
var Spec = pluginsdk.Typed(pluginsdk.Spec{Name: Name}, DefaultConfig,
	func(c Config, env pluginsdk.Env) (phases.Plugin, error) { return New(c) })

// Plugin is the request-id plugin. It is safe for concurrent use.
type Plugin struct {
	header  string
	maxLen  int
	include bool
}

// New builds the plugin from cfg, which must be valid (see Config.Validate).
func New(cfg Config) (*Plugin, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, pluginsdk.ConfigError(Name, errs)
	}
	return &Plugin{
		header:  http.CanonicalHeaderKey(cfg.HeaderName),
		maxLen:  cfg.MaxLength,
		include: cfg.IncludeInResponse,
	}, nil
}

// Name implements phases.Plugin.
func (*Plugin) Name() string { return Name }

// Priority implements phases.Prioritized: request-id runs first.
func (*Plugin) Priority() int { return priority }

// Access implements phases.AccessHook: it settles the request's id, passes
// it to the upstream, sets it on the response and stores it under Key. It
// never exits.
func (p *Plugin) Access(ctx context.Context, r *phases.Request) phases.Exit {
	id := r.Header.Get(p.header)
	if !Valid(id, p.maxLen) {
		id = NewID()
	}
	r.Header.Set(p.header, id)
	if p.include {
		r.SetResponseHeader(p.header, id)
	}
	Key.Set(r.Values, id)
	return phases.Exit{}
}

// Valid reports whether id is acceptable as a client-supplied request id:
// 1 to maxLen bytes, each visible ASCII (0x21–0x7E).
func Valid(id string, maxLen int) bool {
	if id == "" || len(id) > maxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// NewID returns a random UUID, version 4 (RFC 9562), in its canonical form:
// 36 lowercase hexadecimal digits and dashes.
func NewID() string {
	var u [16]byte
	// crypto/rand.Read never returns an error: it crashes the program if
	// the system's generator fails.
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10xx
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], u[10:16])
	return string(s[:])
}

// Interface guards.
var (
	_ phases.AccessHook  = (*Plugin)(nil)
	_ phases.Prioritized = (*Plugin)(nil)
)
