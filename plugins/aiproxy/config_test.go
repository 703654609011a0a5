package aiproxy_test

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aiproxy"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/yamlconf"
)

func TestConfigDefaults(t *testing.T) {
	c, ok := aiproxy.Spec.Config().(*aiproxy.Config)
	if !ok || !reflect.DeepEqual(*c, aiproxy.DefaultConfig()) {
		t.Fatalf("Spec.Config() = %#v", aiproxy.Spec.Config())
	}
	want := aiproxy.Config{
		ClientProtocol:    "auto",
		Timeout:           30 * time.Second,
		MaxResponseBytes:  16 << 20,
		MaxStreamDuration: 10 * time.Minute,
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("defaults %+v", *c)
	}
	if errs := c.Validate(); len(errs) != 1 || errs[0].Field != "provider" {
		t.Errorf("the defaults alone: %v", errs)
	}
	c.Provider = aiproxy.ProviderOpenAI
	if errs := c.Validate(); len(errs) != 0 {
		t.Errorf("provider openai needs no endpoint: %v", errs)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*aiproxy.Config)
		field string
		msg   string
	}{
		{"unknown provider", func(c *aiproxy.Config) { c.Provider = "azure" }, "provider", `got "azure"`},
		{"no endpoint", func(c *aiproxy.Config) { c.Endpoint = "" }, "endpoint", "required"},
		{"relative endpoint", func(c *aiproxy.Config) { c.Endpoint = "/v1/chat" }, "endpoint", "absolute"},
		{"ftp endpoint", func(c *aiproxy.Config) { c.Endpoint = "ftp://h/x?key=secret" }, "endpoint", `"ftp://h/x"`},
		{"bad header name", func(c *aiproxy.Config) { c.Auth.Header = map[string]string{"Bad Header": "x"} }, `auth.header["Bad Header"]`, "not a valid HTTP header name"},
		{"header value with a newline", func(c *aiproxy.Config) { c.Auth.Header = map[string]string{"X-Key": "a\nb"} }, "auth.header.X-Key", "line break"},
		{"empty query name", func(c *aiproxy.Config) { c.Auth.Query = map[string]string{"": "x"} }, "auth.query", "empty"},
		{"model not a string", func(c *aiproxy.Config) { c.Options = map[string]any{"model": 4} }, "options.model", "string"},
		{"option not JSON", func(c *aiproxy.Config) { c.Options = map[string]any{"temperature": math.NaN()} }, "options.temperature", "JSON"},
		{"zero timeout", func(c *aiproxy.Config) { c.Timeout = 0 }, "timeout", "positive"},
		{"negative stream cap", func(c *aiproxy.Config) { c.MaxStreamDuration = -time.Second }, "max_stream_duration", "positive"},
		{"zero response cap", func(c *aiproxy.Config) { c.MaxResponseBytes = 0 }, "max_response_bytes", "positive"},
		{"negative request cap", func(c *aiproxy.Config) { c.MaxRequestBodyBytes = -1 }, "max_request_body_bytes", "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config("http://127.0.0.1:9/v1/chat/completions")
			tc.edit(&c)
			errs := c.Validate()
			if len(errs) != 1 || errs[0].Field != tc.field || !strings.Contains(errs[0].Msg, tc.msg) {
				t.Errorf("got %v, want %s: …%s…", errs, tc.field, tc.msg)
			}
			if _, err := aiproxy.New(c, pluginsdk.Env{}); err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("New: %v", err)
			}
		})
	}
}

// The contract's YAML decodes into Config, and problems are positioned.
func TestConfigYAML(t *testing.T) {
	src := `
provider: openai-compatible
endpoint: http://127.0.0.1:9082/v1/chat/completions
auth: { header: { Authorization: "Bearer ${OPENAI_API_KEY}" }, query: { key: v } }
options: { model: gpt-4o-mini, temperature: 0.2, stop: ["a"] }
timeout: 30s
max_stream_duration: 1m
`
	env := func(k string) (string, bool) { return "sk-test", k == "OPENAI_API_KEY" }
	c := aiproxy.DefaultConfig()
	if _, probs := yamlconf.Load("c.yaml", []byte(src), env, &c); len(probs) > 0 {
		t.Fatal(probs)
	}
	if c.Auth.Header["Authorization"] != "Bearer sk-test" || c.Options["model"] != "gpt-4o-mini" || c.MaxStreamDuration != time.Minute || c.MaxResponseBytes != 16<<20 {
		t.Errorf("decoded %+v", c)
	}
	if _, err := aiproxy.Spec.New(&c, pluginsdk.Env{}); err != nil {
		t.Error(err)
	}

	bad := "provider: openai-compatible\nendpoint: x\noptions: { model: [1] }\n"
	c = aiproxy.DefaultConfig()
	_, probs := yamlconf.Load("c.yaml", []byte(bad), env, &c)
	if got := fmt.Sprint(probs); !strings.Contains(got, "c.yaml:2:11: endpoint:") || !strings.Contains(got, "c.yaml:3:19: options.model: must be a non-empty string, got a list") {
		t.Errorf("problems: %s", got)
	}
}

func TestSpec(t *testing.T) {
	if aiproxy.Spec.Name != "ai-proxy" || !aiproxy.Spec.Upstream {
		t.Errorf("name %q", aiproxy.Spec.Name)
	}
	if _, err := aiproxy.Spec.New(struct{}{}, pluginsdk.Env{}); err == nil {
		t.Error("a config of the wrong type was accepted")
	}
	c := config("http://127.0.0.1:9/v1/chat/completions")
	p, err := aiproxy.Spec.New(&c, pluginsdk.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != aiproxy.Name || p.(phases.Prioritized).Priority() != 1100 {
		t.Errorf("%s at %d", p.Name(), p.(phases.Prioritized).Priority())
	}
}
