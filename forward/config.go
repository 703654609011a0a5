package forward

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/phasegate/phasegate/pluginsdk"
)

// Defaults of Config's optional fields.
const (
	DefaultTimeout  = 60 * time.Second
	DefaultScheme   = "http"
	DefaultPassHost = "pass"
)

// Config is a route's `upstream:` block.
type Config struct {
	// Nodes maps each node's "host:port" to its weight. A node of weight 0
	// is drained: it is never picked. At least one node must have a weight
	// of 1 or more.
	Nodes map[string]int `yaml:"nodes" conf:"required"`
	// Timeout bounds each wait on the upstream, separately:
	//
	//   - from sending the request (connecting, writing the request line,
	//     header and body) to receiving the response header;
	//   - then each read of the response body: the time from asking the
	//     upstream for more bytes to getting some. The clock runs only while
	//     the proxy waits on the upstream, so a slow client (or slow body
	//     filters) never counts against the upstream, and a response that
	//     keeps streaming may last as long as it likes, but an upstream that
	//     stalls mid-body for Timeout is cut.
	//
	// A timeout before the response header is answered with 504; one in the
	// body, after the response has started, aborts the response (the client
	// sees it truncated). The error satisfies errors.Is(err,
	// context.DeadlineExceeded). 0 means DefaultTimeout; negative values are
	// invalid.
	Timeout time.Duration `yaml:"timeout"`
	// Scheme is "http" (default) or "https".
	Scheme string `yaml:"scheme"`
	// PassHost says which Host the upstream gets: "pass" (default), the
	// client's; "node", the picked node's "host:port".
	PassHost string `yaml:"pass_host"`
}

// SetDefaults fills the optional fields left empty.
func (c *Config) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Scheme == "" {
		c.Scheme = DefaultScheme
	}
	if c.PassHost == "" {
		c.PassHost = DefaultPassHost
	}
}

// Validate reports every problem of the block, with field paths relative to
// it in the config's path syntax ("timeout", `nodes["10.0.0.1:80"]`), nodes
// in sorted order. It accepts unset optional fields as well as defaulted
// ones.
func (c *Config) Validate() []pluginsdk.FieldError {
	var errs []pluginsdk.FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, pluginsdk.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(c.Nodes) == 0 {
		add("nodes", "must list at least one node")
	} else {
		addrs := make([]string, 0, len(c.Nodes))
		for a := range c.Nodes {
			addrs = append(addrs, a)
		}
		sort.Strings(addrs)
		live := false
		for _, a := range addrs {
			field := pathKey("nodes", a)
			if err := checkHostPort(a); err != nil {
				add(field, "%v", err)
			}
			switch w := c.Nodes[a]; {
			case w < 0:
				add(field, "weight must not be negative, got %d (0 drains the node)", w)
			case w > 0:
				live = true
			}
		}
		if !live {
			add("nodes", "at least one node needs a weight of 1 or more")
		}
	}
	if c.Timeout < 0 {
		add("timeout", "must be positive, got %s", c.Timeout)
	}
	switch c.Scheme {
	case "", "http", "https":
	default:
		add("scheme", `must be "http" or "https", got %q`, c.Scheme)
	}
	switch c.PassHost {
	case "", "pass", "node":
	default:
		add("pass_host", `must be "pass" or "node", got %q`, c.PassHost)
	}
	return errs
}

// checkHostPort checks that a is "host:port" with a non-empty host and a
// port in 1..65535.
func checkHostPort(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("node %q is not host:port", a)
	}
	if host == "" {
		return fmt.Errorf("node %q has no host", a)
	}
	for _, r := range host {
		if r <= ' ' || r == 0x7f || r == '/' || r == '@' || r == '?' || r == '#' || r > unicode.MaxASCII {
			return fmt.Errorf("node %q has an invalid host", a)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		return fmt.Errorf("node %q has an invalid port (want 1-65535)", a)
	}
	return nil
}

// pathKey is the path of key below base in the config's path syntax (as
// yamlconf.PathKey writes it): a plain key after a dot, any other key
// Go-quoted in brackets.
func pathKey(base, key string) string {
	plain := key != ""
	for _, r := range key {
		switch {
		case r == '.', r == '[', r == ']', r == '"', r == '\'', r == '\\',
			unicode.IsSpace(r), !unicode.IsPrint(r), r == unicode.ReplacementChar:
			plain = false
		}
	}
	if plain {
		return base + "." + key
	}
	return base + "[" + strconv.Quote(key) + "]"
}
