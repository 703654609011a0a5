package llmproxy_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/internal/llmproxy"
	"github.com/phasegate/phasegate/internal/llmproxy/llmtest"
	"github.com/phasegate/phasegate/internal/proxy"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

// fallback is an AI upstream over several instances that falls back on
// every failure: the attempt scope's worst case.
type fallback struct {
	proxy     *llmproxy.Proxy
	instances []*llmproxy.Instance
}

func (u *fallback) Name() string { return "fallback" }

func (u *fallback) Access(ctx context.Context, r *phases.Request) phases.Exit {
	return u.proxy.Access(r)
}

func (u *fallback) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	next := 0
	return u.proxy.Serve(ctx, r, func() *llmproxy.Instance {
		if next == len(u.instances) {
			return nil
		}
		next++
		return u.instances[next-1]
	}, func(llmproxy.Failure) bool { return true })
}

func (u *fallback) Log(ctx context.Context, s *phases.Summary) { u.proxy.Log(s) }

// Each instance kind asks the mock for its own behaviour through the
// instance's auth headers, which go on every request it sends; "dead" is a
// port nothing listens on (a network error before any answer).
var instanceFaults = map[string]map[string]string{
	"ok":    nil,
	"dead":  nil,
	"500":   {mockllm.HeaderStatus: "500"},
	"429":   {mockllm.HeaderStatus: "429"},
	"reset": {mockllm.HeaderResetAfter: "1"}, // a network error after the answer began
	"split": {mockllm.HeaderSplit: "true"},
}

// Random chains of instances that fail by network error, by status or
// not at all, under the harness's random plugins and clients: each
// attempt's in-flight series is back at 0 while the next attempt is in
// flight, each attempt's scope ends before the next opens and by the
// release of the body the client gets, and no upstream request outlives its
// path.
func TestPropertyAttemptScopes(t *testing.T) {
	m := llmtest.StartMock(t)
	dead := "http://" + llmtest.DeadAddr(t) + mockllm.PathChatCompletions
	transport := proxy.NewTransport()
	defer transport.CloseIdleConnections()
	probe := &llmtest.InFlightProbe{Base: transport}

	var kinds []string
	phasetest.Check(t, phasetest.Config{
		AttemptScope: llmproxy.AttemptScope,
		Request: func(rt *rapid.T) *http.Request {
			kinds = rapid.SliceOfN(rapid.SampledFrom([]string{"ok", "dead", "500", "429", "reset", "split"}), 1, 4).Draw(rt, "instances")
			body := llmtest.Chat("m1", rapid.Bool().Draw(rt, "stream"))
			req := httptest.NewRequest(http.MethodPost, mockllm.PathChatCompletions, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			return req
		},
		Plugins: func(env *phasetest.Env) []phases.Plugin {
			set, err := metrics.New(env.Registry)
			if err != nil {
				panic(err)
			}
			probe.Watch(env.Registry)
			u := &fallback{proxy: &llmproxy.Proxy{Route: "r", Metrics: set, Model: func(c string) string { return c }}}
			for i, kind := range kinds {
				endpoint := m.URL() + mockllm.PathChatCompletions
				if kind == "dead" {
					endpoint = dead
				}
				in, err := llmproxy.NewInstance(llmproxy.Config{
					Name:              fmt.Sprintf("%s-%d", kind, i),
					Provider:          llmproxy.ProviderOpenAICompatible,
					Endpoint:          endpoint,
					AuthHeader:        instanceFaults[kind],
					Timeout:           time.Second,
					MaxStreamDuration: time.Second,
				}, probe)
				if err != nil {
					panic(err)
				}
				u.instances = append(u.instances, in)
			}
			return []phases.Plugin{u}
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			if p := probe.Problems(); len(p) > 0 {
				t.Fatalf("%s\n%s", strings.Join(p, "\n"), strings.Join(r.Journal, "\n"))
			}
			if !llmtest.Eventually(2*time.Second, func() bool { return m.Mock().Stats().Active == 0 }) {
				t.Fatalf("an upstream request outlived its path:\n%s", strings.Join(r.Journal, "\n"))
			}
		},
	})
}
