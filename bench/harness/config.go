package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is a phasegate config file (docs/configuration.md), as far as the
// benches write one. Zero fields are left out, so phasegate applies its
// defaults; Extra carries top-level blocks this type does not name.
type Config struct {
	// Comment is written as the file's first line, after "# ".
	Comment         string         `yaml:"-"`
	Listen          string         `yaml:"listen"`
	Admin           Admin          `yaml:"admin"`
	Log             Log            `yaml:"log"`
	MockLLM         *MockLLM       `yaml:"mock_llm,omitempty"`
	ShutdownTimeout time.Duration  `yaml:"shutdown_timeout,omitempty"`
	Client          *Client        `yaml:"client,omitempty"`
	Routes          []Route        `yaml:"routes"`
	Extra           map[string]any `yaml:",inline"`
}

// Admin is the admin listener.
type Admin struct {
	Listen string `yaml:"listen"`
}

// Log is the log block.
type Log struct {
	Level     string `yaml:"level,omitempty"`
	AccessLog bool   `yaml:"access_log"`
}

// MockLLM starts phasegate's built-in mock LLM.
type MockLLM struct {
	Listen string `yaml:"listen"`
}

// Client is the client: block, the bounds on each client.
type Client struct {
	HeaderTimeout time.Duration `yaml:"header_timeout,omitempty"`
	BodyTimeout   time.Duration `yaml:"body_timeout,omitempty"`
	SendTimeout   time.Duration `yaml:"send_timeout,omitempty"`
	IdleTimeout   time.Duration `yaml:"idle_timeout,omitempty"`
	MaxBodyBytes  int64         `yaml:"max_body_bytes,omitempty"`
}

// Route is one route: a plain upstream, or plugins with an AI upstream.
type Route struct {
	ID           string         `yaml:"id"`
	URI          string         `yaml:"uri"`
	Methods      []string       `yaml:"methods,omitempty"`
	Hosts        []string       `yaml:"hosts,omitempty"`
	Upstream     *Upstream      `yaml:"upstream,omitempty"`
	Plugins      map[string]any `yaml:"plugins,omitempty"`
	MaxBodyBytes int64          `yaml:"max_body_bytes,omitempty"`
}

// Upstream is a plain route's upstream.
type Upstream struct {
	Nodes   map[string]int `yaml:"nodes"`
	Timeout time.Duration  `yaml:"timeout,omitempty"`
}

// NewConfig returns a config listening on free loopback ports (phasegate
// reports the real ones in its Ready line) with the access log on.
func NewConfig(comment string) *Config {
	return &Config{
		Comment: comment,
		Listen:  "127.0.0.1:0",
		Admin:   Admin{Listen: "127.0.0.1:0"},
		Log:     Log{Level: "info", AccessLog: true},
	}
}

// UpstreamRoute is a plain route from uri (for hosts, when given) to the
// one node at addr.
func UpstreamRoute(id, uri, addr string, timeout time.Duration, hosts ...string) Route {
	return Route{ID: id, URI: uri, Hosts: hosts, Upstream: &Upstream{Nodes: map[string]int{addr: 1}, Timeout: timeout}}
}

// Render returns the config as YAML.
func (c *Config) Render() ([]byte, error) {
	var b bytes.Buffer
	if c.Comment != "" {
		for line := range strings.Lines(c.Comment) {
			fmt.Fprintf(&b, "# %s\n", strings.TrimSuffix(line, "\n"))
		}
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteFile replaces the file at path with the config atomically, so that
// a reload (SIGHUP) never reads half a file.
func (c *Config) WriteFile(path string) error {
	data, err := c.Render()
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), ".next-"+filepath.Base(path))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
