package fsm_test

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/fsm/fsmtest"
)

// scopeModel drives a machine's scopes at random and keeps what the
// Scope promises to compare with.
type scopeModel struct {
	m        *fsm.Machine
	audit    *fsmtest.Audit
	scopes   []*fsm.Scope
	parent   map[*fsm.Scope]*fsm.Scope
	bindings []fsm.Binding
	in       map[string]*fsm.Scope // the scope each resource was acquired in
	calls    map[string]int        // release function calls per resource
	names    []string
	panics   int // panics raised by releases and the observer
	caught   []string
}

// panicker is an observer that panics on entering some states.
type panicker struct {
	states map[fsm.State]bool
	panics *int
}

func (p panicker) Entered(_ *fsm.Machine, s fsm.Step) {
	if p.states[s.To] {
		*p.panics++
		panic("observer panics entering " + string(s.To))
	}
}

// Random interleavings of acquisitions (in the root or in child scopes),
// releases that panic or not, early releases (repeated, from stale handles
// too), child closes and the lifecycle's events, with or without a
// Recovered callback and with an observer that may panic: no panic
// escapes, every release function runs exactly once, a scope's bindings are
// released when it closes, and the ledger's audit finds nothing wrong.
func TestPropertyScopeReleasesExactlyOnce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := &scopeModel{calls: map[string]int{}, in: map[string]*fsm.Scope{}, parent: map[*fsm.Scope]*fsm.Scope{}}
		panicAt := map[fsm.State]bool{}
		for _, st := range rapid.SliceOfN(rapid.SampledFrom(fsm.States()), 0, 2).Draw(t, "observer panics entering") {
			panicAt[st] = true
		}
		s.m = fsm.New(panicker{states: panicAt, panics: &s.panics})
		if rapid.Bool().Draw(t, "with Recovered") {
			s.m.Recovered = func(where string, v any) { s.caught = append(s.caught, fmt.Sprint(where, ": ", v)) }
		}
		s.audit = &fsmtest.Audit{}
		s.m.SetLedger(s.audit)
		_ = s.m.Fire(fsm.EventStart)
		s.scopes = []*fsm.Scope{s.m.Scope()}
		t.Repeat(map[string]func(*rapid.T){
			"acquire": func(t *rapid.T) {
				sc := rapid.SampledFrom(s.scopes).Draw(t, "scope")
				name := fmt.Sprintf("r%d", len(s.names)+1)
				label := rapid.StringMatching(`[a-z]{0,3}`).Draw(t, "label")
				panics := rapid.IntRange(0, 4).Draw(t, "release panics") == 4
				s.names = append(s.names, name)
				s.in[name] = sc
				closed := sc.Closed()
				b := sc.Acquire(fsm.Resource{Name: name, Labels: []string{label}}, func() {
					s.calls[name]++
					if panics {
						s.panics++
						panic("release of " + name + " panics")
					}
				})
				if closed && (b.Held() || s.calls[name] != 1) {
					t.Fatalf("acquisition on a closed scope was not released at once")
				}
				s.bindings = append(s.bindings, b)
			},
			"child": func(t *rapid.T) {
				sc := rapid.SampledFrom(s.scopes).Draw(t, "parent")
				c := sc.Child("attempt")
				s.parent[c] = sc
				s.scopes = append(s.scopes, c)
			},
			"close": func(t *rapid.T) {
				// The root scope is the machine's to close, on done.
				if len(s.scopes) == 1 {
					t.Skip("no child scope")
				}
				sc := rapid.SampledFrom(s.scopes[1:]).Draw(t, "scope")
				sc.Close()
				s.checkClosed(t, sc)
			},
			"release": func(t *rapid.T) {
				if len(s.bindings) == 0 {
					t.Skip("nothing acquired")
				}
				b := rapid.SampledFrom(s.bindings).Draw(t, "binding")
				b.Release()
				if b.Held() {
					t.Fatal("binding still held after Release")
				}
			},
			"zero": func(t *rapid.T) { fsm.Binding{}.Release() },
			"event": func(t *rapid.T) {
				ev := rapid.SampledFrom([]fsm.Event{fsm.EventNext, fsm.EventExit, fsm.EventAbort}).Draw(t, "event")
				_ = s.m.Fire(ev)
			},
			"": func(t *rapid.T) {
				for name, n := range s.calls {
					if n > 1 {
						t.Fatalf("%s released %d times", name, n)
					}
				}
				if p := s.audit.Problems(); len(p) > 0 {
					t.Fatalf("the audit found:\n%s", strings.Join(p, "\n"))
				}
			},
		})
		s.m.ForceDone()
		for _, sc := range s.scopes {
			s.checkClosed(t, sc)
		}
		for _, name := range s.names {
			if s.calls[name] != 1 {
				t.Fatalf("after done, %s released %d times, want 1", name, s.calls[name])
			}
		}
		if p := s.audit.Finish(); len(p) > 0 {
			t.Fatalf("the audit found:\n%s", strings.Join(p, "\n"))
		}
		if s.m.Recovered != nil && len(s.caught) != s.panics {
			t.Fatalf("%d panics, %d reached Recovered: %v", s.panics, len(s.caught), s.caught)
		}
		s.m.Release()
	})
}

// checkClosed checks a closed scope: every resource acquired in it, or in
// a scope inside it, has been released, and its children are closed.
func (s *scopeModel) checkClosed(t *rapid.T, sc *fsm.Scope) {
	if !sc.Closed() {
		t.Fatal("a closed scope reads as open")
	}
	for name, in := range s.in {
		if s.inside(in, sc) && s.calls[name] != 1 {
			t.Fatalf("%s was released %d times when its scope closed", name, s.calls[name])
		}
	}
	for c, p := range s.parent {
		if p == sc && !c.Closed() {
			t.Fatal("a scope closed, but a child of it is open")
		}
	}
}

// inside reports whether sc is outer or nested in it.
func (s *scopeModel) inside(sc, outer *fsm.Scope) bool {
	for ; sc != nil; sc = s.parent[sc] {
		if sc == outer {
			return true
		}
	}
	return false
}
