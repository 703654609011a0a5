package phasetest

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
)

// These tests feed the harness's rules made-up events, since the real
// runner never breaks them: each rule must report what it is there to
// catch, and a good path must pass them all.

type fakePath struct {
	r     *run
	chain []phases.Plugin
	s     Scenario
	reg   *prometheus.Registry
}

func newFakePath(t *testing.T) *fakePath {
	r := newRun("attempt")
	r.cancel = func() {}
	r.sink = &sink{run: r, c: ClientScript{FailWrite: -1, PanicWrite: -1, TimeoutWrite: -1}}
	s := Scenario{Others: []PluginScript{{Name: "p1"}}, Upstream: UpstreamScript{Kind: UpstreamOK, BreakAt: -1}}
	chain := []phases.Plugin{&scripted{s: s.Others[0], run: r}, &upstream{s: s.Upstream, run: r}}
	_, err := phases.NewChain(phases.Options{}, chain...)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r.regs = []*prometheus.Registry{reg}
	return &fakePath{r: r, chain: chain, s: s, reg: reg}
}

func (f *fakePath) step(ev fsm.Event, from, to fsm.State) {
	f.r.entered(fsm.Step{Event: ev, From: from, To: to})
}
func (f *fakePath) call(phase fsm.State)      { f.r.calling(phase, "p1", f.r.sink.headers > 0) }
func (f *fakePath) finished(s phases.Summary) { f.r.hooks().Finished(context.Background(), &s) }

var completed = []fsm.Step{
	{Event: fsm.EventStart, From: fsm.StateNew, To: fsm.StateAccess},
	{Event: fsm.EventNext, From: fsm.StateAccess, To: fsm.StateUpstream},
	{Event: fsm.EventNext, From: fsm.StateUpstream, To: fsm.StateHeaderFilter},
	{Event: fsm.EventNext, From: fsm.StateHeaderFilter, To: fsm.StateBodyFilter},
	{Event: fsm.EventNext, From: fsm.StateBodyFilter, To: fsm.StateLog},
}

// good plays a completed request, with tweak applied to its summary.
func (f *fakePath) good(tweak func(*phases.Summary)) {
	for _, s := range completed {
		f.step(s.Event, s.From, s.To)
		switch s.To {
		case fsm.StateAccess, fsm.StateHeaderFilter, fsm.StateBodyFilter:
			f.call(s.To)
		case fsm.StateUpstream:
			f.r.calling(fsm.StateUpstream, UpstreamName, false)
		}
		if s.To == fsm.StateBodyFilter {
			_ = f.r.sink.WriteHeader(200, http.Header{})
		}
	}
	f.call(fsm.StateLog)
	sum := phases.Summary{Status: 200, Cause: phases.CauseCompleted, Trace: completed, HeadersSent: true}
	if tweak != nil {
		tweak(&sum)
	}
	f.finished(sum)
	f.step(fsm.EventFinish, fsm.StateLog, fsm.StateDone)
	f.r.Ended(fsm.RootScope, fsm.StateDone)
}

// exitFromUpstream plays a path whose upstream exited, logged as p1's
// exit in named, the last scripted exit being last.
func (f *fakePath) exitFromUpstream(named fsm.State, last string) {
	f.good(func(s *phases.Summary) { s.ExitPhase, s.ExitPlugin, s.Cause = named, "p1", phases.CauseExit })
	f.r.steps[2].Event = fsm.EventExit
	f.r.lastExit = last
}

// gaugeLeftUp plays a scope named scope whose "inflight" binding is
// released while its gauge stays up.
func (f *fakePath) gaugeLeftUp(scope string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "inflight", Help: "h"})
	f.reg.MustRegister(g)
	g.Inc()
	f.r.Acquired(fsm.Entry{ID: 1, Resource: fsm.Resource{Name: scope}})
	f.r.Acquired(fsm.Entry{ID: 2, Scope: 1, Resource: fsm.Resource{Name: "inflight"}})
	f.r.Released(fsm.Entry{ID: 2, Scope: 1, Resource: fsm.Resource{Name: "inflight"}})
	f.r.Ended(1, fsm.StateUpstream)
}

func (f *fakePath) problems() []string {
	f.r.check(f.chain, false, f.s)
	return f.r.problems
}

func expect(t *testing.T, problems []string, want string) {
	t.Helper()
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Fatalf("no problem %q among:\n  %s", want, strings.Join(problems, "\n  "))
}

func TestAGoodPathPasses(t *testing.T) {
	f := newFakePath(t)
	f.good(nil)
	if p := f.problems(); len(p) > 0 {
		t.Fatalf("problems on a good path:\n  %s", strings.Join(p, "\n  "))
	}
}

func TestEachRuleBites(t *testing.T) {
	for _, tc := range []struct {
		name string
		play func(f *fakePath)
		want string
	}{
		{"start twice", func(f *fakePath) {
			f.good(nil)
			f.r.steps = append(f.r.steps, completed[0])
		}, "start fired 2 times"},
		{"no finish", func(f *fakePath) {
			f.good(nil)
			f.r.steps, f.r.state = f.r.steps[:len(f.r.steps)-1], fsm.StateLog
		}, "finish fired 0 times"},
		{"not done", func(f *fakePath) {
			f.good(nil)
			f.r.state = fsm.StateLog
		}, "the request ended in state log, not done"},
		{"log twice", func(f *fakePath) {
			f.good(nil)
			f.r.steps = append(f.r.steps, completed[4])
		}, "log entered 2 times"},
		{"framework log outside log", func(f *fakePath) {
			f.good(nil)
			f.r.finishedIn = fsm.StateBodyFilter
		}, "the framework's log ran in state body_filter, not log"},
		{"path not ending in log", func(f *fakePath) {
			f.good(func(s *phases.Summary) { s.Trace = completed[:4] })
		}, "does not end in log"},
		{"empty path", func(f *fakePath) {
			f.good(func(s *phases.Summary) { s.Trace = nil })
		}, "does not end in log"},
		{"log hook twice", func(f *fakePath) {
			f.good(nil)
			f.r.calls["log/p1"]++
		}, "p1's log hook ran 2 times, want 1"},
		{"framework log twice", func(f *fakePath) {
			f.good(nil)
			f.r.finished++
		}, "the framework's log ran 2 times"},
		{"an exit named that did not happen", func(f *fakePath) {
			f.good(func(s *phases.Summary) { s.ExitPhase, s.ExitPlugin = fsm.StateAccess, "p1" })
		}, "the log names an exit in access by p1, but no exit happened"},
		{"the wrong exit named", func(f *fakePath) {
			f.exitFromUpstream(fsm.StateHeaderFilter, "p1@header_filter")
		}, "the last exit left upstream, but the log names phase \"header_filter\""},
		{"the wrong scripted exit named", func(f *fakePath) {
			f.exitFromUpstream(fsm.StateUpstream, "p1@access")
		}, "the log names exit p1@upstream, the last scripted exit was p1@access"},
		{"status", func(f *fakePath) {
			f.good(func(s *phases.Summary) { s.Status = 500 })
		}, "the client got status 200, the log says 500"},
		{"cause", func(f *fakePath) {
			f.good(func(s *phases.Summary) { s.Cause = "oops" })
		}, `the log's cause "oops" is not one of the contract's`},
		{"abort that completed", func(f *fakePath) {
			f.good(nil)
			f.r.steps[4].Event = fsm.EventAbort
		}, "the request was aborted but its cause is completed"},
		{"abort after an escaped panic with another cause", func(f *fakePath) {
			f.good(func(s *phases.Summary) { s.Cause = phases.CauseExit })
			f.r.steps[4].Event = fsm.EventAbort
			f.r.escaped = true
		}, "the request was aborted but its cause is exit"},
		{"wedged, no 500", func(f *fakePath) {
			f.good(nil)
			f.r.wedged, f.r.wedgedIn = true, fsm.StateAccess
		}, "the machine wedged in access, and the client got 200, not 500"},
		{"wedged, not a panic", func(f *fakePath) {
			f.good(nil)
			f.r.wedged, f.r.wedgedIn = true, fsm.StateBodyFilter
		}, "the machine wedged in body_filter, but the cause is completed, not panic"},
		{"escaped, not a whole 500", func(f *fakePath) {
			f.good(nil)
			f.r.escaped, f.r.escapedUnsent = true, true
		}, "a panic escaped before the response started: the client got 200"},
		{"escaped, aborted", func(f *fakePath) {
			f.good(nil)
			f.r.escaped, f.r.escapedUnsent = true, true
			f.r.sink.status, f.r.sink.aborted = 500, true
		}, "(aborted true), want a whole 500"},
		{"panic not recovered", func(f *fakePath) {
			f.good(nil)
			f.r.panics = 1
		}, "1 panics, 0 recovered"},
		{"SSE exit without [DONE]", func(f *fakePath) {
			f.good(func(s *phases.Summary) { s.Cause = phases.CauseExit })
			f.r.steps[4].Event = fsm.EventExit
			f.r.sink.header = http.Header{"Content-Type": {"text/event-stream"}}
		}, "lacks its final [DONE] frame"},
		{"sink misuse", func(f *fakePath) {
			f.good(nil)
			_ = f.r.sink.WriteHeader(200, http.Header{})
		}, "the header was written twice"},
		{"a binding never released", func(f *fakePath) {
			f.r.Acquired(fsm.Entry{ID: 1, Resource: fsm.Resource{Name: "slot"}, State: fsm.StateAccess})
			f.good(nil)
		}, "slot was never released"},
		{"a gauge left up", func(f *fakePath) {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "up", Help: "h"})
			f.reg.MustRegister(g)
			g.Set(2)
			f.good(nil)
		}, "gauge up{} = 2 is not 0 after the request"},
		{"a step from elsewhere", func(f *fakePath) {
			f.step(fsm.EventNext, fsm.StateAccess, fsm.StateUpstream)
		}, "does not start from the current state new"},
		{"a step not in the table", func(f *fakePath) {
			f.step(fsm.EventNext, fsm.StateNew, fsm.StateLog)
		}, "is not in the transition table"},
		{"a step after a wedge", func(f *fakePath) {
			f.r.wedged = true
			f.step(fsm.EventStart, fsm.StateNew, fsm.StateAccess)
		}, "after it wedged"},
		{"no abort after the client left", func(f *fakePath) {
			f.step(fsm.EventStart, fsm.StateNew, fsm.StateAccess)
			f.r.leave()
			f.step(fsm.EventNext, fsm.StateAccess, fsm.StateUpstream)
		}, "the client left in access, but the next step was access -next-> upstream, not an abort"},
		{"a hook after the client left", func(f *fakePath) {
			f.step(fsm.EventStart, fsm.StateNew, fsm.StateAccess)
			f.r.leave()
			f.call(fsm.StateAccess)
		}, "p1's access hook ran after the client left in access"},
		{"a hook out of its phase", func(f *fakePath) {
			f.step(fsm.EventStart, fsm.StateNew, fsm.StateAccess)
			f.call(fsm.StateHeaderFilter)
		}, "p1's header_filter hook ran in state access"},
		{"a header filter after the headers", func(f *fakePath) {
			f.r.state = fsm.StateHeaderFilter
			f.r.calling(fsm.StateHeaderFilter, "p1", true)
		}, "header filter ran after the headers were sent"},
		{"a body filter on a sent exit", func(f *fakePath) {
			f.r.steps = []fsm.Step{{Event: fsm.EventExit, From: fsm.StateHeaderFilter, To: fsm.StateBodyFilter}}
			f.r.state = fsm.StateBodyFilter
			f.r.calling(fsm.StateBodyFilter, "p1", true)
		}, "body filter ran on an exit response whose headers were sent"},
		{"an upstream body kept past an exit", func(f *fakePath) {
			f.r.state = fsm.StateUpstream
			f.r.Acquired(fsm.Entry{ID: 1, Resource: fsm.Resource{Name: UpstreamBody}})
			f.step(fsm.EventExit, fsm.StateUpstream, fsm.StateHeaderFilter)
		}, "the upstream body was still held at step upstream -exit-> header_filter"},
		{"an attempt kept past the upstream", func(f *fakePath) {
			f.r.state = fsm.StateUpstream
			f.r.Acquired(fsm.Entry{ID: 1, Resource: fsm.Resource{Name: "attempt"}})
			f.step(fsm.EventExit, fsm.StateUpstream, fsm.StateHeaderFilter)
		}, "attempt 1's scope was still open when the machine left upstream without a body"},
		{"an attempt kept during the next", func(f *fakePath) {
			f.r.Acquired(fsm.Entry{ID: 1, Resource: fsm.Resource{Name: AttemptScope}})
			f.r.Acquired(fsm.Entry{ID: 2, Resource: fsm.Resource{Name: "attempt"}})
		}, "attempt 1's scope was still open when attempt 2 started"},
		{"an attempt kept past its body", func(f *fakePath) {
			f.r.Acquired(fsm.Entry{ID: 1, Resource: fsm.Resource{Name: "attempt"}})
			f.r.Acquired(fsm.Entry{ID: 2, Resource: fsm.Resource{Name: UpstreamBody}})
			f.r.Released(fsm.Entry{ID: 2, Resource: fsm.Resource{Name: UpstreamBody}})
		}, "attempt 1's scope was still open when the upstream body was released"},
		{"a gauge behind its bindings", func(f *fakePath) {
			f.gaugeLeftUp("sc")
		}, "when the sc scope ended, gauge inflight summed to 1 with 0 of its bindings held"},
		{"a gauge behind its bindings as an attempt starts", func(f *fakePath) {
			f.gaugeLeftUp("attempt")
			f.r.Released(fsm.Entry{ID: 1, Resource: fsm.Resource{Name: "attempt"}})
			f.r.Acquired(fsm.Entry{ID: 3, Resource: fsm.Resource{Name: "attempt"}})
		}, "when attempt 2 started, gauge inflight summed to 1 with 0 of its bindings held"},
		{"a failure with no error", func(f *fakePath) {
			f.good(func(s *phases.Summary) { s.Cause = phases.CauseUpstreamError })
		}, "the request ended as upstream_error, and the log has no error behind it"},
		{"headers before any body byte", func(f *fakePath) {
			f.r.state = fsm.StateBodyFilter
			_ = f.r.sink.WriteHeader(200, http.Header{})
			f.call(fsm.StateBodyFilter)
		}, "p1's body filter ran after the header went out without a body byte"},
		{"a binding that does not settle", func(f *fakePath) {
			f.r.hooks().Recovered(nil, fsm.StateDone, "", &fsm.UnsettledError{Held: []fsm.Resource{{Name: "x"}}})
		}, "a binding did not settle: fsm: scope 0 closed with bindings still held: x"},
		{"a wedge that fails", func(f *fakePath) {
			f.r.wedge("p1")
		}, "p1 could not wedge the machine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePath(t)
			tc.play(f)
			expect(t, f.problems(), tc.want)
		})
	}
}

// A path whose framework log never ran is reported as that, once.
func TestAMissingLogIsOneProblem(t *testing.T) {
	f := newFakePath(t)
	for _, s := range completed {
		f.step(s.Event, s.From, s.To)
	}
	f.call(fsm.StateLog)
	f.step(fsm.EventFinish, fsm.StateLog, fsm.StateDone)
	f.r.Ended(fsm.RootScope, fsm.StateDone)
	if p := f.problems(); len(p) != 1 || p[0] != "the framework's log ran 0 times, want 1" {
		t.Fatalf("problems: %q", p)
	}
}

// What is not a problem stays quiet.
func TestRulesAllowWhatIsAllowed(t *testing.T) {
	f := newFakePath(t)
	// A counter named after a binding is not a gauge to balance.
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "uses", Help: "h"})
	f.reg.MustRegister(c)
	c.Inc()
	f.r.Acquired(fsm.Entry{ID: 1, Resource: fsm.Resource{Name: "uses"}})
	f.r.Released(fsm.Entry{ID: 1, Resource: fsm.Resource{Name: "uses"}})
	// An upstream that panicked may leave its attempt to done.
	f.r.state = fsm.StateUpstream
	f.r.Acquired(fsm.Entry{ID: 2, Resource: fsm.Resource{Name: AttemptScope}})
	f.r.hooks().Recovered(nil, fsm.StateUpstream, UpstreamName, "boom")
	f.step(fsm.EventExit, fsm.StateUpstream, fsm.StateHeaderFilter)
	// A second wedge of a wedged machine is no news.
	f.r.wedged = true
	f.r.wedge("p1")
	if len(f.r.problems) > 0 {
		t.Fatalf("problems: %v", f.r.problems)
	}
	if got := f.r.in(fsm.RootScope); got != "" {
		t.Fatalf("a root binding is journaled %q", got)
	}
	if got := f.r.in(2); got != " in "+AttemptScope {
		t.Fatalf("a binding in a child scope is journaled %q", got)
	}
}
