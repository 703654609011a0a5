package golden_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/golden"
)

func TestTranscriptsCompareAndUpdate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "upper.txt")
	if err := os.WriteFile(file, []byte("abc\n----\nstale\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	upper := func(t *testing.T, file, input string) string { return strings.ToUpper(input) }
	golden.Transcripts(t, dir, true, upper)
	if raw, _ := os.ReadFile(file); string(raw) != "abc\n----\nABC\n" {
		t.Fatalf("updated to %q", raw)
	}
	golden.Transcripts(t, dir, false, upper)
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.golden")
	golden.File(t, path, "one\n", true)
	golden.File(t, path, "one\n", false)
	if raw, _ := os.ReadFile(path); string(raw) != "one\n" {
		t.Fatalf("wrote %q", raw)
	}
}
