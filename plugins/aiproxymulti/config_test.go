package aiproxymulti_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aiproxymulti"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/yamlconf"
)

func TestConfigDefaults(t *testing.T) {
	c, ok := aiproxymulti.Spec.Config().(*aiproxymulti.Config)
	if !ok || !reflect.DeepEqual(*c, aiproxymulti.DefaultConfig()) {
		t.Fatalf("Spec.Config() = %#v", aiproxymulti.Spec.Config())
	}
	if fmt.Sprint(c.FallbackOn) != "[http_5xx http_429 network]" || c.MaxRetries != nil || c.MaxRequestBodyBytes != 0 {
		t.Errorf("defaults %+v", *c)
	}
	if errs := c.Validate(); len(errs) != 1 || errs[0].Field != "instances" {
		t.Errorf("the defaults alone: %v", errs)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() aiproxymulti.Config {
		return multi(instance("a", "http://127.0.0.1:9/v1/chat/completions"), instance("b", "http://127.0.0.1:8/v1/chat/completions"))
	}
	if errs := func() []pluginsdk.FieldError { c := valid(); return c.Validate() }(); len(errs) != 0 {
		t.Fatalf("valid config: %v", errs)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*aiproxymulti.Config)
		field string
		msg   string
	}{
		{"empty name", func(c *aiproxymulti.Config) { c.Instances[1].Name = "" }, "instances[1].name", "required"},
		{"duplicate name", func(c *aiproxymulti.Config) { c.Instances[1].Name = "a" }, "instances[1].name", `"a" is also instances[0]'s name`},
		{"negative weight", func(c *aiproxymulti.Config) { c.Instances[0].Weight = -2 }, "instances[0].weight", "at least 1"},
		{"no endpoint", func(c *aiproxymulti.Config) { c.Instances[1].Endpoint = "" }, "instances[1].endpoint", "required"},
		{"bad provider", func(c *aiproxymulti.Config) { c.Instances[0].Provider = "x" }, "instances[0].provider", `got "x"`},
		{"model not a string", func(c *aiproxymulti.Config) { c.Instances[0].Options = map[string]any{"model": true} }, "instances[0].options.model", "a boolean"},
		{"negative timeout", func(c *aiproxymulti.Config) { c.Instances[1].Timeout = -time.Second }, "instances[1].timeout", "positive"},
		{"bad auth header", func(c *aiproxymulti.Config) { c.Instances[0].Auth.Header = map[string]string{"a b": "x"} }, `instances[0].auth.header["a b"]`, "header name"},
		{"unknown fallback", func(c *aiproxymulti.Config) { c.FallbackOn = []string{"timeout"} }, "fallback_on[0]", `got "timeout"`},
		{"fallback on a success", func(c *aiproxymulti.Config) { c.FallbackHTTPStatuses = []int{404, 200} }, "fallback_http_statuses[1]", "400 to 599"},
		{"negative max_retries", func(c *aiproxymulti.Config) { n := -1; c.MaxRetries = &n }, "max_retries", "negative"},
		{"negative body limit", func(c *aiproxymulti.Config) { c.MaxRequestBodyBytes = -1 }, "max_request_body_bytes", "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			errs := c.Validate()
			if len(errs) != 1 || errs[0].Field != tc.field || !strings.Contains(errs[0].Msg, tc.msg) {
				t.Errorf("got %v, want %s: …%s…", errs, tc.field, tc.msg)
			}
			if _, err := aiproxymulti.New(c, pluginsdk.Env{}); err == nil {
				t.Error("New accepted it")
			}
		})
	}
	// Zero durations and sizes of an instance select the defaults.
	c := valid()
	c.Instances[0].Timeout, c.Instances[0].MaxResponseBytes, c.Instances[0].MaxStreamDuration = 0, 0, 0
	if errs := c.Validate(); len(errs) != 0 {
		t.Errorf("zero instance limits: %v", errs)
	}
}

// The contract's YAML decodes, and problems are positioned in the list.
func TestConfigYAML(t *testing.T) {
	src := `
fallback_on: [http_5xx, http_429, network]
instances:
  - { name: primary, provider: openai-compatible, endpoint: "http://127.0.0.1:18080/v1/chat/completions", weight: 4, priority: 1 }
  - { name: backup,  provider: openai-compatible, endpoint: "http://127.0.0.1:18081/v1/chat/completions", weight: 1 }
`
	c := aiproxymulti.DefaultConfig()
	if _, probs := yamlconf.Load("c.yaml", []byte(src), nil, &c); len(probs) > 0 {
		t.Fatal(probs)
	}
	if len(c.Instances) != 2 || c.Instances[0].Weight != 4 || c.Instances[0].Priority != 1 || c.Instances[1].Name != "backup" {
		t.Errorf("decoded %+v", c)
	}
	if _, err := aiproxymulti.Spec.New(&c, pluginsdk.Env{}); err != nil {
		t.Error(err)
	}

	bad := "instances:\n  - { name: a, provider: openai }\n  - { name: a, provider: openai-compatible }\nfallback_on: [often]\n"
	c = aiproxymulti.DefaultConfig()
	_, probs := yamlconf.Load("c.yaml", []byte(bad), nil, &c)
	got := fmt.Sprint(probs)
	for _, want := range []string{"c.yaml:3:13: instances[1].name:", "c.yaml:3:5: instances[1].endpoint:", "c.yaml:4:15: fallback_on[0]:"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in %s", want, got)
		}
	}
}

func TestSpec(t *testing.T) {
	if aiproxymulti.Spec.Name != "ai-proxy-multi" || !aiproxymulti.Spec.Upstream {
		t.Errorf("name %q", aiproxymulti.Spec.Name)
	}
	if _, err := aiproxymulti.Spec.New(struct{}{}, pluginsdk.Env{}); err == nil {
		t.Error("a config of the wrong type was accepted")
	}
	c := multi(instance("a", "http://127.0.0.1:9/"))
	p, err := aiproxymulti.Spec.New(&c, pluginsdk.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != aiproxymulti.Name || p.(phases.Prioritized).Priority() != 1100 {
		t.Errorf("%s at %d", p.Name(), p.(phases.Prioritized).Priority())
	}
}
