package aiproxymulti_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aiproxymulti"
	"github.com/phasegate/phasegate/pluginsdk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	nameDuration = "phasegate_llm_request_duration_seconds"
	namePrompt   = "phasegate_llm_prompt_tokens_total"
	nameActive   = "phasegate_llm_active_connections"
)

// fixture is a gateway whose chain ends in ai-proxy-multi.
type fixture struct {
	*providertest.Gateway
	reg *prometheus.Registry
	env pluginsdk.Env
}

func serve(t *testing.T, cfg aiproxymulti.Config, others ...phases.Plugin) *fixture {
	t.Helper()
	env, reg := providertest.NewEnv(t)
	p, err := aiproxymulti.New(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{Gateway: providertest.Serve(t, phases.Options{}, append([]phases.Plugin{p}, others...)...), reg: reg, env: env}
}

// instance is an openai-compatible instance named name at endpoint.
func instance(name, endpoint string) aiproxymulti.Instance {
	return aiproxymulti.Instance{Name: name, Provider: "openai-compatible", Endpoint: endpoint, Timeout: 5 * time.Second}
}

func multi(instances ...aiproxymulti.Instance) aiproxymulti.Config {
	c := aiproxymulti.DefaultConfig()
	c.Instances = instances
	return c
}

func mockURL(m *mockllm.Server) string { return m.URL() + mockllm.PathChatCompletions }

func deadURL(t *testing.T) string {
	return "http://" + providertest.DeadAddr(t) + "/v1/chat/completions"
}

// failing is an upstream answering status with body.
func failing(t *testing.T, status int, body string) *providertest.Upstream {
	return providertest.NewUpstream(t, providertest.Reply(status, "application/json", body))
}

// key is the Samples key of an LLM series of instance.
func key(instance, model, requestType string) string {
	return providertest.LLMKey(providertest.Route, instance, model, requestType)
}

// gate holds an upstream's answer until released, telling when a request
// has arrived.
type gate struct {
	arrived chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{arrived: make(chan struct{}, 8), release: make(chan struct{})} }

// handler answers with h once released (or gives up when the client goes).
func (g *gate) handler(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.arrived <- struct{}{}
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		}
		h(w, r)
	}
}

func (g *gate) wait(t *testing.T) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream got no request")
	}
}
