package aiproxy_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
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
	"github.com/phasegate/phasegate/plugins/aiproxy"
	"github.com/phasegate/phasegate/pluginsdk"
)

// faults are the mock behaviours a path draws; "" is a plain answer.
var faults = []string{"", "", "", "status", "reset", "hang", "slow", "split", "drip"}

// drawRequest draws a request of a door to the mock: streamed or not,
// with a fault.
func drawRequest(t *rapid.T) (*http.Request, string, bool, providertest.Door) {
	stream := rapid.Bool().Draw(t, "stream")
	fault := rapid.SampledFrom(faults).Draw(t, "fault")
	d := rapid.SampledFrom(providertest.Doors).Draw(t, "door")
	req := httptest.NewRequest(http.MethodPost, d.Path, strings.NewReader(d.Body("m1", stream)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(mockllm.HeaderChunks, strconv.Itoa(rapid.IntRange(1, 5).Draw(t, "chunks")))
	switch fault {
	case "status":
		req.Header.Set(mockllm.HeaderStatus, strconv.Itoa(rapid.SampledFrom([]int{400, 401, 429, 500, 503}).Draw(t, "status")))
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
	return req, fault, stream, d
}

// propertyConfig is ai-proxy against the mock with short limits, so that
// hangs end by the timeout and long streams by the duration cap.
func propertyConfig(endpoint, prov string) aiproxy.Config {
	cfg := config(endpoint)
	cfg.Provider = prov
	cfg.Timeout = 100 * time.Millisecond
	cfg.MaxStreamDuration = 60 * time.Millisecond
	return cfg
}

// The harness's random exits, panics, mutations and disconnects around
// ai-proxy, against the mock's faults, keep the lifecycle's rules: every
// in-flight gauge falls back to 0, and every upstream request ends with
// its path.
func TestPropertyAIProxyKeepsTheRules(t *testing.T) {
	m := providertest.StartMock(t)
	transport := forward.NewTransport()
	defer transport.CloseIdleConnections()
	var fault, prov string
	var stream bool
	var d providertest.Door
	phasetest.Check(t, phasetest.Config{
		AttemptScope: provider.AttemptScope,
		StreamEnded:  func(body []byte) bool { return d.Ended(body, false) },
		Request: func(rt *rapid.T) *http.Request {
			var req *http.Request
			req, fault, stream, d = drawRequest(rt)
			prov = rapid.SampledFrom(providertest.Providers).Draw(rt, "provider")
			return req
		},
		Plugins: func(env *phasetest.Env) []phases.Plugin {
			if prov == "" {
				prov = aiproxy.ProviderOpenAICompatible // the probe, before the first draw
			}
			set, err := metrics.New(env.Registry)
			if err != nil {
				panic(err)
			}
			p, err := aiproxy.New(propertyConfig(providertest.Endpoint(m, prov), prov), pluginsdk.Env{Route: "r", Metrics: set, Transport: transport})
			if err != nil {
				panic(err)
			}
			return []phases.Plugin{p}
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			checkPath(t, r, fault, stream, d)
			if !eventually(2*time.Second, func() bool { return m.Mock().Stats().Active == 0 }) {
				t.Fatalf("the upstream request (fault %q) outlived its path:\n%s", fault, strings.Join(r.Journal, "\n"))
			}
		},
	})
}

// checkPath checks what ai-proxy's own outcomes look like.
func checkPath(t phasetest.TB, r *phasetest.Result, fault string, stream bool, d providertest.Door) {
	s := r.Summary
	if r.FrameworkFailed {
		return
	}
	d.CheckStream(t, r, "fault "+strconv.Quote(fault))
	if s.ExitPlugin != aiproxy.Name || s.Cause == phases.CauseClientClosed || s.Cause == phases.CauseClientTimeout {
		if s.Cause == phases.CauseCompleted && s.ExitPlugin == "" && r.Status == 200 && stream && !r.Aborted &&
			(fault == "" || fault == "split" || fault == "drip") &&
			!d.Ended(r.Body, true) {
			t.Fatalf("a completed %s stream lacks its end: %q", d.Protocol, r.Body)
		}
		return
	}
	switch s.ExitPhase {
	case "access":
		// A scripted plugin mutated the request before ai-proxy saw it.
		if r.Status != 400 {
			t.Fatalf("ai-proxy exited in access with %d", r.Status)
		}
	case "upstream", "body_filter":
		switch s.Cause {
		case phases.CauseTimeout, phases.CauseUpstreamError, phases.CauseExit:
		default:
			t.Fatalf("ai-proxy ended the request as %s (%v)", s.Cause, s.Err)
		}
	}
}

func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
