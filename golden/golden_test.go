package golden_test

import (
	"flag"
	"os"
	"path/filepath"
	"strconv"
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

// Flag registers -update once: later calls share the value, and setting
// the flag sets it.
func TestFlag(t *testing.T) {
	if golden.Flag() != update {
		t.Fatal("a second Flag call registered another value")
	}
	defer flag.Set("update", strconv.FormatBool(*update))
	if err := flag.Set("update", "true"); err != nil || !*update {
		t.Fatalf("-update=true: %v, value %v", err, *update)
	}
	if err := flag.Set("update", "false"); err != nil || *update {
		t.Fatalf("-update=false: %v, value %v", err, *update)
	}
	if f := flag.Lookup("update"); f == nil || !f.Value.(interface{ IsBoolFlag() bool }).IsBoolFlag() {
		t.Fatal("-update is not a boolean flag")
	}
}
