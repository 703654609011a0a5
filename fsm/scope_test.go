package fsm

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// ledger checks, as it is told, what the Scope promises.
type ledger struct {
	t        *rapid.T
	acquired map[uint64]Resource
	released map[uint64]State
}

func (l *ledger) Acquired(id uint64, r Resource, in State) {
	if _, dup := l.acquired[id]; dup {
		l.t.Fatalf("binding id %d acquired twice", id)
	}
	l.acquired[id] = r
}

func (l *ledger) Released(id uint64, r Resource, in State) {
	a, ok := l.acquired[id]
	if !ok {
		l.t.Fatalf("binding %d released without acquisition", id)
	}
	if _, twice := l.released[id]; twice {
		l.t.Fatalf("binding %d (%s) released twice", id, a.Name)
	}
	if fmt.Sprint(a) != fmt.Sprint(r) {
		l.t.Fatalf("binding %d released as %v, acquired as %v", id, r, a)
	}
	l.released[id] = in
}

type scopeModel struct {
	m        *Machine
	l        *ledger
	scopes   []*Scope
	bindings []Binding
	calls    map[string]int // release function calls per resource
	names    []string
	n        int
}

// Random interleavings of acquisitions (in the root or in child scopes),
// early releases (repeated, from stale handles too), child closes and the
// lifecycle's events: every release function runs exactly once, by done at
// the latest, and the ledger sees the labels of the acquisition.
func TestPropertyScopeReleasesExactlyOnce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := &scopeModel{calls: map[string]int{}}
		s.m = New(nil)
		s.l = &ledger{t: t, acquired: map[uint64]Resource{}, released: map[uint64]State{}}
		s.m.SetLedger(s.l)
		_ = s.m.Fire(EventStart)
		s.scopes = []*Scope{s.m.Scope()}
		t.Repeat(map[string]func(*rapid.T){
			"acquire": func(t *rapid.T) {
				sc := rapid.SampledFrom(s.scopes).Draw(t, "scope")
				s.n++
				name := fmt.Sprintf("r%d", s.n)
				label := rapid.StringMatching(`[a-z]{0,3}`).Draw(t, "label")
				s.names = append(s.names, name)
				closed := sc.Closed()
				b := sc.Acquire(Resource{Name: name, Labels: []string{label}}, func() { s.calls[name]++ })
				if closed && (b.Held() || s.calls[name] != 1) {
					t.Fatalf("acquisition on a closed scope was not released at once")
				}
				s.bindings = append(s.bindings, b)
			},
			"child": func(t *rapid.T) {
				sc := rapid.SampledFrom(s.scopes).Draw(t, "parent")
				s.scopes = append(s.scopes, sc.Child("attempt"))
			},
			"close": func(t *rapid.T) {
				rapid.SampledFrom(s.scopes).Draw(t, "scope").Close()
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
			"zero": func(t *rapid.T) { Binding{}.Release() },
			"event": func(t *rapid.T) {
				ev := rapid.SampledFrom([]Event{EventNext, EventExit, EventAbort}).Draw(t, "event")
				_ = s.m.Fire(ev)
			},
			"": func(t *rapid.T) {
				for name, n := range s.calls {
					if n > 1 {
						t.Fatalf("%s released %d times", name, n)
					}
				}
			},
		})
		s.m.ForceDone()
		for _, name := range s.names {
			if s.calls[name] != 1 {
				t.Fatalf("after done, %s released %d times, want 1", name, s.calls[name])
			}
		}
		if len(s.l.acquired) != len(s.l.released) {
			t.Fatalf("ledger: %d acquired, %d released", len(s.l.acquired), len(s.l.released))
		}
		old := s.bindings
		s.m.Release()
		// Handles kept past the request must not touch the next request
		// that reuses the pooled machine.
		m2 := New(nil)
		_ = m2.Fire(EventStart)
		hit := 0
		m2.Scope().Acquire(Resource{Name: "next request"}, func() { hit++ })
		for _, b := range old {
			b.Release()
		}
		for _, sc := range s.scopes[1:] {
			sc.Close()
			sc.Acquire(Resource{Name: "late"}, func() {})
		}
		if hit != 0 {
			t.Fatal("a stale handle released a binding of the next request")
		}
		m2.ForceDone()
		if hit != 1 {
			t.Fatalf("next request's binding released %d times", hit)
		}
		m2.Release()
	})
}

func TestReleasePanicRecoveredOthersStillRun(t *testing.T) {
	m := New(nil)
	_ = m.Fire(EventStart)
	var recovered []string
	m.Recovered = func(where string, v any) { recovered = append(recovered, fmt.Sprint(where, ":", v)) }
	order := ""
	m.Scope().Acquire(Resource{Name: "a"}, func() { order += "a" })
	m.Scope().Acquire(Resource{Name: "b"}, func() { panic("b's release is buggy") })
	m.Scope().Acquire(Resource{Name: "c"}, func() { order += "c" })
	m.ForceDone()
	if order != "ca" {
		t.Fatalf("release order %q, want newest first %q", order, "ca")
	}
	if len(recovered) != 1 || recovered[0] != "release:b's release is buggy" {
		t.Fatalf("recovered %v", recovered)
	}
	m.Release()
}
