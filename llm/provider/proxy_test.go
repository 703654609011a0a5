package provider_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/phases"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstreamOnly is an AI upstream without an access hook: Serve validates
// the request itself. Its log hook records the metrics twice, which must
// count once.
type upstreamOnly struct {
	proxy *provider.Proxy
	in    *provider.Instance
}

func (u *upstreamOnly) Name() string { return "upstream-only" }

func (u *upstreamOnly) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	once := false
	return u.proxy.Serve(ctx, r, func() *provider.Instance {
		if once {
			return nil
		}
		once = true
		return u.in
	}, nil)
}

func (u *upstreamOnly) Log(ctx context.Context, s *phases.Summary) {
	u.proxy.Log(s)
	u.proxy.Log(s)
}

func newUpstreamOnly(t *testing.T, endpoint string) (*upstreamOnly, *prometheus.Registry) {
	t.Helper()
	env, reg := providertest.NewEnv(t)
	in, err := provider.NewInstance(provider.Config{Name: "solo", Provider: provider.ProviderOpenAICompatible, Endpoint: endpoint}, env.Transport)
	if err != nil {
		t.Fatal(err)
	}
	return &upstreamOnly{in: in, proxy: &provider.Proxy{Route: env.Route, Metrics: env.Metrics, Model: in.Model, Instance: "solo"}}, reg
}

func TestServeWithoutAccessHook(t *testing.T) {
	up := providertest.NewUpstream(t, nil)
	u, reg := newUpstreamOnly(t, up.URL)
	g := providertest.Serve(t, phases.Options{}, u)

	resp := g.Post(t, `{"model":`, nil)
	o := g.Wait(t)
	if resp.Status != 400 || o.ExitPhase != "upstream" || up.Hits() != 0 {
		t.Errorf("%d %s, exit in %s", resp.Status, resp.Body, o.ExitPhase)
	}

	resp = g.Post(t, providertest.Chat("m", false), nil)
	o = g.Wait(t)
	if resp.Status != 200 || o.LLM.Instance != "solo" || !o.LLM.UsageKnown {
		t.Errorf("%d %s; LLMInfo %+v", resp.Status, resp.Body, o.LLM)
	}
	k := providertest.LLMKey(providertest.Route, "solo", "m", metrics.RequestTypeChat)
	if got := providertest.Samples(t, reg, "phasegate_llm_prompt_tokens_total")[k]; got != 3 {
		t.Errorf("prompt tokens %v, want 3 (recorded once)", got)
	}
	if got := providertest.Samples(t, reg, "phasegate_llm_request_duration_seconds")[k]; got != 1 {
		t.Errorf("duration observations %v, want 1", got)
	}
	providertest.AssertNoneActive(t, reg)
}

func TestNoInstance(t *testing.T) {
	p := &provider.Proxy{Model: func(c string) string { return c }}
	chain := providertest.Serve(t, phases.Options{}, &noInstance{p})
	resp := chain.Post(t, providertest.Chat("m", false), nil)
	o := chain.Wait(t)
	if resp.Status != http.StatusBadGateway || !strings.Contains(o.Err.Error(), "no upstream instance") {
		t.Errorf("%d %s (%v)", resp.Status, resp.Body, o.Err)
	}
}

type noInstance struct{ p *provider.Proxy }

func (*noInstance) Name() string { return "none" }
func (n *noInstance) Access(ctx context.Context, r *phases.Request) phases.Exit {
	return n.p.Access(r)
}
func (n *noInstance) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	return n.p.Serve(ctx, r, func() *provider.Instance { return nil }, nil)
}
