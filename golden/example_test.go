package golden_test

import (
	"strings"
	"testing"

	"github.com/phasegate/phasegate/golden"
)

var update = golden.Flag()

// Each testdata/upper/*.txt holds an input, a line "----" and the output
// expected for it; -update rewrites the outputs. (Compiled, not run: it
// needs a test's *testing.T.)
func ExampleTranscripts() {
	TestUpper := func(t *testing.T) {
		golden.Transcripts(t, "testdata/upper", *update, func(t *testing.T, file, input string) string {
			return strings.ToUpper(input)
		})
	}
	_ = TestUpper
}
