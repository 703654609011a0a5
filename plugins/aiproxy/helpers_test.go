package aiproxy_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aiproxy"
	"github.com/phasegate/phasegate/pluginsdk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a gateway whose chain ends in ai-proxy, with its registry.
type fixture struct {
	*providertest.Gateway
	reg    *prometheus.Registry
	env    pluginsdk.Env
	plugin *aiproxy.Plugin
}

// config returns a valid config for endpoint.
func config(endpoint string) aiproxy.Config {
	c := aiproxy.DefaultConfig()
	c.Provider = aiproxy.ProviderOpenAICompatible
	c.Endpoint = endpoint
	c.Timeout = 5 * time.Second
	return c
}

// serve serves ai-proxy with cfg, plus other plugins.
func serve(t *testing.T, cfg aiproxy.Config, others ...phases.Plugin) *fixture {
	t.Helper()
	return serveOpts(t, phases.Options{}, cfg, others...)
}

func serveOpts(t *testing.T, opts phases.Options, cfg aiproxy.Config, others ...phases.Plugin) *fixture {
	t.Helper()
	env, reg := providertest.NewEnv(t)
	p, err := aiproxy.New(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	g := providertest.Serve(t, opts, append([]phases.Plugin{p}, others...)...)
	return &fixture{Gateway: g, reg: reg, env: env, plugin: p}
}

func mockURL(m *mockllm.Server) string { return m.URL() + mockllm.PathChatCompletions }

// key is the Samples key of an ai-proxy LLM series.
func key(model, requestType string) string {
	return providertest.LLMKey(providertest.Route, aiproxy.Name, model, requestType)
}

// counts returns the LLM series of the fixture's registry.
func (f *fixture) counts(t *testing.T, name string) map[string]float64 {
	t.Helper()
	return providertest.Samples(t, f.reg, name)
}

const (
	nameDuration   = "phasegate_llm_request_duration_seconds"
	nameTTFT       = "phasegate_llm_time_to_first_token_seconds"
	namePrompt     = "phasegate_llm_prompt_tokens_total"
	nameCompletion = "phasegate_llm_completion_tokens_total"
	nameActive     = "phasegate_llm_active_connections"
)

// newPlugin builds ai-proxy with cfg in env.
func newPlugin(t *testing.T, cfg aiproxy.Config, env pluginsdk.Env) *aiproxy.Plugin {
	t.Helper()
	p, err := aiproxy.New(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
