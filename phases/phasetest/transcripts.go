package phasetest

import (
	"strings"
	"testing"

	"github.com/phasegate/phasegate/golden"
)

// Transcripts replays every *.txt file of dir as a golden transcript: a
// scenario in Parse's syntax, a line "----", then the journal RunScenario
// must produce for it (without its first entry, which restates the
// scenario). Each file is a subtest. With update set, each file's journal
// is rewritten from the run instead; callers wire it to their -update flag.
// phases/testdata/traces holds the runner's.
func Transcripts(t *testing.T, dir string, cfg Config, update bool) {
	t.Helper()
	golden.Transcripts(t, dir, update, func(t *testing.T, file, input string) string {
		s, err := Parse(input)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		res := RunScenario(t, cfg, s)
		return strings.Join(res.Journal[1:], "\n") + "\n"
	})
}
