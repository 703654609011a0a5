package yamlconf_test

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/phasegate/phasegate/yamlconf"
)

// GatewayConfig resembles phasegate's top-level config.
type GatewayConfig struct {
	Listen          string            `yaml:"listen" conf:"required"`
	Admin           AdminConfig       `yaml:"admin"`
	ShutdownTimeout time.Duration     `yaml:"shutdown_timeout"`
	Routes          []Route           `yaml:"routes"`
	Limits          *Limits           `yaml:"limits,omitempty"`
	Debug           bool              `yaml:"debug"`
	Labels          map[string]string `yaml:"labels,omitempty"`
	Extra           any               `yaml:"extra,omitempty"`
}

type AdminConfig struct {
	Listen string `yaml:"listen"`
	Token  string `yaml:"token,omitempty"`
}

type Limits struct {
	MaxConns int32   `yaml:"max_conns"`
	Port     uint16  `yaml:"port"`
	Weight   int8    `yaml:"weight"`
	Burst    uint64  `yaml:"burst"`
	Count    int     `yaml:"count"`
	Ratio    float64 `yaml:"ratio"`
	Scale    float32 `yaml:"scale"`
}

type Route struct {
	ID       string                `yaml:"id" conf:"required"`
	URI      string                `yaml:"uri"`
	Methods  []string              `yaml:"methods,omitempty"`
	Plugins  map[string]*yaml.Node `yaml:"plugins,omitempty"`
	Upstream *Upstream             `yaml:"upstream,omitempty"`
}

type Upstream struct {
	Nodes   map[string]int `yaml:"nodes"`
	Timeout time.Duration  `yaml:"timeout"`
}

func (c *GatewayConfig) Validate() []yamlconf.FieldError {
	var errs []yamlconf.FieldError
	if c.ShutdownTimeout < 0 {
		errs = append(errs, yamlconf.FieldError{Field: "shutdown_timeout", Msg: "must not be negative"})
	}
	first := map[string]int{}
	for i, r := range c.Routes {
		if r.ID == "" {
			continue
		}
		if j, dup := first[r.ID]; dup {
			errs = append(errs, yamlconf.FieldError{
				Field: yamlconf.PathIndex("routes", i) + ".id",
				Msg:   fmt.Sprintf("duplicate route id %q (also used by routes[%d])", r.ID, j),
			})
			continue
		}
		first[r.ID] = i
	}
	return errs
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func (r *Route) Validate() []yamlconf.FieldError {
	var errs []yamlconf.FieldError
	if r.URI != "" && !strings.HasPrefix(r.URI, "/") {
		errs = append(errs, yamlconf.FieldError{Field: "uri", Msg: `must start with "/"`})
	}
	for i, m := range r.Methods {
		if !slices.Contains(httpMethods, m) {
			errs = append(errs, yamlconf.FieldError{Field: yamlconf.PathIndex("methods", i), Msg: fmt.Sprintf("unknown HTTP method %q", m)})
		}
	}
	if r.Upstream == nil && len(r.Plugins) == 0 {
		errs = append(errs, yamlconf.FieldError{Msg: "needs an upstream or at least one plugin"})
	}
	return errs
}

func (u *Upstream) Validate() []yamlconf.FieldError {
	var errs []yamlconf.FieldError
	if len(u.Nodes) == 0 {
		errs = append(errs, yamlconf.FieldError{Field: "nodes", Msg: "must list at least one node"})
	}
	keys := make([]string, 0, len(u.Nodes))
	for k := range u.Nodes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if u.Nodes[k] < 0 {
			errs = append(errs, yamlconf.FieldError{Field: yamlconf.PathKey("nodes", k), Msg: "weight must not be negative"})
		}
	}
	if u.Timeout < 0 {
		errs = append(errs, yamlconf.FieldError{Field: "timeout", Msg: "must not be negative"})
	}
	return errs
}

// AIProxyConfig is a plugin config, decoded with DecodeNode.
type AIProxyConfig struct {
	Endpoint  string         `yaml:"endpoint" conf:"required"`
	Model     string         `yaml:"model,omitempty"`
	Timeout   time.Duration  `yaml:"timeout"`
	Instances []AIInstance   `yaml:"instances,omitempty"`
	Options   map[string]any `yaml:"options,omitempty"`
}

type AIInstance struct {
	Name   string `yaml:"name" conf:"required"`
	Weight int    `yaml:"weight"`
}

func (c *AIProxyConfig) Validate() []yamlconf.FieldError {
	var errs []yamlconf.FieldError
	seen := map[string]bool{}
	for i, in := range c.Instances {
		if in.Name != "" && seen[in.Name] {
			errs = append(errs, yamlconf.FieldError{Field: yamlconf.PathIndex("instances", i) + ".name", Msg: fmt.Sprintf("duplicate instance name %q", in.Name)})
		}
		seen[in.Name] = true
	}
	return errs
}

type LimitCountConfig struct {
	Count      int           `yaml:"count" conf:"required"`
	TimeWindow time.Duration `yaml:"time_window" conf:"required"`
	Key        string        `yaml:"key,omitempty"`
}

// decodePlugins decodes every route's plugin configs the way the gateway
// does at load time.
func decodePlugins(doc *yamlconf.Doc, cfg *GatewayConfig) (map[string]any, yamlconf.Problems) {
	var probs yamlconf.Problems
	out := map[string]any{}
	for i, r := range cfg.Routes {
		names := make([]string, 0, len(r.Plugins))
		for name := range r.Plugins {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			path := yamlconf.PathKey(yamlconf.PathIndex("routes", i)+".plugins", name)
			var pc any
			switch name {
			case "ai-proxy":
				pc = &AIProxyConfig{Timeout: 60 * time.Second}
			case "limit-count":
				pc = &LimitCountConfig{}
			default:
				probs.Add(doc.Problemf(path, "unknown plugin %q", name))
				continue
			}
			probs = append(probs, doc.DecodeNode(r.Plugins[name], path, pc)...)
			out[path] = pc
		}
	}
	return out, probs
}

// Misc exercises the less common decoding rules.
type Misc struct {
	Common   `yaml:",inline"`
	Level    LogLevel       `yaml:"level"`
	Addr     netip.Addr     `yaml:"addr"`
	Pair     [2]int         `yaml:"pair"`
	Ptr      *int           `yaml:"ptr"`
	Deep     **string       `yaml:"deep"`
	Raw      yaml.Node      `yaml:"raw"`
	Ports    map[int]string `yaml:"ports"`
	Skipped  string         `yaml:"-"`
	Untagged string
	Hidden   string `yaml:"hidden,omitempty"`
	hidden   string //lint:ignore U1000 an unexported field the decoder must skip
}

type Common struct {
	Name string   `yaml:"name" conf:"required"`
	Tags []string `yaml:"tags"`
}

type LogLevel int

func (l *LogLevel) UnmarshalYAMLConf(n *yaml.Node) error {
	levels := []string{"debug", "info", "warn", "error"}
	if n.Kind == yaml.ScalarNode {
		if i := slices.Index(levels, n.Value); i >= 0 {
			*l = LogLevel(i)
			return nil
		}
	}
	return fmt.Errorf("unknown log level %q (want debug, info, warn or error)", n.Value)
}

// Unsupported holds Go types the decoder cannot fill.
type Unsupported struct {
	Ch    chan int     `yaml:"ch"`
	Iface fmt.Stringer `yaml:"iface"`
	C     complex128   `yaml:"c"`
	Fine  string       `yaml:"fine"`
}

// Extensible collects unknown keys in an inline map.
type Extensible struct {
	Name  string         `yaml:"name"`
	Extra map[string]int `yaml:",inline"`
}
