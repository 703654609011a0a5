// Package keyauth is phasegate's key-auth plugin: it lets a request through
// only with the API key of one of the config's consumers, and tells later
// plugins and the access log which consumer it was.
//
// Consumers are the gateway config's top-level list; key-auth gets them from
// pluginsdk.Env.Consumers:
//
//	consumers:
//	  - username: alice
//	    key: ${ALICE_KEY}
//	routes:
//	  - uri: /v1/*
//	    plugins:
//	      key-auth:
//	        header: apikey           # default; "" disables header keys
//	        query: apikey            # default; "" disables query keys
//	        hide_credentials: true   # default
//
// In the access phase (priority 2500) the key is taken from the header, else
// from the query parameter. A request without one gets a 401 "Missing API
// key in request", one whose key is no consumer's a 401 "Invalid API key in
// request", both as JSON errors shaped by the request's renderer
// (OpenAI's by default) with WWW-Authenticate: Key realm="phasegate". The
// key is compared with every consumer's, always all of them, as SHA-256 digests with
// crypto/subtle.ConstantTimeCompare, so that neither which consumer matched
// nor the keys' lengths show in the response time.
//
// On success the consumer's username is stored under Consumer (read it with
// ConsumerFrom) and, with hide_credentials (the default, unlike APISIX's
// key-auth whose default is false), the header and every occurrence of the
// query parameter are removed before any later plugin or the upstream sees
// the request: a consumer's key never leaves the gateway unless a route
// sets hide_credentials: false. key-auth keeps only digests of the keys; it
// never logs a key nor puts it anywhere else.
package keyauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/httpx"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Name is the plugin's name in routes' plugins mappings and in logs.
const Name = "key-auth"

// Defaults of Config.
const (
	DefaultHeader = "apikey"
	DefaultQuery  = "apikey"
)

// priority places key-auth after request-id and before the plugins that
// need to know the consumer (rate limits, quotas).
const priority = 2500

// Realm is the realm of the WWW-Authenticate challenge on key-auth's 401s.
const Realm = "phasegate"

// Error messages of key-auth's 401 responses.
const (
	MsgMissingKey = "Missing API key in request"
	MsgInvalidKey = "Invalid API key in request"
)

// Consumer is the request value holding the username of the consumer whose
// key the request carried.
var Consumer = pluginsdk.Consumer

// ConsumerFrom returns the consumer's username stored in v, or "" if the
// request was not authenticated by key-auth.
func ConsumerFrom(v *phases.Values) string {
	name, _ := Consumer.Get(v)
	return name
}

// Config is key-auth's configuration. Start from DefaultConfig.
type Config struct {
	// Header is the request header carrying the key; "" disables it.
	Header string `yaml:"header"`
	// Query is the query parameter carrying the key; "" disables it.
	Query string `yaml:"query"`
	// HideCredentials removes the header and the query parameter from the
	// request before the upstream sees it. Default true: the key stays in
	// the gateway unless a route opts out.
	HideCredentials bool `yaml:"hide_credentials"`
}

// DefaultConfig returns key-auth's defaults.
func DefaultConfig() Config {
	return Config{Header: DefaultHeader, Query: DefaultQuery, HideCredentials: true}
}

// Validate reports the config's problems.
func (c *Config) Validate() []pluginsdk.FieldError {
	var errs []pluginsdk.FieldError
	if c.Header == "" && c.Query == "" {
		errs = append(errs, pluginsdk.FieldError{Msg: "header and query are both empty: no request could carry a key"})
	}
	if c.Header != "" && !httpx.IsToken(c.Header) {
		errs = append(errs, pluginsdk.FieldError{Field: "header", Msg: fmt.Sprintf("%q is not a valid HTTP header name", c.Header)})
	}
	return errs
}

// Spec declares key-auth to the gateway's registry.
var Spec = pluginsdk.Typed(pluginsdk.Spec{Name: Name}, DefaultConfig,
	func(c Config, env pluginsdk.Env) (phases.Plugin, error) { return New(c, env.Consumers) })

// Plugin is the key-auth plugin. It is safe for concurrent use.
type Plugin struct {
	header    string
	query     string
	hide      bool
	consumers []consumer
}

// consumer is a consumer as key-auth keeps it: never the key itself.
type consumer struct {
	name   string
	digest [sha256.Size]byte
}

// New builds the plugin from cfg, which must be valid (see Config.Validate),
// and consumers, whose usernames and keys must be non-empty and unique. With
// no consumers every request is refused.
func New(cfg Config, consumers []pluginsdk.ConsumerConfig) (*Plugin, error) {
	errs := []error{pluginsdk.ConfigError(Name, cfg.Validate())}
	p := &Plugin{
		header:    cfg.Header,
		query:     cfg.Query,
		hide:      cfg.HideCredentials,
		consumers: make([]consumer, 0, len(consumers)),
	}
	if p.header != "" {
		p.header = http.CanonicalHeaderKey(p.header)
	}
	byName := map[string]int{}
	byDigest := map[[sha256.Size]byte]int{}
	for i, c := range consumers {
		// Errors name consumers by index and username, never by key.
		switch prev, dup := byName[c.Username]; {
		case c.Username == "":
			errs = append(errs, fmt.Errorf("%s: consumers[%d] has an empty username", Name, i))
		case dup:
			errs = append(errs, fmt.Errorf("%s: consumers[%d]: username %q is also consumers[%d]'s", Name, i, c.Username, prev))
		default:
			byName[c.Username] = i
		}
		if c.Key == "" {
			errs = append(errs, fmt.Errorf("%s: consumers[%d] (%q) has an empty key", Name, i, c.Username))
			continue
		}
		d := sha256.Sum256([]byte(c.Key))
		if prev, dup := byDigest[d]; dup {
			errs = append(errs, fmt.Errorf("%s: consumers[%d] (%q) has the same key as consumers[%d] (%q)", Name, i, c.Username, prev, consumers[prev].Username))
			continue
		}
		byDigest[d] = i
		p.consumers = append(p.consumers, consumer{name: c.Username, digest: d})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Name implements phases.Plugin.
func (*Plugin) Name() string { return Name }

// LogFields adds the authenticated consumer to the access log as
// "consumer" (docs/metrics.md).
func (*Plugin) LogFields(s *phases.Summary, ev *zerolog.Event) {
	if c := ConsumerFrom(s.Values); c != "" {
		ev.Str("consumer", c)
	}
}

// Priority implements phases.Prioritized.
func (*Plugin) Priority() int { return priority }

// Access implements phases.AccessHook: it answers 401 unless the request
// carries a consumer's key, and otherwise records the consumer and, with
// hide_credentials, removes the key from the request.
func (p *Plugin) Access(ctx context.Context, r *phases.Request) phases.Exit {
	key := p.key(r)
	if key == "" {
		return unauthorized(MsgMissingKey)
	}
	name, ok := p.match(key)
	if !ok {
		return unauthorized(MsgInvalidKey)
	}
	Consumer.Set(r.Values, name)
	if p.hide {
		if p.header != "" {
			r.Header.Del(p.header)
		}
		if p.query != "" {
			u := r.URL
			u.RawQuery = withoutParam(u.RawQuery, p.query)
		}
	}
	return phases.Exit{}
}

// key returns the request's key: the header's, else the query parameter's,
// else "".
func (p *Plugin) key(r *phases.Request) string {
	if p.header != "" {
		if k := r.Header.Get(p.header); k != "" {
			return k
		}
	}
	if p.query != "" {
		return queryParam(r.URL.RawQuery, p.query)
	}
	return ""
}

// match compares key with every consumer's key in constant time: the
// digests have a fixed length, every consumer is compared, and the match
// is selected without a branch.
func (p *Plugin) match(key string) (string, bool) {
	d := sha256.Sum256([]byte(key))
	found := -1
	for i := range p.consumers {
		eq := subtle.ConstantTimeCompare(d[:], p.consumers[i].digest[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return "", false
	}
	return p.consumers[found].name, true
}

// unauthorized is a 401 with a challenge, its body shaped by the
// request's renderer (OpenAI's by default).
func unauthorized(msg string) phases.Exit {
	return phases.Error(http.StatusUnauthorized, "invalid_request_error", msg).
		WithHeader("Www-Authenticate", `Key realm="`+Realm+`"`)
}

// queryParam returns the first non-empty value of the query parameter name
// in rawQuery, decoded as url.ParseQuery would (a value that cannot be
// decoded is taken as it is).
func queryParam(rawQuery, name string) string {
	for rawQuery != "" {
		var seg string
		seg, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(seg, "=")
		if unescape(k) != name {
			continue
		}
		if v = unescape(v); v != "" {
			return v
		}
	}
	return ""
}

// withoutParam returns rawQuery without any occurrence of the parameter
// name, keeping the other parameters in their order and encoding.
func withoutParam(rawQuery, name string) string {
	if rawQuery == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(len(rawQuery))
	for rawQuery != "" {
		var seg string
		seg, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, _, _ := strings.Cut(seg, "=")
		if unescape(k) == name {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(seg)
	}
	return b.String()
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// Interface guards.
var (
	_ phases.AccessHook  = (*Plugin)(nil)
	_ phases.Prioritized = (*Plugin)(nil)
)
