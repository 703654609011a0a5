package phasetest_test

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// inflight is a correct plugin: it holds an in-flight gauge as a binding.
type inflight struct{ g phases.BoundGauge }

func newInflight(env *phasetest.Env) []phases.Plugin {
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_inflight", Help: "h"}, []string{"model"})
	env.Registry.MustRegister(vec)
	return []phases.Plugin{&inflight{phases.BoundGauge{Name: "test_inflight", Vec: vec}}}
}

func (p *inflight) Name() string { return "inflight" }
func (p *inflight) Access(ctx context.Context, r *phases.Request) phases.Exit {
	p.g.Acquire(r.Scope, r.Header.Get("X-Model"))
	return phases.Exit{}
}

func TestPropertyBoundGaugePluginPasses(t *testing.T) {
	reused := 0
	phasetest.Check(t, phasetest.Config{Plugins: newInflight, Check: func(t phasetest.TB, r *phasetest.Result) {
		if strings.Contains(strings.Join(r.Journal, "\n"), "handles kept from the previous request") {
			reused++
		}
	}})
	// Paths after the first use the handles the one before kept.
	if reused == 0 {
		t.Fatal("no path used the handles of the path before")
	}
}

// --- deliberately broken plugins: the harness must catch each -------------

// (a) increments in access, decrements only at the end of the body: any
// path that skips the last body filter call leaks.
type decInBodyOnly struct{ vec *prometheus.GaugeVec }

func (p *decInBodyOnly) Name() string { return "dec-in-body-only" }
func (p *decInBodyOnly) Access(ctx context.Context, r *phases.Request) phases.Exit {
	p.vec.WithLabelValues("m").Inc()
	return phases.Exit{}
}
func (p *decInBodyOnly) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	if c.EOS {
		p.vec.WithLabelValues("m").Dec()
	}
	return phases.BodyResult{}
}

// (b) re-reads its label from mutable request state at release time. It
// does remember whether it acquired, so that re-reading is its only bug.
type relabels struct{ vec *prometheus.GaugeVec }

var acquiredKey = phases.NewKey[bool]("relabels acquired")

func (p *relabels) Name() string  { return "relabels" }
func (p *relabels) Priority() int { return 100 }
func (p *relabels) Access(ctx context.Context, r *phases.Request) phases.Exit {
	p.vec.WithLabelValues(r.Header.Get("X-Model")).Inc()
	acquiredKey.Set(r.Values, true)
	return phases.Exit{}
}
func (p *relabels) Log(ctx context.Context, s *phases.Summary) {
	if ok, _ := acquiredKey.Get(s.Values); ok {
		p.vec.WithLabelValues(s.Request.Header.Get("X-Model")).Dec()
	}
}

// (c) releases in its log hook without knowing whether it acquired.
type blindRelease struct{ vec *prometheus.GaugeVec }

func (p *blindRelease) Name() string { return "blind-release" }
func (p *blindRelease) Access(ctx context.Context, r *phases.Request) phases.Exit {
	p.vec.WithLabelValues("m").Inc()
	return phases.Exit{}
}
func (p *blindRelease) Log(ctx context.Context, s *phases.Summary) { p.vec.WithLabelValues("m").Dec() }

func brokenConfig(build func(vec *prometheus.GaugeVec) phases.Plugin) phasetest.Config {
	return phasetest.Config{Plugins: func(env *phasetest.Env) []phases.Plugin {
		vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "broken_inflight", Help: "h"}, []string{"model"})
		env.Registry.MustRegister(vec)
		return []phases.Plugin{build(vec)}
	}}
}

// recorder is a rapid.TB that records a failure instead of failing the test.
type recorder struct {
	testing.TB
	out    strings.Builder
	failed bool
}

func (r *recorder) Helper()                   {}
func (r *recorder) Name() string              { return r.TB.Name() }
func (r *recorder) Logf(f string, a ...any)   { fmt.Fprintf(&r.out, f+"\n", a...) }
func (r *recorder) Log(a ...any)              { fmt.Fprintln(&r.out, a...) }
func (r *recorder) Errorf(f string, a ...any) { r.failed = true; r.Logf(f, a...) }
func (r *recorder) Error(a ...any)            { r.failed = true; r.Log(a...) }
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...) }
func (r *recorder) Fatal(a ...any)            { r.Error(a...) }
func (r *recorder) Fail()                     { r.failed = true }
func (r *recorder) FailNow()                  { r.failed = true }
func (r *recorder) Failed() bool              { return r.failed }
func (r *recorder) Skipf(f string, a ...any)  {}
func (r *recorder) Skip(a ...any)             {}
func (r *recorder) SkipNow()                  {}

func TestHarnessCatchesBrokenPlugins(t *testing.T) {
	// A caught failure must not leave a rapid fail file in testdata/.
	if err := flag.Set("rapid.nofailfile", "true"); err != nil {
		t.Fatal(err)
	}
	defer flag.Set("rapid.nofailfile", "false")

	cases := []struct {
		name  string
		build func(*prometheus.GaugeVec) phases.Plugin
		want  string // in the shrunk failure's report
	}{
		{"decrement-in-body-filter-only", func(v *prometheus.GaugeVec) phases.Plugin { return &decInBodyOnly{v} }, `gauge broken_inflight{model="m"} = 1 is not 0`},
		{"labels-reread-at-release", func(v *prometheus.GaugeVec) phases.Plugin { return &relabels{v} }, `gauge broken_inflight{model="m1"} = 1 is not 0`},
		{"release-without-acquire", func(v *prometheus.GaugeVec) phases.Plugin { return &blindRelease{v} }, `gauge broken_inflight{model="m"} = -1 is not 0`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			cfg := brokenConfig(tc.build)
			// A bug that needs a rare path gets three runs of the default
			// number of paths before the harness is said to miss it.
			for try := 0; try < 3 && !rec.failed; try++ {
				rapid.Check(rec, func(rt *rapid.T) { phasetest.Run(rt, cfg) })
			}
			out := rec.out.String()
			if !rec.failed {
				t.Fatalf("the harness passed a broken plugin:\n%s", out)
			}
			if !strings.Contains(out, strings.TrimSuffix(tc.want, " is not 0")) {
				t.Errorf("the report does not name the leaked series %q:\n%s", tc.want, out)
			}
			// The shrunk path is printed as a trace, and it is small: at
			// most one scripted plugin is needed to expose each of these.
			trace := lastReport(out)
			if !strings.Contains(trace, "start  new -> access") || !strings.Contains(trace, "\n  log: status=") {
				t.Errorf("the report has no transition trace:\n%s", trace)
			}
			if n := strings.Count(trace, "\n  plugin p"); n > 1 {
				t.Errorf("the failing path did not shrink: %d scripted plugins\n%s", n, trace)
			}
			t.Logf("shrunk failure:\n%s", trace)
		})
	}
}

// --- deliberately broken upstreams: released by done, but too late -------

// attempts is an upstream that makes two attempts, each holding an
// in-flight gauge in its own "attempt" scope, and answers with the second.
// closeFirst and closeLast say whether it ends the first attempt before the
// second starts, and the second with its body; when they are false the
// scope is only closed with the request, at done.
type attempts struct {
	g                     phases.BoundGauge
	closeFirst, closeLast bool
}

func (u *attempts) Name() string { return "attempts" }
func (u *attempts) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	first := r.Scope.Child("attempt")
	u.g.Acquire(first, "first")
	if u.closeFirst {
		first.Close()
	}
	second := r.Scope.Child("attempt")
	u.g.Acquire(second, "second")
	return &phases.Response{Status: 200, Body: &attemptBody{Body: phases.BytesBody([]byte("ok")), attempt: second, close: u.closeLast}}, nil
}

type attemptBody struct {
	phases.Body
	attempt *fsm.Scope
	close   bool
}

func (b *attemptBody) Close() error {
	if b.close {
		b.attempt.Close()
	}
	return b.Body.Close()
}

func TestHarnessCatchesLateScopeEnds(t *testing.T) {
	if err := flag.Set("rapid.nofailfile", "true"); err != nil {
		t.Fatal(err)
	}
	defer flag.Set("rapid.nofailfile", "false")
	for _, tc := range []struct {
		name                  string
		closeFirst, closeLast bool
		want                  string
	}{
		{"first attempt kept during the second", false, true, "attempt 1's scope was still open when attempt 2 started"},
		{"last attempt outlives its body", true, false, "attempt 2's scope was still open when the upstream body was released"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			cfg := phasetest.Config{
				AttemptScope: "attempt",
				Plugins: func(env *phasetest.Env) []phases.Plugin {
					vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "attempt_inflight", Help: "h"}, []string{"attempt"})
					env.Registry.MustRegister(vec)
					return []phases.Plugin{&attempts{g: phases.BoundGauge{Name: "attempt_inflight", Vec: vec}, closeFirst: tc.closeFirst, closeLast: tc.closeLast}}
				},
			}
			rapid.Check(rec, func(rt *rapid.T) { phasetest.Run(rt, cfg) })
			if !rec.failed || !strings.Contains(lastReport(rec.out.String()), tc.want) {
				t.Fatalf("the harness did not report %q:\n%s", tc.want, rec.out.String())
			}
		})
	}
	// Both ends in time: the harness passes it.
	phasetest.Check(t, phasetest.Config{
		AttemptScope: "attempt",
		Plugins: func(env *phasetest.Env) []phases.Plugin {
			vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "attempt_inflight", Help: "h"}, []string{"attempt"})
			env.Registry.MustRegister(vec)
			return []phases.Plugin{&attempts{g: phases.BoundGauge{Name: "attempt_inflight", Vec: vec}, closeFirst: true, closeLast: true}}
		},
	})
}

// lastReport is the last phasetest failure in rapid's output: the one for
// the minimal path.
func lastReport(out string) string {
	i := strings.LastIndex(out, "phasetest: the lifecycle rules were broken")
	if i < 0 {
		return out
	}
	return out[i:]
}

// seer is an upstream under test that keeps the request as it got it.
type seer struct{ path, header, body string }

func (s *seer) Name() string { return "seer" }
func (s *seer) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	b, _ := r.Body()
	s.path, s.header, s.body = r.URL.Path, r.Header.Get("X-Model"), string(b)
	return &phases.Response{Status: 200, Body: phases.BytesBody([]byte("ok"))}, nil
}

// A scripted mutation changes everything a plugin might read again later:
// the path, every header value and the body.
func TestMutateChangesTheRequest(t *testing.T) {
	up := &seer{}
	s, _ := phasetest.Parse("plugin p1 priority=10 access=mutate")
	phasetest.RunScenario(t, phasetest.Config{Plugins: func(*phasetest.Env) []phases.Plugin { return []phases.Plugin{up} }}, s)
	if !strings.HasSuffix(up.path, "/mutated") || up.header != "m1~mutated" || !strings.HasSuffix(up.body, " mutated") {
		t.Fatalf("the upstream saw %q %q %q", up.path, up.header, up.body)
	}
}
