package fsmtest_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/fsm/fsmtest"
)

// step is one thing an Audit is told.
type step struct {
	op    string // "acquire", "release" or "end"
	id    uint64 // the binding (or, for "end", the scope)
	scope uint64
	name  string
	label string
	state fsm.State
}

func acq(id, scope uint64, name string) step {
	return step{op: "acquire", id: id, scope: scope, name: name}
}
func rel(id, scope uint64, name string) step {
	return step{op: "release", id: id, scope: scope, name: name}
}
func end(scope uint64, in fsm.State) step { return step{op: "end", id: scope, state: in} }

func play(steps ...step) *fsmtest.Audit {
	a := &fsmtest.Audit{}
	for _, s := range steps {
		e := fsm.Entry{ID: s.id, Scope: s.scope, Resource: fsm.Resource{Name: s.name}, State: s.state}
		if s.label != "" {
			e.Resource.Labels = []string{s.label}
		}
		switch s.op {
		case "acquire":
			a.Acquired(e)
		case "release":
			a.Released(e)
		case "end":
			a.Ended(s.id, s.state)
		}
	}
	return a
}

// A request as the fsm reports it: an attempt scope (entry 2) holding a
// gauge (3), closed early, then the root with the rest at done.
var good = []step{
	acq(1, 0, "active"),
	acq(2, 0, "attempt"),
	acq(3, 2, "gauge"),
	rel(3, 2, "gauge"),
	end(2, fsm.StateUpstream),
	rel(2, 0, "attempt"),
	acq(4, 2, "late"), // in the ended attempt: released at once
	rel(4, 2, "late"),
	rel(1, 0, "active"),
	end(0, fsm.StateDone),
}

func TestAuditPassesAGoodRequest(t *testing.T) {
	a := play(good...)
	if p := a.Finish(); len(p) > 0 {
		t.Fatalf("problems in a good request: %v", p)
	}
	bs := a.Bindings()
	if len(bs) != 4 || bs[2].Resource.Name != "gauge" || bs[2].Scope != 2 || bs[2].Acquired != 3 || bs[2].Released != 4 || bs[2].Releases != 1 {
		t.Fatalf("bindings %+v", bs)
	}
	sc := a.Scopes()
	if len(sc) != 2 || sc[0].Name != "request" || sc[0].Ended != 10 || sc[0].EndedIn != fsm.StateDone ||
		sc[1].Name != "attempt" || sc[1].Parent != 0 || sc[1].Ended != 5 || sc[1].EndedIn != fsm.StateUpstream {
		t.Fatalf("scopes %+v", sc)
	}
}

// Each rule bites: a broken sequence is reported with what broke.
func TestAuditReportsEachBrokenRule(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		want  string
	}{
		{"duplicate id", []step{acq(1, 0, "a"), acq(1, 0, "b")}, "binding id 1 acquired twice (b)"},
		{"unknown scope", []step{acq(1, 7, "a")}, "a acquired in scope 7, which no entry holds"},
		{"release without acquisition", []step{rel(1, 0, "a")}, "a released without an acquisition (id 1)"},
		{"released twice", []step{acq(1, 0, "a"), rel(1, 0, "a"), rel(1, 0, "a")}, "a released 2 times"},
		{"relabelled", []step{acq(1, 0, "a"), {op: "release", id: 1, name: "a", label: "x"}}, "a released as a{x}"},
		{"released from another scope", []step{acq(1, 0, "c"), acq(2, 1, "a"), rel(2, 0, "a")}, `a acquired in "c" (scope 1), released from "request" (scope 0)`},
		{"child entry released before the child ended", []step{acq(1, 0, "c"), acq(2, 1, "a"), rel(1, 0, "c")}, `the entry of scope "c" was released before the scope ended`},
		{"unknown scope ended", []step{end(3, fsm.StateLog)}, "scope 3 ended, but no entry holds it"},
		{"ended twice", []step{acq(1, 0, "c"), end(1, fsm.StateLog), rel(1, 0, "c"), end(1, fsm.StateLog)}, `"c" (scope 1) ended twice`},
		{"root ends before done", []step{end(0, fsm.StateLog)}, "the request scope ended in state log, not done"},
		{"ended while held", []step{acq(1, 0, "c"), acq(2, 1, "g"), end(1, fsm.StateUpstream)}, `"c" (scope 1) ended while g was still held`},
		{"child entry not released at once", []step{acq(1, 0, "c"), end(1, fsm.StateUpstream), acq(2, 0, "x")}, `"c" (scope 1) ended, and its entry was not released in its parent at once`},
		{"late acquisition kept", []step{acq(1, 0, "c"), end(1, fsm.StateUpstream), rel(1, 0, "c"), acq(2, 1, "late"), acq(3, 0, "x")}, `late was acquired in "c" (scope 1) after it ended, and not released at once`},
		{"never released", []step{acq(1, 0, "a")}, "a was never released"},
		{"never ended", []step{acq(1, 0, "c"), acq(2, 1, "g"), rel(2, 1, "g")}, `"c" (scope 1) never ended`},
		{"pending at the end", []step{acq(1, 0, "c"), end(1, fsm.StateUpstream)}, `"c" (scope 1) ended, and its entry was not released in its parent at once`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := play(tc.steps...).Finish()
			if !slices.Contains(p, tc.want) {
				t.Fatalf("problems:\n  %s\nwant %q", strings.Join(p, "\n  "), tc.want)
			}
		})
	}
}

// A child opened in a closed scope is born closed: its entry is acquired,
// the child ends, and its entry is released, with nothing in between.
func TestAuditAcceptsAChildBornClosed(t *testing.T) {
	a := play(acq(1, 0, "c"), end(1, fsm.StateUpstream), rel(1, 0, "c"),
		acq(2, 1, "born closed"), end(2, fsm.StateUpstream), rel(2, 1, "born closed"),
		end(0, fsm.StateDone))
	if p := a.Finish(); len(p) > 0 {
		t.Fatalf("problems: %v", p)
	}
	if p := a.Problems(); len(p) > 0 {
		t.Fatalf("problems: %v", p)
	}
}

// Problems reports as it goes; Finish adds the end-of-request checks.
func TestAuditProblemsBeforeFinish(t *testing.T) {
	a := play(acq(1, 0, "a"), acq(1, 0, "a"))
	if p := a.Problems(); len(p) != 1 {
		t.Fatalf("problems %v", p)
	}
	if p := a.Finish(); len(p) != 3 { // and a is never released, the request never ends
		t.Fatalf("after Finish: %v", p)
	}
	var empty fsmtest.Audit
	if empty.Scopes() != nil || len(empty.Bindings()) != 0 || len(empty.Problems()) != 0 {
		t.Fatal("the zero Audit is not empty")
	}
}
