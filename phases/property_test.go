package phases_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/fsm/fsmtest"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

// The runner itself, surrounded only by the harness's scripted plugins,
// over random paths: the lifecycle's rules hold (docs/testing.md).
func TestPropertyRunnerKeepsTheRules(t *testing.T) {
	phasetest.Check(t, phasetest.Config{
		Plugins: func(*phasetest.Env) []phases.Plugin { return nil },
	})
}

// gaugeModel is what a BoundGauge's series must read.
type gaugeModel struct {
	held   map[string]int // label value → bindings held
	labels []string       // the label value of each binding
	in     []*fsm.Scope   // the scope of each binding
	parent map[*fsm.Scope]*fsm.Scope
	b      []fsm.Binding
}

// Random acquisitions on the request's scope and in child scopes, each
// with a label slice the caller overwrites right after Acquire, random
// early releases, scope closes and the way to done: every series reads the
// number of its bindings still held (0 at the end), no other series ever
// appears, and the ledger sees each binding with its acquisition labels.
func TestPropertyBoundGaugeKeepsItsSeries(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		vec := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "inflight", Help: "h"}, []string{"model", "route"})
		g := phases.BoundGauge{Name: "inflight", Vec: vec}
		m := fsm.New(nil)
		audit := &fsmtest.Audit{}
		m.SetLedger(audit)
		_ = m.Fire(fsm.EventStart)
		st := &gaugeModel{held: map[string]int{}, parent: map[*fsm.Scope]*fsm.Scope{}}
		scopes := []*fsm.Scope{m.Scope()}
		t.Repeat(map[string]func(*rapid.T){
			"acquire": func(t *rapid.T) {
				sc := rapid.SampledFrom(scopes).Draw(t, "scope")
				model := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(t, "model")
				labels := []string{model, "r"}
				b := g.Acquire(sc, labels...)
				labels[0], labels[1] = "changed", "changed"
				if !sc.Closed() {
					st.held[model]++
				}
				st.labels, st.in, st.b = append(st.labels, model), append(st.in, sc), append(st.b, b)
			},
			"child": func(t *rapid.T) {
				sc := rapid.SampledFrom(scopes).Draw(t, "parent")
				c := sc.Child("attempt")
				st.parent[c] = sc
				scopes = append(scopes, c)
			},
			"release": func(t *rapid.T) {
				if len(st.b) == 0 {
					t.Skip("nothing acquired")
				}
				i := rapid.IntRange(0, len(st.b)-1).Draw(t, "binding")
				if st.b[i].Held() {
					st.held[st.labels[i]]--
				}
				st.b[i].Release()
			},
			"close": func(t *rapid.T) {
				if len(scopes) == 1 {
					t.Skip("no child scope")
				}
				sc := rapid.SampledFrom(scopes[1:]).Draw(t, "scope")
				for i := range st.b {
					if st.b[i].Held() && st.inside(st.in[i], sc) {
						st.held[st.labels[i]]--
					}
				}
				sc.Close()
			},
			"": func(t *rapid.T) { st.check(t, vec) },
		})
		m.ForceDone()
		clear(st.held)
		st.check(t, vec)
		for _, b := range audit.Bindings() {
			if b.Resource.Name == "inflight" && (len(b.Resource.Labels) != 2 || b.Resource.Labels[1] != "r") {
				t.Fatalf("the ledger saw %s, not its acquisition labels", b.Resource)
			}
		}
		if p := audit.Finish(); len(p) > 0 {
			t.Fatalf("the audit found:\n%s", strings.Join(p, "\n"))
		}
		m.Release()
	})
}

func (st *gaugeModel) inside(sc, outer *fsm.Scope) bool {
	for ; sc != nil; sc = st.parent[sc] {
		if sc == outer {
			return true
		}
	}
	return false
}

// check compares every series of vec with the model.
func (st *gaugeModel) check(t *rapid.T, vec *prometheus.GaugeVec) {
	n := testutil.CollectAndCount(vec)
	for model, want := range st.held {
		if got := testutil.ToFloat64(vec.WithLabelValues(model, "r")); got != float64(want) {
			t.Fatalf("series %s reads %v with %d bindings held", model, got, want)
		}
	}
	if n > 3 {
		t.Fatalf("%d series: one was moved with labels other than its acquisition's", n)
	}
	if got := testutil.ToFloat64(vec.WithLabelValues("changed", "changed")); got != 0 {
		t.Fatalf("the overwritten labels' series reads %v", got)
	}
	vec.DeleteLabelValues("changed", "changed")
}
