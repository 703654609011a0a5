package metrics

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestModelLabelIsCutOnARuneBoundary(t *testing.T) {
	for _, m := range []string{"", "gpt-4o-mini", strings.Repeat("x", 128), strings.Repeat("x", 200), strings.Repeat("é", 100)} {
		got := Model(m)
		if len(got) > MaxModelLabelBytes || !utf8.ValidString(got) || !strings.HasPrefix(m, got) {
			t.Errorf("Model(%d bytes) = %d bytes, valid=%v", len(m), len(got), utf8.ValidString(got))
		}
		if len(m) <= MaxModelLabelBytes && got != m {
			t.Errorf("Model cut a short label: %q", got)
		}
	}
}

func TestNewRegistersEveryContractMetricOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	s.InitRoute("chat")
	if _, err := New(reg); err == nil {
		t.Fatal("a second set on the same registry must be refused, not panic")
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	if n := testutil.CollectAndCount(s.HTTPActive); n != 1 {
		t.Fatalf("InitRoute created %d active series, want 1", n)
	}
}

func TestModelLabelBoundsEachRoute(t *testing.T) {
	s, err := New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.SetMaxModelsPerRoute(2)
	for _, c := range []struct{ route, model, want string }{
		{"a", "m1", "m1"},
		{"a", "m2", "m2"},
		{"a", "m3", ModelOther},
		{"a", "m1", "m1"}, // admitted labels stay
		{"b", "m3", "m3"}, // each route has its own budget
		{"a", strings.Repeat("x", 300), ModelOther},
		{"b", strings.Repeat("x", 300), strings.Repeat("x", MaxModelLabelBytes)},
		{"b", strings.Repeat("x", 301), strings.Repeat("x", MaxModelLabelBytes)}, // the same label once cut
	} {
		if got := s.ModelLabel(c.route, c.model); got != c.want {
			t.Errorf("ModelLabel(%q, %.20q) = %.20q, want %.20q", c.route, c.model, got, c.want)
		}
	}
	s.SetMaxModelsPerRoute(1) // lowering keeps what was admitted
	if got := s.ModelLabel("a", "m2"); got != "m2" {
		t.Errorf("after lowering the limit: %q", got)
	}
	s.SetMaxModelsPerRoute(0)
	if got := s.ModelLabel("c", "m"); got != "m" {
		t.Errorf("a limit below 1 must mean 1, got %q", got)
	}
}

func TestModelLabelConcurrent(t *testing.T) {
	s, err := New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s.SetMaxModelsPerRoute(10)
	var wg sync.WaitGroup
	seen := make([]map[string]bool, 8)
	for g := range seen {
		seen[g] = map[string]bool{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				seen[g][s.ModelLabel("r", fmt.Sprint("m", i%50))] = true
			}
		}()
	}
	wg.Wait()
	all := map[string]bool{}
	for _, m := range seen {
		for k := range m {
			all[k] = true
		}
	}
	if len(all) != 11 || !all[ModelOther] {
		t.Errorf("%d distinct labels %v, want 10 models and %q", len(all), all, ModelOther)
	}
}
