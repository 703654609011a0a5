package metrics

import (
	"strings"
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
