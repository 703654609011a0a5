// Package golden replays transcript files: testdata files that each hold
// an input, a line "----", and the output the code under test must produce
// for that input. With update set, the outputs are rewritten from the code
// instead of compared.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Flag registers the -update flag on the command line, once per test
// binary, and returns its value: a test package declares
// var update = golden.Flag() and passes *update to File and Transcripts.
// Nothing is registered until a package asks, so importing golden never
// clashes with a flag of the importer's own.
func Flag() *bool {
	if f := flag.Lookup("update"); f != nil {
		if u, ok := f.Value.(*updateFlag); ok {
			return (*bool)(u)
		}
		panic("golden: another -update flag is already registered")
	}
	u := new(updateFlag)
	flag.Var(u, "update", "rewrite golden files and transcripts under testdata/ from the code")
	return (*bool)(u)
}

// updateFlag is the value of -update.
type updateFlag bool

func (u *updateFlag) String() string   { return strconv.FormatBool(bool(*u)) }
func (u *updateFlag) IsBoolFlag() bool { return true }
func (u *updateFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	*u = updateFlag(v)
	return err
}

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
