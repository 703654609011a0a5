package aiproxymulti_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/llm/provider"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
	"github.com/phasegate/phasegate/plugins/aiproxymulti"
	"github.com/phasegate/phasegate/pluginsdk"
)

// The harness's random exits, panics, mutations and disconnects around
// ai-proxy-multi, over a random set of instances (unreachable, always 500,
// the mock with the path's fault) and fallback policy: each attempt's
// gauge is back at 0 while the next attempt is in flight, each attempt's
// scope ends before the next opens and by the release of the client's
// body, and every upstream request ends with its path.
func TestPropertyAIProxyMultiKeepsTheRules(t *testing.T) {
	m := providertest.StartMock(t)
	var running atomic.Int64
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running.Add(1)
		defer running.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":"broken"}`))
	}))
	defer broken.Close()
	transport := forward.NewTransport()
	defer transport.CloseIdleConnections()
	probe := &providertest.InFlightProbe{Base: transport}
	dead := deadURL(t)

	var cfg aiproxymulti.Config
	var d providertest.Door
	phasetest.Check(t, phasetest.Config{
		AttemptScope: provider.AttemptScope,
		StreamEnded:  func(body []byte) bool { return d.Ended(body, false) },
		Request: func(rt *rapid.T) *http.Request {
			cfg = drawConfig(rt, map[string]string{"dead": dead, "broken": broken.URL + "/v1/chat/completions",
				"mock": mockURL(m), "claude": providertest.Endpoint(m, provider.ProviderAnthropic)})
			var req *http.Request
			req, d = drawRequest(rt)
			return req
		},
		Plugins: func(env *phasetest.Env) []phases.Plugin {
			set, err := metrics.New(env.Registry)
			if err != nil {
				panic(err)
			}
			c := cfg
			if len(c.Instances) == 0 { // the probe, before the first draw
				c = multi(instance("mock", mockURL(m)))
			}
			probe.Watch(env.Registry)
			p, err := aiproxymulti.New(c, pluginsdk.Env{Route: "r", Metrics: set, Transport: probe})
			if err != nil {
				panic(err)
			}
			return []phases.Plugin{p}
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			d.CheckStream(t, r, "ai-proxy-multi")
			if p := probe.Problems(); len(p) > 0 {
				t.Fatalf("%s\n%s", strings.Join(p, "\n"), strings.Join(r.Journal, "\n"))
			}
			if !providertest.Eventually(2*time.Second, func() bool { return m.Mock().Stats().Active == 0 && running.Load() == 0 }) {
				t.Fatalf("an upstream request outlived its path:\n%s", strings.Join(r.Journal, "\n"))
			}
		},
	})
}

// drawConfig draws one to four instances of the given kinds, their
// priorities and weights, and the fallback policy.
func drawConfig(t *rapid.T, urls map[string]string) aiproxymulti.Config {
	kinds := rapid.SliceOfN(rapid.SampledFrom([]string{"dead", "broken", "mock", "claude"}), 1, 4).Draw(t, "instances")
	cfg := aiproxymulti.DefaultConfig()
	for i, k := range kinds {
		in := aiproxymulti.Instance{
			Name:              fmt.Sprintf("%s-%d", k, i),
			Provider:          map[bool]string{true: provider.ProviderAnthropic, false: provider.ProviderOpenAICompatible}[k == "claude"],
			Endpoint:          urls[k],
			Weight:            rapid.IntRange(0, 3).Draw(t, "weight"),
			Priority:          rapid.IntRange(0, 2).Draw(t, "priority"),
			Timeout:           100 * time.Millisecond,
			MaxStreamDuration: 60 * time.Millisecond,
		}
		if rapid.Bool().Draw(t, "sets model") {
			in.Options = map[string]any{"model": "model-" + in.Name}
		}
		cfg.Instances = append(cfg.Instances, in)
	}
	if rapid.Bool().Draw(t, "custom fallback") {
		cfg.FallbackOn = rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"http_5xx", "http_429", "network"}), 0, 3, rapid.ID).Draw(t, "fallback_on")
		if rapid.Bool().Draw(t, "set max_retries") {
			n := rapid.IntRange(0, 3).Draw(t, "max_retries")
			cfg.MaxRetries = &n
		}
	}
	return cfg
}

// drawRequest draws a request of a door to the mock, streamed or not, with
// a fault.
func drawRequest(t *rapid.T) (*http.Request, providertest.Door) {
	stream := rapid.Bool().Draw(t, "stream")
	d := rapid.SampledFrom(providertest.Doors).Draw(t, "door")
	req := httptest.NewRequest(http.MethodPost, d.Path, strings.NewReader(d.Body("m1", stream)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(mockllm.HeaderChunks, strconv.Itoa(rapid.IntRange(1, 5).Draw(t, "chunks")))
	switch rapid.SampledFrom([]string{"", "", "status", "reset", "hang", "slow", "split", "drip"}).Draw(t, "fault") {
	case "status":
		req.Header.Set(mockllm.HeaderStatus, strconv.Itoa(rapid.SampledFrom([]int{400, 429, 500, 503}).Draw(t, "status")))
	case "reset":
		req.Header.Set(mockllm.HeaderResetAfter, strconv.Itoa(rapid.IntRange(0, 3).Draw(t, "reset after")))
	case "hang":
		req.Header.Set(mockllm.HeaderHang, "true")
	case "slow":
		req.Header.Set(mockllm.HeaderHeaderDelay, "300ms")
	case "split":
		req.Header.Set(mockllm.HeaderSplit, "true")
	case "drip":
		req.Header.Set(mockllm.HeaderChunkDelay, strconv.Itoa(rapid.IntRange(1, 15).Draw(t, "delay ms"))+"ms")
	}
	return req, d
}
