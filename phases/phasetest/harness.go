package phasetest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/fsm/fsmtest"
	"github.com/phasegate/phasegate/phases"
)

// Config says what to test.
type Config struct {
	// Plugins builds the plugins under test, afresh for every path. They
	// register their metrics on env.Registry, whose gauges must all read 0
	// once the path has ended. Required.
	Plugins func(env *Env) []phases.Plugin
	// Request builds the client's request for a path. Default: POST / with
	// a small JSON body and an X-Model header.
	Request func(t *rapid.T) *http.Request
	// Check adds invariants of the plugins' own, run after the harness's.
	Check func(t TB, r *Result)
	// MaxOthers bounds how many scripted plugins surround the plugins under
	// test. Default 3.
	MaxOthers int
	// Options are passed to the chain (the harness adds its own Hooks).
	Options phases.Options

	// AttemptScope names the child scope the upstream under test opens for
	// each attempt (for example provider.AttemptScope), if it makes several.
	// The harness then checks that each attempt's scope has ended, and its
	// gauges have fallen, when the next attempt starts, and that the last
	// one has ended when the upstream body is released.
	AttemptScope string

	// StreamEnded reports whether the body of a server-sent event stream
	// that an exit ended after its headers ends well formed, for the
	// plugins' protocol (for example an Anthropic message_stop). Default:
	// it ends with "data: [DONE]".
	StreamEnded func(body []byte) bool

	kept *kept // the previous path's handles, under Check
}

// Env is what plugins under test get from the harness.
type Env struct {
	// Registry is a fresh registry for the path.
	Registry *prometheus.Registry
}

// TB is the part of testing.TB and *rapid.T the harness uses.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Result is one path's outcome.
type Result struct {
	Scenario Scenario
	// Summary is what the log hooks saw (Trace copied).
	Summary phases.Summary
	// Journal is the path as a readable trace: transitions, hook calls,
	// scripted actions, acquisitions and releases, what the client got.
	Journal []string
	// Status, Header and Body are what the client received; Aborted
	// reports a broken response.
	Status  int
	Header  http.Header
	Body    []byte
	Aborted bool
	// BodyAltered reports that a scripted body filter transformed a chunk
	// or held one back: the body the client got is not the upstream's.
	BodyAltered bool
	// FrameworkFailed reports that the harness made the framework itself
	// fail on this path (the sink panicked, or a hook wedged the machine):
	// the request then ends with cause panic, whatever the plugins did.
	FrameworkFailed bool
	// Problems are the rules the path broke.
	Problems []string
	// Bindings and Scopes are the request's bindings and scopes as its
	// ledger saw them: in which scope each binding was held, and in what
	// order acquisitions, releases and scope ends happened.
	Bindings []fsmtest.Binding
	Scopes   []fsmtest.Scope
}

// Check runs Run on random paths (rapid's -rapid.checks of them, 100 by
// default) and fails t with the smallest failing path rapid can find.
func Check(t *testing.T, cfg Config) {
	t.Helper()
	// Paths run one after another, often on the same pooled machine: each
	// path uses the handles the one before kept, which must stay inert.
	cfg.kept = &kept{}
	rapid.Check(t, func(rt *rapid.T) { Run(rt, cfg) })
}

// Run draws one random path, runs it, checks every rule of the lifecycle
// and fails t, printing the path's trace, if one is broken.
func Run(t *rapid.T, cfg Config) *Result {
	probe := cfg.Plugins(&Env{Registry: prometheus.NewRegistry()})
	s := Draw(t, probe, cfg.MaxOthers)
	var req *http.Request
	if cfg.Request != nil {
		req = cfg.Request(t)
	}
	return runPath(t, cfg, s, req)
}

// RunScenario runs one given path, checks the rules and fails t if one is
// broken. It is how a failure Check reports becomes a plain test.
func RunScenario(t TB, cfg Config, s Scenario) *Result {
	t.Helper()
	return runPath(t, cfg, s, nil)
}

func defaultRequest() *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":"m1","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Model", "m1")
	return req
}

func runPath(t TB, cfg Config, s Scenario, req *http.Request) *Result {
	t.Helper()
	if req == nil {
		req = defaultRequest()
	}
	env := &Env{Registry: prometheus.NewRegistry()}
	r := newRun(cfg.AttemptScope)
	r.streamEnded = cfg.StreamEnded
	r.stale, r.keep = cfg.kept.take(), cfg.kept != nil
	own := prometheus.NewRegistry()
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "phasetest_scripted_active", Help: "Bindings held by scripted plugins."}, []string{"plugin"})
	own.MustRegister(vec)
	r.scriptedGauge = phases.BoundGauge{Name: "phasetest_scripted_active", Vec: vec}
	r.regs = []*prometheus.Registry{env.Registry, own}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.cancel = cancel
	r.sink = &sink{run: r, c: s.Client}

	plugins := cfg.Plugins(env)
	hasUpstream := false
	for _, p := range plugins {
		if _, ok := p.(phases.Upstream); ok {
			hasUpstream = true
		}
	}
	all := append([]phases.Plugin(nil), plugins...)
	for _, ps := range s.Others {
		all = append(all, &scripted{s: ps, run: r})
	}
	if !hasUpstream {
		all = append(all, &upstream{s: s.Upstream, run: r})
	}
	opts := cfg.Options
	opts.Hooks = opts.Hooks.Then(r.hooks())
	chain, err := phases.NewChain(opts, all...)
	if err != nil {
		t.Fatalf("phasetest: building the chain: %v", err)
	}
	r.note("scenario:\n%s", indent(s.String()))
	req = req.WithContext(ctx)
	if s.Client.StallBody {
		req.Body = &stallingBody{r: req.Body, run: r}
	}
	chain.Serve(ctx, req, r.sink)
	cfg.kept.put(r.kept)

	res := &Result{
		Scenario: s,
		Summary:  r.summary,
		Status:   r.sink.status,
		Header:   r.sink.header,
		Body:     r.sink.body.Bytes(),
		Aborted:  r.sink.aborted,
	}
	r.check(all, !hasUpstream, s)
	res.Bindings, res.Scopes = r.audit.Bindings(), r.audit.Scopes()
	res.FrameworkFailed = r.escaped || r.wedged
	res.BodyAltered = r.altered
	res.Journal = r.journal
	res.Problems = r.problems
	if len(res.Problems) > 0 {
		t.Fatalf("phasetest: the lifecycle rules were broken:\n  - %s\n\ntrace:\n%s", strings.Join(res.Problems, "\n  - "), strings.Join(res.Journal, "\n"))
	}
	if cfg.Check != nil {
		cfg.Check(t, res)
	}
	return res
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// UpstreamBody is the name, in ledgers, of the binding that closes the
// upstream response's body (docs/lifecycle.md).
const UpstreamBody = "upstream body"
