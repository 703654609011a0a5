package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/golden"
)

// check runs what `phasegate validate` runs: LoadConfig, then building every
// plugin. It returns the problems, one per line, or "ok".
func check(name string, data []byte) string {
	env := func(k string) (string, bool) {
		if k == "PG_TEST_LISTEN" {
			return "127.0.0.1:9999", true
		}
		return "", false
	}
	cfg, err := LoadConfig(name, data, nil, env)
	if err == nil {
		err = Validate(cfg, nil)
	}
	if err != nil {
		return err.Error() + "\n"
	}
	return "ok\n"
}

// Each file under testdata/config is a config, a line "----", and what
// validation reports for it. go test ./gateway -update rewrites the
// expected part.
func TestConfigTranscripts(t *testing.T) {
	golden.Transcripts(t, filepath.Join("testdata", "config"), *update, func(t *testing.T, file, input string) string {
		return check(filepath.Base(file), []byte(input))
	})
}

func TestDemoConfigIsValid(t *testing.T) {
	if got := check(DemoConfigName, DemoConfig); got != "ok\n" {
		t.Fatalf("the embedded demo config is invalid:\n%s", got)
	}
}

// FuzzLoadConfig: no input may panic or hang the loader; every problem is
// positioned in the file.
func FuzzLoadConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "config", "*.txt"))
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		input, _, _ := strings.Cut(string(raw), "----\n")
		f.Add([]byte(input))
	}
	f.Add(DemoConfig)
	f.Fuzz(func(t *testing.T, data []byte) {
		out := check("fuzz.yaml", data)
		if out == "ok\n" {
			return
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if !strings.HasPrefix(line, "fuzz.yaml:") {
				t.Fatalf("problem without the file name: %q", line)
			}
		}
	})
}
