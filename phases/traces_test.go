package phases_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

var update = flag.Bool("update", false, "rewrite the expected part of testdata transcripts")

// Each file under testdata/traces is a scenario in phasetest's syntax, a
// line "----", and the trace the runner must produce for it: transitions,
// hook calls, acquisitions and releases, and what the client received.
// go test ./phases -update rewrites the expected part.
func TestTraceTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "traces", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(raw), "----\n")
			if !ok {
				t.Fatalf("%s: no ---- separator", file)
			}
			s, err := phasetest.Parse(input)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			res := phasetest.RunScenario(t, phasetest.Config{
				Plugins: func(*phasetest.Env) []phases.Plugin { return nil },
			}, s)
			got := strings.Join(res.Journal[1:], "\n") + "\n" // [0] restates the scenario
			if *update {
				if err := os.WriteFile(file, []byte(input+"----\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s: trace differs (go test ./phases -update rewrites it)\n--- got\n%s--- want\n%s", file, got, want)
			}
		})
	}
}
