package phasetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Transcripts replays every *.txt file of dir as a golden transcript: a
// scenario in Parse's syntax, a line "----", then the journal RunScenario
// must produce for it (without its first entry, which restates the
// scenario). Each file is a subtest. With update set, each file's journal
// is rewritten from the run instead; callers wire it to their -update flag.
// phases/testdata/traces holds the runner's.
func Transcripts(t *testing.T, dir string, cfg Config, update bool) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts in %s: %v", dir, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut(string(raw), "----\n")
			if !ok {
				t.Fatalf("%s: no ---- line", file)
			}
			s, err := Parse(input)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			res := RunScenario(t, cfg, s)
			got := strings.Join(res.Journal[1:], "\n") + "\n"
			if update {
				if err := os.WriteFile(file, []byte(input+"----\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s: the journal differs (-update rewrites it)\n--- got\n%s--- want\n%s", file, got, want)
			}
		})
	}
}
