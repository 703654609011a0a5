package fsm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/golden"
)

var update = golden.Flag()

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The table is the lifecycle (docs/lifecycle.md); this golden file is its
// human-readable copy, so a change to the lifecycle shows up in review.
func TestTableGolden(t *testing.T) {
	var b strings.Builder
	for _, tr := range Table() {
		b.WriteString(string(tr.Event) + ": " + string(tr.From) + " -> " + string(tr.To) + "\n")
	}
	golden.File(t, filepath.Join("testdata", "table.golden"), b.String(), *update)
}

func TestDiagramGolden(t *testing.T) {
	for _, f := range []Format{FormatMermaid, FormatDOT} {
		s, ok := Diagram(f)
		if !ok {
			t.Fatalf("Diagram(%s) failed", f)
		}
		golden.File(t, filepath.Join("testdata", "lifecycle."+string(f)+".golden"), s, *update)
	}
	if _, ok := Diagram("svg"); ok {
		t.Error("Diagram accepted an unknown format")
	}
}

// Every step is looplab's own: after each event the looplab instance is in
// the state the machine reports (Fire also checks it against the table).
func TestLooplabStateAgreesWithMachine(t *testing.T) {
	m := New(nil)
	defer m.Release()
	for _, ev := range []Event{EventStart, EventNext, EventExit, EventNext, EventExit, EventFinish} {
		if err := m.Fire(ev); err != nil {
			t.Fatal(err)
		}
		if got := State(m.lf.Current()); got != m.State() {
			t.Fatalf("after %s looplab is in %s, the machine says %s", ev, got, m.State())
		}
	}
}

func TestEveryStateReachableAndDoneTerminal(t *testing.T) {
	seen := map[State]bool{StateNew: true}
	for changed := true; changed; {
		changed = false
		for _, tr := range table {
			if seen[tr.From] && !seen[tr.To] {
				seen[tr.To], changed = true, true
			}
		}
	}
	for _, s := range allStates {
		if !seen[s] {
			t.Errorf("state %s is unreachable", s)
		}
		if terminal(s) != (s == StateDone) {
			t.Errorf("terminal(%s) = %v", s, terminal(s))
		}
	}
	for _, tr := range table {
		if tr.From == tr.To {
			t.Errorf("%v is a self-transition; looplab skips those", tr)
		}
	}
}

// Random event sequences: Fire succeeds exactly when the table allows the
// event, the trace records exactly the successful steps, and done is final.
func TestPropertyMachineFollowsTable(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := New(nil)
		defer m.Release()
		var want []Step
		for i := 0; i < 12; i++ {
			ev := rapid.SampledFrom(allEvents[:]).Draw(t, "event")
			from := m.State()
			to, ok := Target(from, ev)
			if m.Can(ev) != ok {
				t.Fatalf("Can(%s) in %s = %v, table says %v", ev, from, !ok, ok)
			}
			err := m.Fire(ev)
			if ok != (err == nil) {
				t.Fatalf("Fire(%s) in %s: err=%v, table allows=%v", ev, from, err, ok)
			}
			if !ok {
				var te *TransitionError
				if !errors.As(err, &te) || te.State != from || te.Event != ev {
					t.Fatalf("Fire(%s) in %s returned %v, want a TransitionError", ev, from, err)
				}
				if m.State() != from {
					t.Fatalf("a refused event moved the machine from %s to %s", from, m.State())
				}
				continue
			}
			want = append(want, Step{ev, from, to})
			if m.State() != to {
				t.Fatalf("after %s from %s: state %s, want %s", ev, from, m.State(), to)
			}
		}
		got := m.Trace()
		if len(got) != len(want) {
			t.Fatalf("trace %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("trace %v, want %v", got, want)
			}
		}
		m.ForceDone()
		if m.State() != StateDone || m.Forced() {
			t.Fatalf("ForceDone from a healthy machine: state %s forced %v", m.State(), m.Forced())
		}
	})
}

type recObserver struct{ steps []Step }

func (o *recObserver) Entered(_ *Machine, s Step) { o.steps = append(o.steps, s) }

func TestObserverSeesEveryEntryOutsideLooplab(t *testing.T) {
	o := &recObserver{}
	m := New(o)
	for _, ev := range []Event{EventStart, EventNext, EventExit, EventExit, EventExit, EventFinish} {
		if err := m.Fire(ev); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := Path(o.steps), "access>upstream>header_filter>body_filter>log>done"; got != want {
		t.Fatalf("observer path %q, want %q", got, want)
	}
	if got := m.Path(); got != Path(o.steps) {
		t.Fatalf("trace path %q differs from observer's %q", got, Path(o.steps))
	}
	m.Release()
}

type reentrant struct{ err error }

func (o *reentrant) Entered(m *Machine, s Step) {
	if s.To == StateAccess {
		o.err = m.Fire(EventNext)
	}
}

// looplab deadlocks or nests on a re-entrant Event; we refuse it.
func TestReentrantFireRefused(t *testing.T) {
	o := &reentrant{}
	m := New(o)
	if err := m.Fire(EventStart); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(o.err, ErrReentrant) {
		t.Fatalf("nested Fire returned %v, want ErrReentrant", o.err)
	}
	if m.State() != StateAccess {
		t.Fatalf("state %s after refused nested Fire", m.State())
	}
	m.ForceDone()
	m.Release()
}

type panicky struct{}

func (panicky) Entered(*Machine, Step) { panic("observer bug") }

func TestObserverPanicRecovered(t *testing.T) {
	m := New(panicky{})
	var got []any
	m.Recovered = func(where string, v any) { got = append(got, where, v) }
	released := 0
	for _, ev := range []Event{EventStart, EventAbort, EventFinish} {
		if ev == EventAbort {
			m.Scope().Acquire(Resource{Name: "x"}, func() { released++ })
		}
		if err := m.Fire(ev); err != nil {
			t.Fatalf("%s: %v", ev, err)
		}
	}
	if m.State() != StateDone || released != 1 || len(got) != 6 {
		t.Fatalf("state %s released %d recovered %v", m.State(), released, got)
	}
	m.Release()
}

// A stuck looplab instance (here: one we wedge the way a cancelled context
// does in the wild) is finished by ForceDone, and its bindings released.
func TestForceDoneFinishesStuckMachine(t *testing.T) {
	for _, stopAt := range []State{StateNew, StateAccess, StateUpstream, StateHeaderFilter, StateBodyFilter, StateLog} {
		t.Run(string(stopAt), func(t *testing.T) {
			m := New(nil)
			for m.State() != stopAt {
				ev := EventNext
				if m.State() == StateNew {
					ev = EventStart
				}
				if m.State() == StateBodyFilter {
					ev = EventNext
				}
				if err := m.Fire(ev); err != nil {
					t.Fatal(err)
				}
			}
			n := 0
			m.Scope().Acquire(Resource{Name: "g"}, func() { n++ })
			if !m.wedge() {
				t.Fatal("no event left to wedge on")
			}
			if err := m.Fire(EventAbort); !errors.Is(err, ErrStuck) && stopAt.Live() {
				t.Fatalf("Fire on a wedged machine: %v, want ErrStuck", err)
			}
			if !m.ForceDone() {
				t.Fatal("ForceDone did not report forcing")
			}
			if m.State() != StateDone || n != 1 {
				t.Fatalf("state %s, released %d times", m.State(), n)
			}
			m.ForceDone()
			if n != 1 {
				t.Fatalf("second ForceDone released again (%d)", n)
			}
			m.Release() // must not pool a forced machine
			if m2 := New(nil); m2 == m {
				t.Fatal("a forced machine went back to the pool")
			}
		})
	}
}

func TestPooledMachineIsClean(t *testing.T) {
	for i := 0; i < 50; i++ {
		m := New(nil)
		if m.State() != StateNew || len(m.Trace()) != 0 || m.Scope().Closed() {
			t.Fatalf("pooled machine not clean: %s %v closed=%v", m.State(), m.Trace(), m.Scope().Closed())
		}
		_ = m.Fire(EventStart)
		_ = m.Fire(EventAbort)
		_ = m.Fire(EventFinish)
		m.Release()
	}
}

func TestConcurrentReleaseOnce(t *testing.T) {
	m := New(nil)
	_ = m.Fire(EventStart)
	var mu sync.Mutex
	count := 0
	b := m.Scope().Acquire(Resource{Name: "slot"}, func() { mu.Lock(); count++; mu.Unlock() })
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); b.Release() }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); m.ForceDone() }()
	wg.Wait()
	if count != 1 {
		t.Fatalf("release ran %d times", count)
	}
	m.Release()
}

func TestTargetIndexMatchesTable(t *testing.T) {
	for _, s := range allStates {
		for _, ev := range allEvents {
			want, wantOK := State(""), false
			for _, tr := range table {
				if tr.From == s && tr.Event == ev {
					want, wantOK = tr.To, true
				}
			}
			if got, ok := Target(s, ev); got != want || ok != wantOK {
				t.Errorf("Target(%s, %s) = %s %v, table says %s %v", s, ev, got, ok, want, wantOK)
			}
		}
	}
	if _, ok := Target("nowhere", EventNext); ok {
		t.Error("Target accepted an unknown state")
	}
}

// docs/lifecycle.md embeds the generated diagrams between markers; they must
// be what the code draws. go test ./fsm -update rewrites them.
func TestDocsEmbedGeneratedDiagram(t *testing.T) {
	path := filepath.Join("..", "docs", "lifecycle.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, f := range []Format{FormatMermaid, FormatDOT} {
		begin, end := "<!-- lifecycle:"+string(f)+":begin -->\n", "<!-- lifecycle:"+string(f)+":end -->"
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("%s lacks the %s diagram markers", path, f)
		}
		diagram, _ := Diagram(f)
		want := "```" + string(f) + "\n" + diagram + "```\n"
		if got := doc[i+len(begin) : j]; got != want {
			if !*update {
				t.Errorf("%s embeds a stale %s diagram (go test ./fsm -update rewrites it)\n--- embedded\n%s--- generated\n%s", path, f, got, want)
				continue
			}
			doc = doc[:i+len(begin)] + want + doc[j:]
		}
	}
	if *update {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Path renders any step list as the states entered, joined by ">": from
// the table of rendered paths when the table allows the path, by building
// it otherwise (a forced step, a hand-made list); a path the table allows
// costs no allocation.
func TestPathRendersEveryStepList(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		states := rapid.SliceOfN(rapid.SampledFrom(allStates[:]), 0, maxSteps+2).Draw(rt, "states")
		var steps []Step
		want := make([]string, len(states))
		for i, s := range states {
			steps = append(steps, Step{Event: EventNext, To: s})
			want[i] = string(s)
		}
		if got := Path(steps); got != strings.Join(want, ">") {
			rt.Fatalf("Path = %q, want %q", got, strings.Join(want, ">"))
		}
	})
	// Paths the machine takes: events drawn among those its state allows.
	rapid.Check(t, func(rt *rapid.T) {
		m := New(nil)
		defer m.Release()
		var want []string
		for m.State() != StateDone {
			var allowed []Event
			for _, ev := range allEvents {
				if m.Can(ev) {
					allowed = append(allowed, ev)
				}
			}
			if err := m.Fire(rapid.SampledFrom(allowed).Draw(rt, "event")); err != nil {
				rt.Fatal(err)
			}
			want = append(want, string(m.State()))
		}
		if got := Path(m.Trace()); got != strings.Join(want, ">") {
			rt.Fatalf("Path = %q, want %q", got, strings.Join(want, ">"))
		}
	})
	m := New(nil)
	for _, ev := range []Event{EventStart, EventNext, EventExit, EventExit, EventExit, EventFinish} {
		if err := m.Fire(ev); err != nil {
			t.Fatal(err)
		}
	}
	if got := Path(m.Trace()); got != "access>upstream>header_filter>body_filter>log>done" {
		t.Fatalf("Path = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Path(m.Trace()) }); n != 0 {
		t.Fatalf("Path of an allowed path allocates %v times", n)
	}
	m.Release()
}
