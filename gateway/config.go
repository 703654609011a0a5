package gateway

import (
	"cmp"
	_ "embed"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/tracing"
	"github.com/phasegate/phasegate/yamlconf"
)

// Default addresses and limits (docs/configuration.md).
const (
	DefaultListen          = "127.0.0.1:9080"
	DefaultAdminListen     = "127.0.0.1:9091"
	DefaultMockLLMListen   = "127.0.0.1:9082"
	DefaultShutdownTimeout = 30 * time.Second
)

// Defaults of the client: block (docs/configuration.md).
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 60 * time.Second
	DefaultSendTimeout   = 60 * time.Second
	DefaultIdleTimeout   = 120 * time.Second
	DefaultMaxBodyBytes  = (8 << 20)
)

// DemoConfig is the embedded demo: the built-in mock LLM and a chat route
// through it, so that `phasegate run` works on a fresh machine.
//
//go:embed demo.yaml
var DemoConfig []byte

// DemoConfigName is the file name problems in DemoConfig are reported under.
const DemoConfigName = "demo.yaml (embedded)"

// Config is a gateway's configuration, as read by LoadConfig.
type Config struct {
	Listen          string                     `yaml:"listen"`
	Admin           AdminConfig                `yaml:"admin"`
	Log             LogConfig                  `yaml:"log"`
	Metrics         MetricsConfig              `yaml:"metrics"`
	MockLLM         *MockLLMConfig             `yaml:"mock_llm"`
	ShutdownTimeout time.Duration              `yaml:"shutdown_timeout"`
	Client          ClientConfig               `yaml:"client"`
	Consumers       []pluginsdk.ConsumerConfig `yaml:"consumers"`
	Routes          []RouteConfig              `yaml:"routes"`
	// Tracing turns OpenTelemetry tracing on (docs/tracing.md); nil is off.
	Tracing *tracing.Config `yaml:"tracing"`

	doc *yamlconf.Doc
	// reg is the registry the config was checked against; its request-id
	// runs on every route that does not configure one.
	reg *pluginsdk.Registry
}

// AdminConfig is the admin listener (/metrics, /healthz, /lifecycle).
type AdminConfig struct {
	Listen string `yaml:"listen"`
}

// ClientConfig bounds what one client may cost in time and memory, on the
// data plane (all fields) and on the admin listener (the timeouts). The
// timeouts follow nginx: client_header_timeout, client_body_timeout,
// send_timeout, keepalive_timeout; each body and send timeout bounds a gap
// between two reads or writes, never a total. A zero field of a Config
// built in Go takes its default; in a file, every field must be positive.
type ClientConfig struct {
	// HeaderTimeout bounds the arrival of a whole request head.
	HeaderTimeout time.Duration `yaml:"header_timeout"`
	// BodyTimeout bounds every wait for request body bytes.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// SendTimeout bounds every write to the client.
	SendTimeout time.Duration `yaml:"send_timeout"`
	// IdleTimeout bounds a keep-alive connection's wait for its next
	// request.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxBodyBytes is the request body limit of routes that set none.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// DefaultClientConfig returns the client: block's defaults.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		HeaderTimeout: DefaultHeaderTimeout,
		BodyTimeout:   DefaultBodyTimeout,
		SendTimeout:   DefaultSendTimeout,
		IdleTimeout:   DefaultIdleTimeout,
		MaxBodyBytes:  DefaultMaxBodyBytes,
	}
}

// withDefaults returns c with its zero fields set to their defaults.
func (c ClientConfig) withDefaults() ClientConfig {
	d := DefaultClientConfig()
	c.HeaderTimeout = cmp.Or(c.HeaderTimeout, d.HeaderTimeout)
	c.BodyTimeout = cmp.Or(c.BodyTimeout, d.BodyTimeout)
	c.SendTimeout = cmp.Or(c.SendTimeout, d.SendTimeout)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, d.IdleTimeout)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, d.MaxBodyBytes)
	return c
}

// LogConfig configures the zerolog JSON lines on stdout.
type LogConfig struct {
	// Level is trace, debug, info (default), warn or error.
	Level string `yaml:"level"`
	// AccessLog writes one line per request (default true).
	AccessLog *bool `yaml:"access_log"`
}

// MetricsConfig bounds the metrics' series.
type MetricsConfig struct {
	// MaxModelsPerRoute is how many distinct model labels each route's LLM
	// metrics may have; later models are recorded as "other" (default
	// metrics.DefaultMaxModelsPerRoute).
	MaxModelsPerRoute int `yaml:"max_models_per_route"`
}

// MockLLMConfig is the mock_llm block: `phasegate run` starts the built-in
// mock LLM in-process before the gateway; the gateway itself ignores it.
type MockLLMConfig struct {
	Listen string `yaml:"listen"`
	// ModerationWords are flagged by the mock's /v1/moderations.
	ModerationWords []string `yaml:"moderation_words"`
}

// RouteConfig is one route.
type RouteConfig struct {
	// ID is required and unique; it is the route label of every metric.
	ID string `yaml:"id" conf:"required"`
	// URI is an exact path, or a prefix when it ends in "/*" ("/api/*").
	URI string `yaml:"uri" conf:"required"`
	// Methods, when set, are the only methods the route serves (405 for others).
	Methods []string `yaml:"methods"`
	// Hosts, when set, are the only hosts the route serves; "*.example.com"
	// matches any subdomain.
	Hosts []string `yaml:"hosts"`
	// AllowEncodedSlashes keeps %2F and %5C (and a literal backslash) in
	// request paths as data, never as separators, for routing and for the
	// upstream; without it such a path is answered 400 (docs/configuration.md,
	// "Paths").
	AllowEncodedSlashes bool `yaml:"allow_encoded_slashes"`
	// Plugins maps plugin names to their configs.
	Plugins map[string]*yaml.Node `yaml:"plugins"`
	// Upstream proxies to plain HTTP nodes. A route has either this or an AI
	// upstream plugin, not both.
	Upstream *forward.Config `yaml:"upstream"`
	// MaxBodyBytes, when positive, is the route's request body limit
	// instead of client.max_body_bytes; an upstream plugin's own setting
	// (max_request_body_bytes) wins over both.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`

	plugins []pluginConfig
}

type pluginConfig struct {
	name string
	spec pluginsdk.Spec
	cfg  any
	path string
}

// AccessLogEnabled reports the effective access_log setting.
func (l LogConfig) AccessLogEnabled() bool { return l.AccessLog == nil || *l.AccessLog }

// LoadFile reads and checks the config file at path (see LoadConfig).
func LoadFile(path string, reg *pluginsdk.Registry) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return LoadConfig(path, data, reg, nil)
}

// LoadConfig parses data, the contents of file, expanding ${ENV} from env
// (nil means the process environment), decodes it strictly, applies
// defaults and checks everything that can be checked without building the
// plugins, including each plugin's own config against reg (nil means no
// plugins: pass plugins.Builtins() for phasegate's own). The error, if any, is a yamlconf.Problems: one line per problem,
// FILE:LINE:COL: path.to.field: what is wrong, all of them at once.
func LoadConfig(file string, data []byte, reg *pluginsdk.Registry, env func(string) (string, bool)) (*Config, error) {
	if reg == nil {
		reg = defaultPlugins()
	}
	doc, probs := yamlconf.Parse(file, data, env)
	if doc == nil {
		return nil, probs.Err()
	}
	cfg := &Config{doc: doc, Client: DefaultClientConfig()} // so that an explicit 0 can be told apart
	probs = append(probs, doc.Decode(cfg)...)
	cfg.setDefaults()
	cfg.reg = reg
	probs = append(probs, cfg.check(reg)...)
	probs.Sort()
	if len(probs) > 0 {
		return nil, dedupe(probs)
	}
	return cfg, nil
}

// dedupe drops repeated problems (the same line reported twice by two checks).
func dedupe(ps yamlconf.Problems) yamlconf.Problems {
	out := ps[:0]
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Metrics.MaxModelsPerRoute == 0 {
		c.Metrics.MaxModelsPerRoute = metrics.DefaultMaxModelsPerRoute
	}
	if c.MockLLM != nil && c.MockLLM.Listen == "" {
		c.MockLLM.Listen = DefaultMockLLMListen
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		for j, m := range r.Methods {
			r.Methods[j] = strings.ToUpper(m)
		}
		if r.Upstream != nil {
			r.Upstream.SetDefaults()
		}
	}
}

// problem positions a problem at path in the config file.
func (c *Config) problem(path, format string, args ...any) yamlconf.Problem {
	if c.doc == nil {
		return yamlconf.Problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	}
	return c.doc.Problemf(path, format, args...)
}

// File is the name of the file the config was read from.
func (c *Config) File() string {
	if c.doc == nil {
		return ""
	}
	return c.doc.File
}

var methodOK = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true,
}

func (c *Config) check(reg *pluginsdk.Registry) yamlconf.Problems {
	var ps yamlconf.Problems
	add := func(path, format string, args ...any) { ps.Add(c.problem(path, format, args...)) }
	checkAddr := func(path, addr string) {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			add(path, "must be host:port, like 127.0.0.1:9080")
		}
	}
	checkAddr("listen", c.Listen)
	checkAddr("admin.listen", c.Admin.Listen)
	if c.MockLLM != nil {
		checkAddr("mock_llm.listen", c.MockLLM.Listen)
	}
	if _, err := zerolog.ParseLevel(c.Log.Level); err != nil || c.Log.Level == "" {
		add("log.level", "must be one of trace, debug, info, warn, error")
	}
	if c.ShutdownTimeout < 0 {
		add("shutdown_timeout", "must not be negative")
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"header_timeout", c.Client.HeaderTimeout}, {"body_timeout", c.Client.BodyTimeout},
		{"send_timeout", c.Client.SendTimeout}, {"idle_timeout", c.Client.IdleTimeout},
	} {
		if f.d <= 0 {
			add("client."+f.name, "must be positive, got %s", f.d)
		}
	}
	if c.Client.MaxBodyBytes <= 0 {
		add("client.max_body_bytes", "must be positive, got %d", c.Client.MaxBodyBytes)
	}
	if c.Tracing != nil {
		for _, e := range c.Tracing.Validate() {
			add(strings.TrimSuffix("tracing."+e.Field, "."), "%s", e.Msg)
		}
	}
	if c.Metrics.MaxModelsPerRoute < 0 {
		add("metrics.max_models_per_route", "must be at least 1")
	}
	users, keys := map[string]int{}, map[string]int{}
	for i, cons := range c.Consumers {
		p := fmt.Sprintf("consumers[%d]", i)
		if j, dup := users[cons.Username]; dup && cons.Username != "" {
			add(p+".username", "duplicates consumers[%d].username", j)
		}
		if j, dup := keys[cons.Key]; dup && cons.Key != "" {
			add(p+".key", "duplicates the key of consumers[%d]", j)
		}
		users[cons.Username], keys[cons.Key] = i, i
	}
	ids := map[string]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		if j, dup := ids[r.ID]; dup && r.ID != "" {
			add(p+".id", "duplicates routes[%d].id %q", j, r.ID)
		}
		ids[r.ID] = i
		if r.URI != "" {
			if msg := checkURI(r.URI); msg != "" {
				add(p+".uri", "%s", msg)
			}
		}
		if r.MaxBodyBytes < 0 {
			add(p+".max_body_bytes", "must not be negative, got %d (0 keeps client.max_body_bytes)", r.MaxBodyBytes)
		}
		for j, m := range r.Methods {
			if !methodOK[m] {
				add(fmt.Sprintf("%s.methods[%d]", p, j), "unknown method %q", m)
			}
		}
		for j, h := range r.Hosts {
			if msg := checkHost(h); msg != "" {
				add(fmt.Sprintf("%s.hosts[%d]", p, j), "%s", msg)
			}
		}
		var upstreams []string
		if r.Upstream != nil {
			upstreams = append(upstreams, upstreamBlock)
		}
		names := make([]string, 0, len(r.Plugins))
		for name := range r.Plugins {
			names = append(names, name)
		}
		sort.Strings(names)
		r.plugins = r.plugins[:0]
		for _, name := range names {
			pp := yamlconf.PathKey(p+".plugins", name)
			spec, ok := reg.Lookup(name)
			if !ok {
				add(pp, "unknown plugin %q (known: %s)", name, strings.Join(reg.Names(), ", "))
				continue
			}
			if spec.Upstream {
				upstreams = append(upstreams, name)
			}
			cfg, probs := c.decodePlugin(spec, r.Plugins[name], pp)
			ps = append(ps, probs...)
			if len(probs) == 0 {
				r.plugins = append(r.plugins, pluginConfig{name: name, spec: spec, cfg: cfg, path: pp})
			}
		}
		if msg := upstreamProblem(upstreams); msg != "" {
			add(p, "%s", msg)
		}
	}
	return ps
}

// upstreamBlock names a route's upstream: block among its upstreams.
const upstreamBlock = "upstream"

// upstreamProblem is what is wrong with a route whose upstreams (the
// upstream: block and the plugins that provide one) are named, or "" when
// there is exactly one: config loading and route building both ask.
func upstreamProblem(names []string) string {
	switch len(names) {
	case 1:
		return ""
	case 0:
		return "route has no upstream: add an upstream: block or an AI upstream plugin (ai-proxy, ai-proxy-multi)"
	}
	names = slices.Sorted(slices.Values(names))
	return fmt.Sprintf("route has %d upstreams (%s): keep exactly one of upstream: and the AI upstream plugins", len(names), strings.Join(names, ", "))
}

func (c *Config) decodePlugin(spec pluginsdk.Spec, n *yaml.Node, path string) (any, yamlconf.Problems) {
	if spec.Config == nil {
		if n != nil && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") && !(n.Kind == yaml.MappingNode && len(n.Content) == 0) {
			return nil, yamlconf.Problems{c.problem(path, "plugin %q takes no configuration", spec.Name)}
		}
		return nil, nil
	}
	cfg := spec.Config()
	if n == nil || c.doc == nil {
		return cfg, nil
	}
	return cfg, c.doc.DecodeNode(n, path, cfg)
}

func checkURI(uri string) string {
	switch {
	case !strings.HasPrefix(uri, "/"):
		return `must start with "/"`
	case strings.Contains(uri, "*") && !strings.HasSuffix(uri, "/*"):
		return `"*" is only allowed as a final "/*" (a prefix match, like "/api/*")`
	case strings.Count(uri, "*") > 1:
		return `only one "*" is allowed`
	case strings.ContainsAny(uri, "?# \t"):
		return "must be a path without query, fragment or spaces"
	}
	return ""
}

func checkHost(h string) string {
	name := strings.TrimPrefix(h, "*.")
	switch {
	case name == "":
		return "must not be empty"
	case strings.Contains(name, "*"):
		return `a wildcard is only allowed as a leading "*."`
	case strings.ContainsAny(name, "/: \t"):
		return "must be a host name without scheme, port or path"
	}
	return ""
}
