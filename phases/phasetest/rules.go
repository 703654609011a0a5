package phasetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/fsm/fsmtest"
	"github.com/phasegate/phasegate/httpx"
	"github.com/phasegate/phasegate/phases"
)

// run is one path in progress: what the harness saw, as it happened, and
// the rules it found broken on the way.
type run struct {
	streamEnded func(body []byte) bool // Config.StreamEnded

	mu       sync.Mutex
	journal  []string
	cancel   context.CancelFunc
	lastExit string
	panics   int
	bodies   int
	closes   int

	scriptedGauge phases.BoundGauge
	attempts      []string // names of attempt scopes
	regs          []*prometheus.Registry

	scope     *fsm.Scope // the request's root scope
	state     fsm.State
	steps     []fsm.Step
	calls     map[string]int // "phase/plugin" → count
	recovered int
	finished  int
	summary   phases.Summary
	timedOut  bool // a client read or write failed on its deadline
	problems  []string
	audit     fsmtest.Audit
	names     map[uint64]string // entry id → resource name (a child scope's name)
	sink      *sink

	finishedIn       fsm.State // where the framework's log ran
	upstreamPanicked bool
	left             fsm.State // where the client left, "" while it stays
	leftPending      bool      // it left before body_filter; no transition since
	wedged           bool
	wedgedIn         fsm.State
	escaped          bool // a panic escaped every hook wrapper
	escapedUnsent    bool // before any header was written

	altered bool // a scripted body filter changed the body

	keep  bool    // keep handles for the next path
	kept  handles // kept from this path
	stale handles // kept from the path before
}

// handles are bindings and scopes of a request, kept past its end.
type handles struct {
	bindings []fsm.Binding
	scopes   []*fsm.Scope
}

// kept carries a path's handles to the next path of a Check.
type kept struct {
	mu sync.Mutex
	h  handles
}

func (k *kept) take() handles {
	if k == nil {
		return handles{}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	h := k.h
	k.h = handles{}
	return h
}

func (k *kept) put(h handles) {
	if k != nil {
		k.mu.Lock()
		k.h = h
		k.mu.Unlock()
	}
}

// keepBinding and keepScope keep handles for the next path.
func (r *run) keepBinding(b fsm.Binding) {
	if r.keep {
		r.kept.bindings = append(r.kept.bindings, b)
	}
}

func (r *run) keepScope(sc *fsm.Scope) {
	if r.keep {
		r.kept.scopes = append(r.kept.scopes, sc)
	}
}

// useStale uses every handle the previous path kept: releases, closes,
// late acquisitions and children. They belong to a request that has ended,
// and must not touch this one, though its pooled machine and binding ids
// may be the same.
func (r *run) useStale(who string) {
	h := r.stale
	if len(h.bindings)+len(h.scopes) == 0 {
		return
	}
	r.stale = handles{}
	r.note("    %s uses %d handles kept from the previous request", who, len(h.bindings)+len(h.scopes))
	before := r.audit.Bindings()
	for _, b := range h.bindings {
		b.Release()
		if b.Held() {
			r.bad("a binding kept from the previous request reads as held")
		}
	}
	for _, sc := range h.scopes {
		sc.Close()
		ran := false
		sc.Acquire(fsm.Resource{Name: "phasetest stale"}, func() { ran = true })
		if !ran || !sc.Child("phasetest stale").Closed() {
			r.bad("a scope kept from the previous request took a binding or a child")
		}
	}
	if after := r.audit.Bindings(); !slices.EqualFunc(before, after, func(a, b fsmtest.Binding) bool { return a.Releases == b.Releases }) {
		r.bad("handles kept from the previous request touched this one: its ledger saw %d bindings, now %d", len(before), len(after))
	}
}

// ended reports whether a stream an exit ended is well formed.
func (r *run) ended(body []byte) bool {
	if r.streamEnded != nil {
		return r.streamEnded(body)
	}
	return bytes.HasSuffix(body, []byte("data: [DONE]\n\n"))
}

func newRun(attemptScope string) *run {
	r := &run{
		state:    fsm.StateNew,
		calls:    map[string]int{},
		names:    map[uint64]string{fsm.RootScope: "request"},
		attempts: []string{AttemptScope},
	}
	if attemptScope != "" {
		r.attempts = append(r.attempts, attemptScope)
	}
	return r
}

func (r *run) note(format string, args ...any) {
	r.mu.Lock()
	r.journal = append(r.journal, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// panic records a scripted panic, then panics with what.
func (r *run) panic(what string) {
	r.mu.Lock()
	r.panics++
	r.mu.Unlock()
	panic("phasetest: " + what)
}

func (r *run) bad(format string, args ...any) {
	r.mu.Lock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// present reports whether the client is still there: only a present client
// can break a time bound.
func (r *run) present() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.left == ""
}

// leave makes the client go away.
func (r *run) leave() {
	r.mu.Lock()
	if r.left == "" {
		r.left = r.state
		r.leftPending = r.state.RequestSide() || r.state == fsm.StateHeaderFilter
	}
	r.mu.Unlock()
	r.cancel()
}

// in names the scope of a binding in the journal: nothing for the root.
func (r *run) in(scope uint64) string {
	if scope == fsm.RootScope {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return " in " + r.names[scope]
}

// Acquired, Released and Ended make run an fsm.Ledger; the audit checks
// fsm's own promises, run adds the lifecycle's.
func (r *run) Acquired(e fsm.Entry) {
	r.note("    acquire %s%s", e.Resource, r.in(e.Scope))
	if slices.Contains(r.attempts, e.Resource.Name) {
		// A new attempt: the earlier ones have ended, their gauges are down.
		r.allAttemptsEnded("attempt %d started", r.countAttempts()+1)
		r.checkGauges(fmt.Sprintf("when attempt %d started", r.countAttempts()+1))
	}
	r.mu.Lock()
	r.names[e.ID] = e.Resource.Name
	r.mu.Unlock()
	r.audit.Acquired(e)
}

func (r *run) Released(e fsm.Entry) {
	r.note("    release %s%s", e.Resource, r.in(e.Scope))
	r.audit.Released(e)
	if e.Resource.Name == UpstreamBody {
		// The last attempt's scope ends with the body that came of it.
		r.allAttemptsEnded("the upstream body was released")
	}
}

func (r *run) Ended(scope uint64, in fsm.State) {
	r.mu.Lock()
	name := r.names[scope]
	r.mu.Unlock()
	r.note("    end %s scope", name)
	r.audit.Ended(scope, in)
	r.checkGauges("when the " + name + " scope ended")
}

func (r *run) countAttempts() int {
	n := 0
	for _, b := range r.audit.Bindings() {
		if slices.Contains(r.attempts, b.Resource.Name) {
			n++
		}
	}
	return n
}

// allAttemptsEnded checks that every attempt scope opened so far has
// ended (a child's entry is released as it ends).
func (r *run) allAttemptsEnded(when string, args ...any) {
	n := 0
	for _, b := range r.audit.Bindings() {
		if !slices.Contains(r.attempts, b.Resource.Name) {
			continue
		}
		n++
		if b.Releases == 0 {
			r.bad("attempt %d's scope was still open when %s", n, fmt.Sprintf(when, args...))
		}
	}
}

// held reports whether a binding named name is held.
func (r *run) held(name string) bool {
	for _, b := range r.audit.Bindings() {
		if b.Resource.Name == name && b.Releases == 0 {
			return true
		}
	}
	return false
}

// checkGauges checks that every gauge family that bindings are named after
// reads, summed over its series, the number of those bindings still held:
// a series falls when its binding is released, not later.
func (r *run) checkGauges(when string) {
	held := map[string]int{}
	for _, b := range r.audit.Bindings() {
		if _, ok := held[b.Resource.Name]; !ok {
			held[b.Resource.Name] = 0
		}
		if b.Releases == 0 {
			held[b.Resource.Name]++
		}
	}
	for _, reg := range r.regs {
		mfs, err := reg.Gather()
		if err != nil {
			r.bad("gathering the metrics %s: %v", when, err)
			continue
		}
		for _, mf := range mfs {
			want, named := held[mf.GetName()]
			if !named || mf.GetType() != dto.MetricType_GAUGE {
				continue
			}
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
			if sum != float64(want) {
				r.bad("%s, gauge %s summed to %v with %d of its bindings held", when, mf.GetName(), sum, want)
			}
		}
	}
}

func (r *run) hooks() phases.Hooks {
	return phases.Hooks{
		Entered: func(req *phases.Request, s fsm.Step) {
			r.note("%-6s %s -> %s", s.Event, s.From, s.To)
			if s.Event == fsm.EventStart {
				r.scope = req.Scope
			}
			r.entered(s)
		},
		Calling: func(_ *phases.Request, phase fsm.State, plugin string) {
			sent := r.sink.headers > 0 && !r.sink.gone
			extra := ""
			if sent && phase.ResponseSide() {
				extra = " (headers sent)"
			}
			r.note("  %s %s%s", phase, plugin, extra)
			r.calling(phase, plugin, sent)
		},
		Recovered: func(_ *phases.Request, phase fsm.State, plugin string, v any) {
			r.note("    recovered in %s %s: %v", phase, plugin, v)
			r.mu.Lock()
			r.recovered++
			if phase == fsm.StateUpstream && plugin != "" {
				r.upstreamPanicked = true
			}
			r.mu.Unlock()
			var ue *fsm.UnsettledError
			if err, ok := v.(error); ok && errors.As(err, &ue) {
				r.bad("a binding did not settle: %v", err)
			}
		},
		Finished: func(_ context.Context, s *phases.Summary) {
			r.note("  log: status=%d cause=%s exit=%s/%s path=%s", s.Status, s.Cause, s.ExitPhase, s.ExitPlugin, fsm.Path(s.Trace))
			r.mu.Lock()
			r.finished++
			r.finishedIn = r.state
			r.summary = *s
			r.summary.Trace = append([]fsm.Step(nil), s.Trace...)
			r.mu.Unlock()
		},
		Ledger: func(*phases.Request) fsm.Ledger { return r },
	}
}

// entered checks a transition as it happens.
func (r *run) entered(s fsm.Step) {
	r.mu.Lock()
	if s.From != r.state {
		r.problems = append(r.problems, fmt.Sprintf("step %v does not start from the current state %s", s, r.state))
	}
	if to, ok := fsm.Target(s.From, s.Event); !ok || to != s.To {
		r.problems = append(r.problems, fmt.Sprintf("step %v is not in the transition table", s))
	}
	if r.wedged {
		r.problems = append(r.problems, fmt.Sprintf("the machine took step %v after it wedged", s))
	}
	if r.leftPending && s.Event != fsm.EventAbort {
		r.problems = append(r.problems, fmt.Sprintf("the client left in %s, but the next step was %v, not an abort", r.left, s))
	}
	r.leftPending = false
	r.state = s.To
	r.steps = append(r.steps, s)
	upstreamPanicked := r.upstreamPanicked
	r.mu.Unlock()

	// An exit or an abort replaces or ends the upstream's response, and
	// leaving body_filter ends its stream: its body is released by then.
	if (s.Event == fsm.EventExit || s.Event == fsm.EventAbort || s.From == fsm.StateBodyFilter) && r.held(UpstreamBody) {
		r.bad("the upstream body was still held at step %v", s)
	}
	// An upstream phase that produced no body has ended all its attempts.
	if s.From == fsm.StateUpstream && !r.held(UpstreamBody) && !upstreamPanicked {
		r.allAttemptsEnded("the machine left upstream without a body")
	}
}

// calling checks a hook call as it happens.
func (r *run) calling(phase fsm.State, plugin string, sent bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bad := func(format string, args ...any) { r.problems = append(r.problems, fmt.Sprintf(format, args...)) }
	r.calls[string(phase)+"/"+plugin]++
	if phase != r.state && !(r.wedged && phase == fsm.StateLog) {
		bad("%s's %s hook ran in state %s", plugin, phase, r.state)
	}
	if r.leftPending && phase != fsm.StateLog {
		bad("%s's %s hook ran after the client left in %s", plugin, phase, r.left)
	}
	if phase == fsm.StateHeaderFilter && sent {
		bad("%s's header filter ran after the headers were sent", plugin)
	}
	if phase == fsm.StateBodyFilter && sent && r.exitedBefore() {
		bad("%s's body filter ran on an exit response whose headers were sent", plugin)
	}
	if phase == fsm.StateBodyFilter && sent && r.sink.writes == 0 {
		bad("%s's body filter ran after the header went out without a body byte: headers go with the first bytes, or at the end", plugin)
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

// check states the lifecycle's rules (docs/lifecycle.md) on what the whole
// path did.
func (r *run) check(plugins []phases.Plugin, scriptedUpstream bool, s Scenario) {
	r.checkGauges("after the request")
	r.mu.Lock()
	defer r.mu.Unlock()
	bad := func(format string, args ...any) { r.problems = append(r.problems, fmt.Sprintf(format, args...)) }

	// Rule 1: start once, done once, through log; a wedged machine cannot
	// move, and the safety net finishes it where it stands.
	count := map[fsm.Event]int{}
	logs := 0
	for _, st := range r.steps {
		count[st.Event]++
		if st.To == fsm.StateLog {
			logs++
		}
	}
	if count[fsm.EventStart] != 1 {
		bad("start fired %d times, want 1", count[fsm.EventStart])
	}
	if !r.wedged {
		if count[fsm.EventFinish] != 1 {
			bad("finish fired %d times, want 1", count[fsm.EventFinish])
		}
		if logs != 1 {
			bad("log entered %d times, want 1", logs)
		}
		if r.state != fsm.StateDone {
			bad("the request ended in state %s, not done", r.state)
		}
	}

	// Rule 5: log hooks exactly once, seeing the outcome.
	for _, p := range plugins {
		if _, ok := p.(phases.LogHook); ok {
			if n := r.calls[string(fsm.StateLog)+"/"+p.Name()]; n != 1 {
				bad("%s's log hook ran %d times, want 1", p.Name(), n)
			}
		}
	}
	if r.finished != 1 {
		bad("the framework's log ran %d times, want 1", r.finished)
	}
	if r.finished > 0 {
		r.checkSummary(bad, count, s)
	}

	// A panic that escaped before anything was sent is answered 500, whole.
	if r.escapedUnsent && r.left == "" && !r.wedged && (r.sink.status != 500 || r.sink.aborted) {
		bad("a panic escaped before the response started: the client got %d (aborted %v), want a whole 500", r.sink.status, r.sink.aborted)
	}

	// Rule 2: panics are recovered.
	if r.recovered < r.panics {
		bad("%d panics, %d recovered", r.panics, r.recovered)
	}
	r.problems = append(r.problems, r.sink.errs...)

	// Rule 4: every binding released exactly once, by the end of its scope
	// (the audit); all gauges back to 0.
	r.problems = append(r.problems, r.audit.Finish()...)
	if scriptedUpstream && r.bodies != r.closes {
		bad("the upstream answered %d bodies, %d were closed", r.bodies, r.closes)
	}
	for _, reg := range r.regs {
		for _, g := range nonZeroGauges(reg) {
			bad("gauge %s is not 0 after the request", g)
		}
	}
}

// checkSummary checks what the framework's log was told. r.mu is held.
func (r *run) checkSummary(bad func(string, ...any), count map[fsm.Event]int, s Scenario) {
	sum := r.summary
	if !r.wedged {
		if r.finishedIn != fsm.StateLog {
			bad("the framework's log ran in state %s, not log", r.finishedIn)
		}
		if n := len(sum.Trace); n == 0 || sum.Trace[n-1].To != fsm.StateLog {
			bad("the log's path %q does not end in log", fsm.Path(sum.Trace))
		}
	}
	var lastExit *fsm.Step
	for i := range r.steps {
		if r.steps[i].Event == fsm.EventExit {
			lastExit = &r.steps[i]
		}
	}
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
	case phases.CauseCompleted, phases.CauseExit:
	case phases.CauseUpstreamError, phases.CauseTimeout, phases.CauseClientClosed, phases.CauseClientTimeout, phases.CausePanic:
		if sum.Err == nil {
			bad("the request ended as %s, and the log has no error behind it", sum.Cause)
		}
	default:
		bad("the log's cause %q is not one of the contract's", sum.Cause)
	}
	if count[fsm.EventAbort] > 0 && sum.Cause != phases.CauseClientClosed && sum.Cause != phases.CauseTimeout && sum.Cause != phases.CauseClientTimeout && !(r.escaped && sum.Cause == phases.CausePanic) {
		bad("the request was aborted but its cause is %s", sum.Cause)
	}
	// A client that broke a time bound ends the request as such, whatever
	// a hook made of it (a failure of the framework's own aside); before
	// any response it gets a 408 that closes the connection.
	if r.timedOut && sum.Cause != phases.CauseClientTimeout && !r.wedged && !r.escaped {
		bad("a client read or write timed out, but the cause is %s", sum.Cause)
	}
	if sum.Cause == phases.CauseClientTimeout && r.sink.status == http.StatusRequestTimeout && r.sink.header.Get("Connection") != "close" {
		bad("the 408 of a client timeout does not close the connection")
	}
	// A machine wedged mid-request fails like a panic; before body_filter
	// nothing was sent, and the client gets a 500.
	if r.wedged && r.wedgedIn.Live() && r.left == "" && !r.escaped {
		if sum.Cause != phases.CausePanic {
			bad("the machine wedged in %s, but the cause is %s, not panic", r.wedgedIn, sum.Cause)
		}
		if r.wedgedIn != fsm.StateBodyFilter && r.sink.status != 500 {
			bad("the machine wedged in %s, and the client got %d, not 500", r.wedgedIn, r.sink.status)
		}
	}
	// Rule 3: after headers are sent, an exit ends the stream well formed.
	sse := httpx.IsSSE(r.sink.header)
	if lastExit != nil && lastExit.From == fsm.StateBodyFilter && sum.HeadersSent && !r.sink.gone && sse && sum.Cause != phases.CausePanic {
		if !r.sink.aborted && !r.ended(r.sink.body.Bytes()) {
			bad("an SSE stream ended by an exit lacks its final [DONE] frame")
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
