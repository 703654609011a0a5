package phasetest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/fsm"
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
	// Problems are the rules the path broke.
	Problems []string
}

// Check runs Run on random paths (rapid's -rapid.checks of them, 100 by
// default) and fails t with the smallest failing path rapid can find.
func Check(t *testing.T, cfg Config) {
	t.Helper()
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
// broken. It is how a regression found by Check becomes a plain test.
func RunScenario(t TB, cfg Config, s Scenario) *Result {
	t.Helper()
	return runPath(t, cfg, s, nil)
}

// Draw draws a scenario around plugins: scripted plugins whose priorities
// fall before, between and after theirs, an upstream outcome (unless one of
// plugins is the upstream) and a client.
func Draw(t *rapid.T, plugins []phases.Plugin, maxOthers int) Scenario {
	if maxOthers <= 0 {
		maxOthers = 3
	}
	prios := []int{-1 << 20, 1 << 20}
	for _, p := range plugins {
		q := phases.Priority(p)
		prios = append(prios, q-1, q, q+1)
	}
	sort.Ints(prios)
	var s Scenario
	// A slice generator lets rapid shrink by deleting any one plugin.
	s.Others = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) PluginScript {
		p := PluginScript{
			Priority: rapid.SampledFrom(prios).Draw(t, "priority"),
			Acquire:  rapid.Bool().Draw(t, "acquire"),
			Access:   drawAction(t, "access", true, false),
			Header:   drawAction(t, "header", false, false),
		}
		p.Body = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Action { return drawAction(t, "body", false, true) }), 0, 4).Draw(t, "body actions")
		return p
	}), 0, maxOthers).Draw(t, "others")
	for i := range s.Others {
		s.Others[i].Name = fmt.Sprintf("p%d", i+1)
	}
	u := UpstreamScript{BreakAt: -1}
	u.Kind = UpstreamKind(weighted(t, "upstream", []int{70, 8, 8, 6, 8}))
	u.Status = rapid.SampledFrom([]int{200, 200, 201, 404, 429, 500, 503}).Draw(t, "status")
	u.Chunks = rapid.IntRange(0, 4).Draw(t, "chunks")
	u.SSE = rapid.Bool().Draw(t, "sse")
	// Draws shrink towards 0, so 0 always means "nothing goes wrong".
	u.BreakAt = rapid.IntRange(0, u.Chunks+1).Draw(t, "break at") - 1
	if u.BreakAt >= 0 {
		u.PanicBody = rapid.IntRange(0, 3).Draw(t, "panic body") == 3
	}
	s.Upstream = u
	s.Client = ClientScript{
		FailHeader:   rapid.IntRange(0, 9).Draw(t, "fail header") == 9,
		FailWrite:    -1,
		TimeoutWrite: -1,
	}
	if rapid.IntRange(0, 2).Draw(t, "client leaves mid-body") == 2 {
		s.Client.FailWrite = rapid.IntRange(0, 5).Draw(t, "fail write")
	}
	s.Client.StallBody = rapid.IntRange(0, 9).Draw(t, "client stalls its body") == 9
	if rapid.IntRange(0, 5).Draw(t, "client stops reading") == 5 {
		s.Client.TimeoutWrite = rapid.IntRange(0, 5).Draw(t, "timeout write")
	}
	return s
}

// weighted draws an index with the given weights; shrinking goes to 0.
func weighted(t *rapid.T, label string, weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := rapid.IntRange(0, total-1).Draw(t, label)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

func drawAction(t *rapid.T, label string, access, body bool) Action {
	// continue, exit, panic, cancel, mutate, transform
	w := []int{60, 14, 8, 8, 0, 0}
	if access {
		w[Mutate] = 10
	}
	if body {
		w[Transform] = 10
	}
	k := Kind(weighted(t, label, w))
	a := Action{Kind: k}
	if k == Exit {
		a.Status = rapid.SampledFrom([]int{400, 401, 403, 429, 500, 503}).Draw(t, label+" status")
	}
	return a
}

// run is one path in progress.
type run struct {
	mu       sync.Mutex
	journal  []string
	cancel   context.CancelFunc
	lastExit string
	panics   int
	bodies   int
	closes   int

	scriptedGauge phases.BoundGauge

	state     fsm.State
	steps     []fsm.Step
	calls     map[string]int // "phase/plugin" → count
	recovered int
	finished  int
	summary   phases.Summary
	timedOut  bool // a client read or write failed on its deadline
	problems  []string
	acquired  map[uint64]fsm.Resource
	released  map[uint64]int
	sink      *sink
}

func (r *run) note(format string, args ...any) {
	r.mu.Lock()
	r.journal = append(r.journal, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// Acquired and Released make run a fsm.Ledger.
func (r *run) Acquired(id uint64, res fsm.Resource, in fsm.State) {
	r.note("    acquire %s%s", res.Name, describeLabels(res.Labels))
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.acquired[id]; dup {
		r.problems = append(r.problems, fmt.Sprintf("binding %s acquired twice under one id", res.Name))
	}
	r.acquired[id] = res
}

func (r *run) Released(id uint64, res fsm.Resource, in fsm.State) {
	r.note("    release %s%s", res.Name, describeLabels(res.Labels))
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.acquired[id]
	switch {
	case !ok:
		r.problems = append(r.problems, fmt.Sprintf("binding %s released without being acquired", res.Name))
	case fmt.Sprint(a.Labels) != fmt.Sprint(res.Labels) || a.Name != res.Name:
		r.problems = append(r.problems, fmt.Sprintf("binding %s%v released as %s%v", a.Name, a.Labels, res.Name, res.Labels))
	}
	r.released[id]++
	if r.released[id] > 1 {
		r.problems = append(r.problems, fmt.Sprintf("binding %s%s released %d times", res.Name, describeLabels(res.Labels), r.released[id]))
	}
}

func (r *run) hooks() phases.Hooks {
	return phases.Hooks{
		Entered: func(_ *phases.Request, s fsm.Step) {
			r.note("%-6s %s -> %s", s.Event, s.From, s.To)
			r.mu.Lock()
			if s.From != r.state {
				r.problems = append(r.problems, fmt.Sprintf("step %v does not start from the current state %s", s, r.state))
			}
			if to, ok := fsm.Target(s.From, s.Event); !ok || to != s.To {
				r.problems = append(r.problems, fmt.Sprintf("step %v is not in the transition table", s))
			}
			r.state = s.To
			r.steps = append(r.steps, s)
			r.mu.Unlock()
		},
		Calling: func(_ *phases.Request, phase fsm.State, plugin string) {
			sent := r.sink.headers > 0 && !r.sink.gone
			extra := ""
			if sent && phase.ResponseSide() {
				extra = " (headers sent)"
			}
			r.note("  %s %s%s", phase, plugin, extra)
			r.mu.Lock()
			defer r.mu.Unlock()
			r.calls[string(phase)+"/"+plugin]++
			if phase != r.state {
				r.problems = append(r.problems, fmt.Sprintf("%s's %s hook ran in state %s", plugin, phase, r.state))
			}
			if phase == fsm.StateHeaderFilter && sent {
				r.problems = append(r.problems, fmt.Sprintf("%s's header filter ran after the headers were sent", plugin))
			}
			if phase == fsm.StateBodyFilter && sent && r.exitedBefore() {
				r.problems = append(r.problems, fmt.Sprintf("%s's body filter ran on an exit response whose headers were sent", plugin))
			}
		},
		Recovered: func(_ *phases.Request, phase fsm.State, plugin string, v any) {
			r.note("    recovered in %s %s: %v", phase, plugin, v)
			r.mu.Lock()
			r.recovered++
			r.mu.Unlock()
		},
		Finished: func(_ context.Context, s *phases.Summary) {
			r.note("  log: status=%d cause=%s exit=%s/%s path=%s", s.Status, s.Cause, s.ExitPhase, s.ExitPlugin, s.Path())
			r.mu.Lock()
			r.finished++
			r.summary = *s
			r.summary.Trace = append([]fsm.Step(nil), s.Trace...)
			r.mu.Unlock()
		},
		Ledger: func(*phases.Request) fsm.Ledger { return r },
	}
}

// exitedBefore reports whether an exit step has been taken. r.mu is held.
func (r *run) exitedBefore() bool {
	for _, s := range r.steps {
		if s.Event == fsm.EventExit {
			return true
		}
	}
	return false
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
	r := &run{
		state:    fsm.StateNew,
		calls:    map[string]int{},
		acquired: map[uint64]fsm.Resource{},
		released: map[uint64]int{},
	}
	own := prometheus.NewRegistry()
	vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "phasetest_scripted_active", Help: "Bindings held by scripted plugins."}, []string{"plugin"})
	own.MustRegister(vec)
	r.scriptedGauge = phases.BoundGauge{Name: "phasetest_scripted_active", Vec: vec}
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

	res := &Result{
		Scenario: s,
		Summary:  r.summary,
		Status:   r.sink.status,
		Header:   r.sink.header,
		Body:     r.sink.body.Bytes(),
		Aborted:  r.sink.aborted,
	}
	r.check(chain, hasUpstream, s, []*prometheus.Registry{env.Registry, own})
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

// check states CONTRACT §1's rules on what the path did.
func (r *run) check(chain *phases.Chain, scriptedUpstream bool, s Scenario, regs []*prometheus.Registry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bad := func(format string, args ...any) { r.problems = append(r.problems, fmt.Sprintf(format, args...)) }

	// Rule 1: start once, done once, through log.
	count := map[fsm.Event]int{}
	logs := 0
	for _, st := range r.steps {
		count[st.Event]++
		if st.To == fsm.StateLog {
			logs++
		}
	}
	if count[fsm.EventStart] != 1 || count[fsm.EventFinish] != 1 {
		bad("start fired %d times and finish %d times, want 1 and 1", count[fsm.EventStart], count[fsm.EventFinish])
	}
	if logs != 1 {
		bad("log entered %d times, want 1", logs)
	}
	if r.state != fsm.StateDone {
		bad("the request ended in state %s, not done", r.state)
	}

	// Rule 5: log hooks exactly once, seeing the outcome.
	for _, p := range chain.Plugins() {
		if _, ok := p.(phases.LogHook); ok {
			if n := r.calls[string(fsm.StateLog)+"/"+p.Name()]; n != 1 {
				bad("%s's log hook ran %d times, want 1", p.Name(), n)
			}
		}
	}
	if r.finished != 1 {
		bad("the framework's log ran %d times, want 1", r.finished)
	}
	var lastExit *fsm.Step
	for i := range r.steps {
		if r.steps[i].Event == fsm.EventExit {
			lastExit = &r.steps[i]
		}
	}
	sum := r.summary
	switch {
	case lastExit == nil && sum.ExitPhase != "":
		bad("the log names an exit in %s by %s, but no exit happened", sum.ExitPhase, sum.ExitPlugin)
	case lastExit != nil && sum.ExitPhase != lastExit.From:
		bad("the last exit left %s, but the log names phase %q", lastExit.From, sum.ExitPhase)
	}
	if sum.Cause == phases.CauseExit && isScripted(sum.ExitPlugin, s) && sum.ExitPlugin+"@"+string(sum.ExitPhase) != r.lastExit {
		bad("the log names exit %s@%s, the last scripted exit was %s", sum.ExitPlugin, sum.ExitPhase, r.lastExit)
	}
	if r.sink.headers > 0 && !r.sink.gone && sum.Status != r.sink.status {
		bad("the client got status %d, the log says %d", r.sink.status, sum.Status)
	}
	switch sum.Cause {
	case phases.CauseCompleted, phases.CauseExit, phases.CauseUpstreamError, phases.CauseTimeout, phases.CauseClientClosed, phases.CauseClientTimeout, phases.CausePanic:
	default:
		bad("the log's cause %q is not one of the contract's", sum.Cause)
	}
	if count[fsm.EventAbort] > 0 && sum.Cause != phases.CauseClientClosed && sum.Cause != phases.CauseTimeout && sum.Cause != phases.CauseClientTimeout {
		bad("the request was aborted but its cause is %s", sum.Cause)
	}
	// A client that broke a time bound ends the request as such, whatever
	// a hook made of it; before any response it gets a 408 that closes
	// the connection.
	if r.timedOut && sum.Cause != phases.CauseClientTimeout {
		bad("a client read or write timed out, but the cause is %s", sum.Cause)
	}
	if sum.Cause == phases.CauseClientTimeout && r.sink.status == http.StatusRequestTimeout && r.sink.header.Get("Connection") != "close" {
		bad("the 408 of a client timeout does not close the connection")
	}

	// Rule 2: panics are recovered.
	if r.recovered < r.panics {
		bad("%d panics, %d recovered", r.panics, r.recovered)
	}

	// Rule 3: after headers are sent, an exit ends the stream well formed.
	sse := strings.HasPrefix(r.sink.header.Get("Content-Type"), "text/event-stream")
	if lastExit != nil && lastExit.From == fsm.StateBodyFilter && sum.HeadersSent && !r.sink.gone && sse && sum.Cause != phases.CausePanic {
		if !r.sink.aborted && !strings.HasSuffix(r.sink.body.String(), "data: [DONE]\n\n") {
			bad("an SSE stream ended by an exit lacks its final [DONE] frame")
		}
	}
	r.problems = append(r.problems, r.sink.errs...)

	// Rule 4: every binding released exactly once; all gauges back to 0.
	for id, res := range r.acquired {
		if r.released[id] != 1 {
			bad("binding %s%s released %d times, want 1", res.Name, describeLabels(res.Labels), r.released[id])
		}
	}
	if scriptedUpstream && r.bodies != r.closes {
		bad("the upstream answered %d bodies, %d were closed", r.bodies, r.closes)
	}
	for _, reg := range regs {
		for _, g := range nonZeroGauges(reg) {
			bad("gauge %s is not 0 after the request", g)
		}
	}
}

func isScripted(name string, s Scenario) bool {
	for _, p := range s.Others {
		if p.Name == name {
			return true
		}
	}
	return false
}

// nonZeroGauges lists the gauge series of reg that do not read 0.
func nonZeroGauges(reg *prometheus.Registry) []string {
	mfs, err := reg.Gather()
	if err != nil {
		return []string{"(gathering failed: " + err.Error() + ")"}
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_GAUGE {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetGauge().GetValue(); v != 0 {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+"="+fmt.Sprintf("%q", l.GetValue()))
				}
				out = append(out, fmt.Sprintf("%s{%s} = %v", mf.GetName(), strings.Join(labels, ","), v))
			}
		}
	}
	return out
}
