package airatelimiting_test

import (
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aiproxy"
	"github.com/phasegate/phasegate/plugins/airatelimiting"
	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/ratelimit"
)

func TestMain(m *testing.M) {
	defer func() {
		for _, d := range buildDirs {
			_ = os.RemoveAll(d)
		}
	}()
	goleak.VerifyTestMain(m)
}

// fixture is ai-rate-limiting in front of ai-proxy and the mock LLM.
type fixture struct {
	*providertest.Gateway
	reg    *prometheus.Registry
	plugin *airatelimiting.Plugin
	mock   *mockllm.Server
}

// limits returns a config of the given limits with the default rest.
func limits(ls ...airatelimiting.LimitConfig) airatelimiting.Config {
	c := airatelimiting.DefaultConfig()
	c.Limits = ls
	return c
}

// serve serves cfg on store (a fresh Local one when nil) before ai-proxy.
func serve(t *testing.T, cfg airatelimiting.Config, store ratelimit.Store) *fixture {
	t.Helper()
	if store == nil {
		store = ratelimit.NewLocal(ratelimit.LocalOptions{})
	}
	env, reg := providertest.NewEnv(t)
	mock := providertest.StartMock(t)
	pc := aiproxy.DefaultConfig()
	pc.Provider = aiproxy.ProviderOpenAICompatible
	pc.Endpoint = mock.URL() + mockllm.PathChatCompletions
	pc.Timeout = 5 * time.Second
	proxy, err := aiproxy.New(pc, env)
	if err != nil {
		t.Fatal(err)
	}
	p := newPlugin(t, cfg, env, store)
	g := providertest.Serve(t, phases.Options{}, proxy, p)
	return &fixture{Gateway: g, reg: reg, plugin: p, mock: mock}
}

// newPlugin builds the plugin on store, closed when t ends.
func newPlugin(t testing.TB, cfg airatelimiting.Config, env pluginsdk.Env, store ratelimit.Store) *airatelimiting.Plugin {
	t.Helper()
	p, err := airatelimiting.NewWithStore(cfg, env, store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// sample returns one series of a family in reg, by its label values in
// label-name order (limit before route).
func sample(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	return providertest.Samples(t, reg, name)[providertest.Labels(labels...)]
}

// serveOn serves cfg (on a fresh Local store) before ai-proxy to endpoint.
func serveOn(t *testing.T, cfg airatelimiting.Config, env pluginsdk.Env, endpoint string) *fixture {
	t.Helper()
	pc := aiproxy.DefaultConfig()
	pc.Provider = aiproxy.ProviderOpenAICompatible
	pc.Endpoint = endpoint
	proxy, err := aiproxy.New(pc, env)
	if err != nil {
		t.Fatal(err)
	}
	p := newPlugin(t, cfg, env, ratelimit.NewLocal(ratelimit.LocalOptions{}))
	return &fixture{Gateway: providertest.Serve(t, phases.Options{}, proxy, p), plugin: p}
}
