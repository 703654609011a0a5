package fsm

import (
	"errors"
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/fsm/testhook"
)

// names records what a ledger is told, as "acquire NAME", "release NAME"
// and "end ID" lines. (fsm/fsmtest's Audit checks more, but importing it
// here would be a cycle.)
type names struct{ lines []string }

func (l *names) Acquired(e Entry)            { l.lines = append(l.lines, "acquire "+e.Resource.Name) }
func (l *names) Released(e Entry)            { l.lines = append(l.lines, "release "+e.Resource.Name) }
func (l *names) Ended(scope uint64, _ State) { l.lines = append(l.lines, fmt.Sprint("end ", scope)) }

// A machine reused from the pool serves a second request with its own
// ledger: every handle of the first request (bindings, child scopes,
// repeated and late calls on them) stays inert, although binding ids start
// again from 1 and collide with the first request's.
func TestPropertyPooledMachineReuse(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := New(nil)
		first := &names{}
		m.SetLedger(first)
		if err := m.Fire(EventStart); err != nil {
			t.Fatal(err)
		}
		scopes := []*Scope{m.Scope()}
		var old []Binding
		for i := rapid.IntRange(1, 6).Draw(t, "first request's bindings"); i > 0; i-- {
			sc := rapid.SampledFrom(scopes).Draw(t, "scope")
			if rapid.Bool().Draw(t, "open a child") {
				sc = sc.Child("first's child")
				scopes = append(scopes, sc)
			}
			b := sc.Acquire(Resource{Name: "first"}, func() {})
			if rapid.Bool().Draw(t, "release early") {
				b.Release()
			}
			old = append(old, b)
		}
		m.ForceDone()
		seen := len(first.lines)
		if !m.retire() {
			t.Fatal("a machine done in good order was not retired for reuse")
		}
		if again := m.reuse(nil); again != m {
			t.Fatal("the pool check refused a clean machine")
		}
		second := &names{}
		m.SetLedger(second)
		if err := m.Fire(EventStart); err != nil {
			t.Fatalf("the reused machine refused start: %v", err)
		}
		if len(m.Trace()) != 1 || m.Scope().Closed() {
			t.Fatalf("the reused machine is not clean: trace %v, scope closed %v", m.Trace(), m.Scope().Closed())
		}
		hits := make([]int, rapid.IntRange(1, 6).Draw(t, "second request's bindings"))
		var cur []Binding
		for i := range hits {
			cur = append(cur, m.Scope().Acquire(Resource{Name: "second"}, func() { hits[i]++ }))
		}
		// The root scope is the second request's too; its children are stale.
		children := scopes[1:]
		for range rapid.IntRange(0, 12).Draw(t, "stale calls") {
			call := rapid.IntRange(0, 3).Draw(t, "stale call")
			if call > 0 && len(children) == 0 {
				continue
			}
			switch call {
			case 0:
				b := rapid.SampledFrom(old).Draw(t, "stale binding")
				b.Release()
				if b.Held() {
					t.Fatal("a binding of the first request reads as held")
				}
			case 1:
				rapid.SampledFrom(children).Draw(t, "stale scope").Close()
			case 2:
				ran := 0
				rapid.SampledFrom(children).Draw(t, "stale child").Acquire(Resource{Name: "first, late"}, func() { ran++ })
				if ran != 1 {
					t.Fatalf("a late acquisition in a closed scope ran its release %d times", ran)
				}
			case 3:
				c := rapid.SampledFrom(children).Draw(t, "stale parent").Child("first's late child")
				if !c.Closed() {
					t.Fatal("a child opened in a closed scope is open")
				}
			}
		}
		for i, b := range cur {
			if !b.Held() || hits[i] != 0 {
				t.Fatalf("a stale handle released the second request's binding %d (held %v, released %d times)", i, b.Held(), hits[i])
			}
		}
		if len(first.lines) != seen {
			t.Fatalf("the first request's ledger heard of the second: %v", first.lines[seen:])
		}
		for _, line := range second.lines {
			if line != "acquire second" {
				t.Fatalf("the second request's ledger heard of the first: %v", second.lines)
			}
		}
		m.ForceDone()
		for i, n := range hits {
			if n != 1 {
				t.Fatalf("the second request's binding %d was released %d times", i, n)
			}
		}
		m.Release()
	})
}

// A release that does not settle its binding (here: one that marks it held
// again) must not make Close try it forever: Close tries each binding once
// and reports what is left as an *UnsettledError.
func TestCloseReportsUnsettledBinding(t *testing.T) {
	m := New(nil)
	_ = m.Fire(EventStart)
	var reported []error
	m.Recovered = func(where string, v any) {
		if err, ok := v.(error); ok && where == "close" {
			reported = append(reported, err)
		}
	}
	sc := m.Scope().Child("attempt")
	kept := 0
	sc.Acquire(Resource{Name: "kept", Labels: []string{"a"}}, func() {
		kept++
		sc.mu.Lock()
		sc.held[0].released = false
		sc.mu.Unlock()
	})
	sc.Close()
	var ue *UnsettledError
	if len(reported) != 1 || !errors.As(reported[0], &ue) || ue.Scope != sc.ID() || len(ue.Held) != 1 || ue.Held[0].String() != "kept{a}" {
		t.Fatalf("reported %v, want one UnsettledError naming kept{a}", reported)
	}
	if kept != 1 {
		t.Fatalf("the release ran %d times", kept)
	}
	if want := "fsm: scope 1 closed with bindings still held: kept{a}"; ue.Error() != want {
		t.Errorf("message %q, want %q", ue.Error(), want)
	}
	m.ForceDone()
	m.Release()
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

// The testing hook wedges the machine that owns a scope, root or child,
// while the machine can still move, and nothing else.
func TestWedgeHook(t *testing.T) {
	m := New(nil)
	_ = m.Fire(EventStart)
	child := m.Scope().Child("c")
	if testhook.WedgeMachine("not a scope") || testhook.WedgeMachine((*Scope)(nil)) {
		t.Fatal("wedged a non-scope")
	}
	if !testhook.WedgeMachine(child) {
		t.Fatal("could not wedge a live machine through a child scope")
	}
	if err := m.Fire(EventNext); !errors.Is(err, ErrStuck) {
		t.Fatalf("Fire on a wedged machine: %v, want ErrStuck", err)
	}
	if !m.ForceDone() || !child.Closed() {
		t.Fatal("ForceDone did not finish the wedged machine")
	}
	if testhook.WedgeMachine(m.Scope()) {
		t.Fatal("wedged a machine already done")
	}

	m = New(nil)
	_ = m.Fire(EventStart)
	child = m.Scope().Child("c")
	m.ForceDone()
	if !m.retire() {
		t.Fatal("a healthy machine was not retired")
	}
	m = m.reuse(nil)
	_ = m.Fire(EventStart)
	if testhook.WedgeMachine(child) {
		t.Fatal("wedged a machine through a scope of its previous request")
	}
	if err := m.Fire(EventNext); err != nil {
		t.Fatalf("the next request's machine is stuck: %v", err)
	}
	m.ForceDone()
	m.Release()
}
