package tracing

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phasegate/phasegate/yamlconf"
)

func ptr[T any](v T) *T { return &v }

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []FieldError
	}{
		{"empty block", Config{}, nil},
		{"everything set", Config{
			OTLP:        OTLPConfig{Endpoint: "collector:4317", Protocol: "http", Insecure: ptr(true), Headers: map[string]string{"X-Key": "v"}, Timeout: time.Second},
			ServiceName: "gw", Sampler: SamplerConfig{Ratio: ptr(0.0), ParentBased: ptr(false)},
		}, nil},
		{"bad protocol", Config{OTLP: OTLPConfig{Protocol: "http/protobuf"}},
			[]FieldError{{Field: "otlp.protocol", Msg: `must be grpc or http, got "http/protobuf"`}}},
		{"endpoint with a scheme", Config{OTLP: OTLPConfig{Endpoint: "http://c:4317"}},
			[]FieldError{{Field: "otlp.endpoint", Msg: "must be host:port without a scheme, like 127.0.0.1:4317 (insecure: true sends plaintext)"}}},
		{"endpoint without a port", Config{OTLP: OTLPConfig{Endpoint: "collector"}},
			[]FieldError{{Field: "otlp.endpoint", Msg: "must be host:port, like 127.0.0.1:4317"}}},
		{"endpoint port out of range", Config{OTLP: OTLPConfig{Endpoint: "c:70000"}},
			[]FieldError{{Field: "otlp.endpoint", Msg: `port "70000" must be a number from 1 to 65535`}}},
		{"bad header name and value", Config{OTLP: OTLPConfig{Headers: map[string]string{"bad name": "ok", "x-ok": "a\r\nb"}}},
			[]FieldError{
				{Field: "otlp.headers.x-ok", Msg: "the value holds a byte a header cannot carry (a control character or a line break)"},
				{Field: `otlp.headers["bad name"]`, Msg: `"bad name" is not a valid header name`},
			}},
		{"negative timeout", Config{OTLP: OTLPConfig{Timeout: -time.Second}},
			[]FieldError{{Field: "otlp.timeout", Msg: "must not be negative, got -1s (0 or absent: the environment's, else 10s)"}}},
		{"ratio above 1", Config{Sampler: SamplerConfig{Ratio: ptr(1.5)}},
			[]FieldError{{Field: "sampler.ratio", Msg: "must be between 0 and 1, got 1.5"}}},
		{"ratio NaN", Config{Sampler: SamplerConfig{Ratio: ptr(math.NaN())}},
			[]FieldError{{Field: "sampler.ratio", Msg: "must be between 0 and 1, got NaN"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.Validate()
			slices.SortFunc(got, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
			if !slices.Equal(got, tc.want) {
				t.Errorf("Validate() = %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestDecodeYAML decodes a tracing: block as the gateway's decoder does:
// strictly, with the problems positioned at their fields.
func TestDecodeYAML(t *testing.T) {
	const file = `tracing:
  otlp: { endpoint: "127.0.0.1:4317", protocol: grpc, insecure: true, headers: {x-key: v}, timeout: 5s }
  service_name: phasegate
  sampler: { ratio: 1.0, parent_based: true }
`
	var out struct {
		Tracing *Config `yaml:"tracing"`
	}
	doc, probs := yamlconf.Parse("gw.yaml", []byte(file), nil)
	probs = append(probs, doc.Decode(&out)...)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	want := Config{
		OTLP:        OTLPConfig{Endpoint: "127.0.0.1:4317", Protocol: "grpc", Insecure: ptr(true), Headers: map[string]string{"x-key": "v"}, Timeout: 5 * time.Second},
		ServiceName: "phasegate",
		Sampler:     SamplerConfig{Ratio: ptr(1.0), ParentBased: ptr(true)},
	}
	if out.Tracing == nil || !reflect.DeepEqual(*out.Tracing, want) {
		t.Errorf("decoded %+v", out.Tracing)
	}

	const bad = `tracing:
  otlp: { endpoint: "c", protocl: grpc }
  sampler: { ratio: 2 }
`
	doc, probs = yamlconf.Parse("gw.yaml", []byte(bad), nil)
	probs = append(probs, doc.Decode(&out)...)
	probs.Sort()
	wantProbs := `gw.yaml:2:21: tracing.otlp.endpoint: must be host:port, like 127.0.0.1:4317
gw.yaml:2:26: tracing.otlp.protocl: unknown field "protocl" (did you mean "protocol"?)
gw.yaml:3:21: tracing.sampler.ratio: must be between 0 and 1, got 2`
	if got := probs.Error(); got != wantProbs {
		t.Errorf("problems:\n%s\nwant:\n%s", got, wantProbs)
	}
}

// env is a fake environment for settings.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

func TestSettingsPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		env  env
		want exporterSettings
	}{
		{"defaults: grpc to localhost, plaintext on loopback", Config{}, nil,
			exporterSettings{protocol: "grpc", url: "http://localhost:4317/v1/traces", timeout: 10 * time.Second}},
		{"http default port", Config{OTLP: OTLPConfig{Protocol: "http"}}, nil,
			exporterSettings{protocol: "http", url: "http://localhost:4318/v1/traces", timeout: 10 * time.Second}},
		{"a remote endpoint gets TLS by default", Config{OTLP: OTLPConfig{Endpoint: "collector.example:4317"}}, nil,
			exporterSettings{protocol: "grpc", url: "https://collector.example:4317/v1/traces", timeout: 10 * time.Second}},
		{"an IPv6 loopback is plaintext", Config{OTLP: OTLPConfig{Endpoint: "[::1]:4317"}}, nil,
			exporterSettings{protocol: "grpc", url: "http://[::1]:4317/v1/traces", timeout: 10 * time.Second}},
		{"config insecure false on loopback", Config{OTLP: OTLPConfig{Endpoint: "127.0.0.1:4317", Insecure: ptr(false)}}, nil,
			exporterSettings{protocol: "grpc", url: "https://127.0.0.1:4317/v1/traces", timeout: 10 * time.Second}},
		{"environment fills what the config leaves out", Config{}, env{
			"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4318/base/",
			"OTEL_EXPORTER_OTLP_TIMEOUT":  "2500",
		}, exporterSettings{protocol: "http", url: "https://collector:4318/base/v1/traces", timeout: 2500 * time.Millisecond}},
		{"the signal-specific variable wins and its URL is used as it is", Config{}, env{
			"OTEL_EXPORTER_OTLP_ENDPOINT":        "https://generic:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/custom",
			"OTEL_EXPORTER_OTLP_PROTOCOL":        "grpc",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
			"OTEL_EXPORTER_OTLP_TIMEOUT":         "1000",
			"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":  "3000",
		}, exporterSettings{protocol: "http", url: "http://traces:4318/custom", timeout: 3 * time.Second}},
		{"the insecure variable overrides the endpoint's scheme", Config{}, env{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317",
			"OTEL_EXPORTER_OTLP_INSECURE": "true",
		}, exporterSettings{protocol: "grpc", url: "http://collector:4317/v1/traces", timeout: 10 * time.Second}},
		{"the config wins over every variable", Config{OTLP: OTLPConfig{
			Endpoint: "file:4317", Protocol: "grpc", Insecure: ptr(true), Timeout: time.Second,
			Headers: map[string]string{"k": "v"},
		}}, env{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://env:4318",
			"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
			"OTEL_EXPORTER_OTLP_TRACES_INSECURE": "false",
			"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":  "9000",
		}, exporterSettings{protocol: "grpc", url: "http://file:4317/v1/traces", timeout: time.Second, headers: map[string]string{"k": "v"}}},
		{"blank variables are unset", Config{}, env{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": " ", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			exporterSettings{protocol: "http", url: "http://localhost:4318/v1/traces", timeout: 10 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.settings(tc.env.lookup)
			if err != nil {
				t.Fatal(err)
			}
			if got.protocol != tc.want.protocol || got.url != tc.want.url || got.timeout != tc.want.timeout || len(got.headers) != len(tc.want.headers) {
				t.Errorf("settings = %+v\nwant       %+v", got, tc.want)
			}
		})
	}
}

func TestSettingsBadEnvironment(t *testing.T) {
	for _, tc := range []struct {
		env  env
		want string
	}{
		{env{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, `OTEL_EXPORTER_OTLP_PROTOCOL="http/json": phasegate exports traces with grpc or http/protobuf`},
		{env{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "5s"}, `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="5s": must be a positive number of milliseconds`},
		{env{"OTEL_EXPORTER_OTLP_INSECURE": "yes please"}, `OTEL_EXPORTER_OTLP_INSECURE="yes please": must be true or false`},
		{env{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}, `OTEL_EXPORTER_OTLP_ENDPOINT="collector:4317": must be a URL like http://collector:4317`},
	} {
		_, err := (&Config{}).settings(tc.env.lookup)
		if err == nil || err.Error() != tc.want {
			t.Errorf("env %v: error %v, want %s", tc.env, err, tc.want)
		}
	}
	// What the config sets, the environment cannot break.
	cfg := Config{OTLP: OTLPConfig{Protocol: "grpc", Timeout: time.Second}}
	if _, err := cfg.settings(env{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_TIMEOUT": "x"}.lookup); err != nil {
		t.Errorf("variables the config overrides were read: %v", err)
	}
}
