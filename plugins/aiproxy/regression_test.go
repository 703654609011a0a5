package aiproxy_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aimoderation"
)

// earlyExit is a body filter that ends the response at chunk at, as
// content moderation does, and samples the in-flight gauge of labels each
// time it runs.
type earlyExit struct {
	at     int
	set    *metrics.Set
	labels []string

	mu      sync.Mutex
	calls   int
	samples []float64
}

func (*earlyExit) Name() string { return "early-exit" }

func (e *earlyExit) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.samples = append(e.samples, testutil.ToFloat64(e.set.LLMActive.WithLabelValues(e.labels...)))
	n := e.calls
	e.calls++
	if n == e.at {
		return phases.End(phases.Error(http.StatusBadRequest, "content_filter", "flagged by a test filter"))
	}
	return phases.BodyResult{}
}

// The regression that started phasegate: a plugin that ends the request
// early in body_filter, before the response (non-stream) or in the middle
// of a stream, never leaves the in-flight gauge up.
func TestEarlyExitInBodyFilterReleasesTheGauge(t *testing.T) {
	m := providertest.StartMock(t)
	for _, tc := range []struct {
		name   string
		stream bool
		at     int
	}{
		{"non-stream, before the response", false, 0},
		{"stream, before the response", true, 0},
		{"stream, mid-stream", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, reg := providertest.NewEnv(t)
			typ := metrics.RequestTypeChat
			if tc.stream {
				typ = metrics.RequestTypeStream
			}
			labels := []string{providertest.Route, "ai-proxy", "m", typ}
			exit := &earlyExit{at: tc.at, set: env.Metrics, labels: labels}
			p := newPlugin(t, config(mockURL(m)), env)
			g := providertest.Serve(t, phases.Options{}, p, exit)

			resp := g.Post(t, providertest.Chat("m", tc.stream), map[string]string{mockllm.HeaderChunks: "6", mockllm.HeaderChunkDelay: "10ms"})
			o := g.Wait(t)
			if o.Cause != phases.CauseExit || o.ExitPlugin != "early-exit" || o.ExitPhase != "body_filter" {
				t.Errorf("cause %s, exit %s/%s", o.Cause, o.ExitPhase, o.ExitPlugin)
			}
			if tc.at == 0 {
				if resp.Status != 400 || !strings.Contains(string(resp.Body), "flagged by a test filter") {
					t.Errorf("%d %s", resp.Status, resp.Body)
				}
			} else if msg, _, done := finalFrame(t, resp.Body); resp.Status != 200 || !done || msg != "flagged by a test filter" {
				t.Errorf("%d %q", resp.Status, resp.Body)
			}
			for i, v := range exit.samples {
				if v != 1 {
					t.Errorf("the gauge read %v at chunk %d, want 1 while in flight", v, i)
				}
			}
			if v := testutil.ToFloat64(env.Metrics.LLMActive.WithLabelValues(labels...)); v != 0 {
				t.Errorf("the gauge reads %v after the request", v)
			}
			providertest.AssertNoneActive(t, reg)
			if !providertest.Eventually(2*time.Second, func() bool { return m.Mock().Stats().Active == 0 }) {
				t.Errorf("the upstream request outlived the exit: %+v", m.Mock().Stats())
			}
		})
	}
}

// The same with the real content moderation plugin refusing the response.
func TestModerationRefusalReleasesTheGauge(t *testing.T) {
	m := providertest.StartMock(t)
	for _, stream := range []bool{false, true} {
		env, reg := providertest.NewEnv(t)
		mcfg := aimoderation.DefaultConfig()
		mcfg.DenyPatterns = []string{`(?i)\bphasegate\b`}
		mcfg.CheckResponse = true
		mcfg.StreamCheckCacheSize = 1
		mod, err := aimoderation.New(mcfg, env)
		if err != nil {
			t.Fatal(err)
		}
		g := providertest.Serve(t, phases.Options{}, newPlugin(t, config(mockURL(m)), env), mod)
		resp := g.Post(t, providertest.Chat("m", stream), nil)
		o := g.Wait(t)
		if !strings.Contains(string(resp.Body), aimoderation.DefaultDenyMessage) {
			t.Errorf("stream %v: %d %s; LLMInfo %+v", stream, resp.Status, resp.Body, o.LLM)
		}
		if o.LLM.Instance != "ai-proxy" || o.LLM.Model != "m" {
			t.Errorf("LLMInfo %+v", o.LLM)
		}
		providertest.AssertNoneActive(t, reg)
		if n := len(providertest.Samples(t, reg, nameActive)); n != 1 {
			t.Errorf("%d active series, want the attempt's", n)
		}
	}
}
