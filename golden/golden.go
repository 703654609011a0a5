// Package golden replays transcript files: testdata files that each hold
// an input, a line "----", and the output the code under test must produce
// for that input. With update set, the outputs are rewritten from the code
// instead of compared.
package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Transcripts runs every *.txt file of dir as a subtest: run turns the
// part before "----" into the output, which must equal the part after it,
// or replaces it when update is set.
func Transcripts(t *testing.T, dir string, update bool, run func(t *testing.T, file, input string) string) {
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
			got := run(t, file, input)
			if update {
				if err := os.WriteFile(file, []byte(input+"----\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s differs (-update rewrites it)\n--- got\n%s--- want\n%s", file, got, want)
			}
		})
	}
}

// File compares got with the content of the file at path, or writes got
// there when update is set.
func File(t *testing.T, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (-update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (-update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
