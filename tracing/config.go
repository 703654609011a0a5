package tracing

import (
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/phasegate/phasegate/yamlconf"
)

// Defaults, used for what neither the config nor the environment sets
// (docs/tracing.md).
const (
	DefaultProtocol     = ProtocolGRPC
	DefaultGRPCEndpoint = "localhost:4317"
	DefaultHTTPEndpoint = "localhost:4318"
	DefaultTimeout      = 10 * time.Second
	DefaultServiceName  = "phasegate"
	DefaultRatio        = 1.0
)

// Protocols of otlp.protocol.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http" // OTLP/HTTP with protobuf bodies
)

// httpTracesPath is where OTLP/HTTP receivers take traces.
const httpTracesPath = "/v1/traces"

// FieldError is a problem in a Config, at Field ("otlp.timeout",
// `otlp.headers["x-key"]`, "" for the block as a whole). The gateway's
// config decoder positions each one at its field.
type FieldError = yamlconf.FieldError

// Config is the top-level tracing: block. Tracing is off without one. A
// field left out takes its OTEL_* environment variable, as the OTel SDK
// defines it, and then its default: the file wins over the environment,
// which wins over the defaults (docs/tracing.md).
type Config struct {
	OTLP OTLPConfig `yaml:"otlp"`
	// ServiceName is the service.name resource attribute; else
	// OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES,
	// else "phasegate".
	ServiceName string        `yaml:"service_name"`
	Sampler     SamplerConfig `yaml:"sampler"`
}

// OTLPConfig is where and how spans are exported.
type OTLPConfig struct {
	// Endpoint is the collector's host:port; else
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT,
	// else localhost:4317 (grpc) or localhost:4318 (http).
	Endpoint string `yaml:"endpoint"`
	// Protocol is grpc or http (OTLP/HTTP, protobuf); else
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL
	// (grpc or http/protobuf), else grpc.
	Protocol string `yaml:"protocol"`
	// Insecure sends spans without TLS; else OTEL_EXPORTER_OTLP_TRACES_INSECURE,
	// else OTEL_EXPORTER_OTLP_INSECURE, else the scheme of an endpoint
	// taken from the environment (http:// is plaintext), else true exactly
	// when the endpoint's host is a loopback address or localhost.
	Insecure *bool `yaml:"insecure"`
	// Headers are sent with every export (credentials of a hosted
	// collector); when set they replace OTEL_EXPORTER_OTLP_TRACES_HEADERS
	// and OTEL_EXPORTER_OTLP_HEADERS.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds each export, retries included; 0 takes
	// OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, else OTEL_EXPORTER_OTLP_TIMEOUT
	// (milliseconds), else 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// SamplerConfig decides which new traces are recorded. When the block sets
// neither field, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG apply as
// the SDK reads them, and without them every trace is sampled, parent-based.
type SamplerConfig struct {
	// Ratio is the fraction of traces sampled, 0 to 1 (default 1).
	Ratio *float64 `yaml:"ratio"`
	// ParentBased follows the sampled flag of an incoming traceparent,
	// applying Ratio only to traces that start here (default true).
	ParentBased *bool `yaml:"parent_based"`
}

// Validate reports every problem of c, each at its field.
func (c *Config) Validate() []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	o := c.OTLP
	switch o.Protocol {
	case "", ProtocolGRPC, ProtocolHTTP:
	default:
		add("otlp.protocol", "must be grpc or http, got %q", o.Protocol)
	}
	if o.Endpoint != "" {
		if msg := checkHostPort(o.Endpoint); msg != "" {
			add("otlp.endpoint", "%s", msg)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(o.Headers)) {
		value, field := o.Headers[name], yamlconf.PathKey("otlp.headers", name)
		if !httpguts.ValidHeaderFieldName(name) {
			add(field, "%q is not a valid header name", name)
		}
		if !httpguts.ValidHeaderFieldValue(value) {
			add(field, "the value holds a byte a header cannot carry (a control character or a line break)")
		}
	}
	if o.Timeout < 0 {
		add("otlp.timeout", "must not be negative, got %s (0 or absent: the environment's, else %s)", o.Timeout, DefaultTimeout)
	}
	if r := c.Sampler.Ratio; r != nil && (math.IsNaN(*r) || *r < 0 || *r > 1) {
		add("sampler.ratio", "must be between 0 and 1, got %v", *r)
	}
	return errs
}

// checkHostPort returns what is wrong with a host:port, or "".
func checkHostPort(s string) string {
	if strings.Contains(s, "://") {
		return "must be host:port without a scheme, like 127.0.0.1:4317 (insecure: true sends plaintext)"
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return "must be host:port, like 127.0.0.1:4317"
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Sprintf("port %q must be a number from 1 to 65535", port)
	}
	return ""
}

// exporterSettings is where and how spans go, once the config, the
// environment and the defaults are combined.
type exporterSettings struct {
	protocol string
	url      string // scheme://host:port/path; the scheme says whether TLS is used
	headers  map[string]string
	timeout  time.Duration
}

// lookupEnv is how settings read the environment; tests replace it.
type lookupEnv func(string) (string, bool)

// env returns the first of the signal-specific and generic variables
// OTEL_EXPORTER_OTLP_TRACES_<name> and OTEL_EXPORTER_OTLP_<name> that is
// set and not blank, and which one it was.
func (l lookupEnv) otlp(name string) (value, key string, ok bool) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_" + name, "OTEL_EXPORTER_OTLP_" + name} {
		if v, set := l(k); set && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), k, true
		}
	}
	return "", "", false
}

// settings combines c, the environment and the defaults. The variables it
// does not read (certificates, compression, and the headers when the
// config has none) are left to the SDK's exporter, which reads them
// itself. An error names a variable whose value cannot be used.
func (c *Config) settings(env lookupEnv) (exporterSettings, error) {
	if env == nil {
		env = os.LookupEnv
	}
	o := c.OTLP
	s := exporterSettings{protocol: o.Protocol, headers: o.Headers, timeout: o.Timeout}

	if s.protocol == "" {
		s.protocol = DefaultProtocol
		if v, k, ok := env.otlp("PROTOCOL"); ok {
			switch v {
			case "grpc":
				s.protocol = ProtocolGRPC
			case "http/protobuf":
				s.protocol = ProtocolHTTP
			default:
				return s, fmt.Errorf("%s=%q: phasegate exports traces with grpc or http/protobuf", k, v)
			}
		}
	}

	if s.timeout == 0 {
		s.timeout = DefaultTimeout
		if v, k, ok := env.otlp("TIMEOUT"); ok {
			ms, err := strconv.Atoi(v)
			if err != nil || ms <= 0 {
				return s, fmt.Errorf("%s=%q: must be a positive number of milliseconds", k, v)
			}
			s.timeout = time.Duration(ms) * time.Millisecond
		}
	}

	var insecure *bool
	if o.Insecure != nil {
		insecure = o.Insecure
	} else if v, k, ok := env.otlp("INSECURE"); ok {
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			return s, fmt.Errorf("%s=%q: must be true or false", k, v)
		}
		insecure = &b
	}

	hostPort, path := o.Endpoint, httpTracesPath
	if hostPort == "" {
		u, err := envEndpoint(env)
		if err != nil {
			return s, err
		}
		if u != nil {
			hostPort, path = u.Host, u.Path
			if insecure == nil {
				plain := u.Scheme == "http"
				insecure = &plain
			}
		}
	}
	if hostPort == "" {
		hostPort = DefaultGRPCEndpoint
		if s.protocol == ProtocolHTTP {
			hostPort = DefaultHTTPEndpoint
		}
	}
	if insecure == nil {
		loop := isLoopback(hostPort)
		insecure = &loop
	}
	scheme := "https"
	if *insecure {
		scheme = "http"
	}
	s.url = (&url.URL{Scheme: scheme, Host: hostPort, Path: path}).String()
	return s, nil
}

// envEndpoint reads the endpoint variables as the OTel SDK does: the
// signal-specific URL is used as it is (its path, "/" when empty, is
// where OTLP/HTTP posts), the generic one is a base URL that /v1/traces is
// appended to. It returns nil when neither is set.
func envEndpoint(env lookupEnv) (*url.URL, error) {
	v, k, ok := env.otlp("ENDPOINT")
	if !ok {
		return nil, nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s=%q: must be a URL like http://collector:4317", k, v)
	}
	if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
		u.Path = strings.TrimSuffix(u.Path, "/") + httpTracesPath
	} else if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

// isLoopback reports whether host:port names this machine: localhost or a
// loopback address, where TLS protects nothing.
func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
