package phases_test

import (
	"path/filepath"
	"testing"

	"github.com/phasegate/phasegate/golden"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

var update = golden.Flag()

// Each file under testdata/traces is a scenario in phasetest's syntax, a
// line "----", and the journal the runner must produce for it:
// transitions, hook calls, acquisitions, releases and scope ends, and what
// the client received. go test ./phases -update rewrites the journals.
func TestTraceTranscripts(t *testing.T) {
	phasetest.Transcripts(t, filepath.Join("testdata", "traces"), phasetest.Config{
		Plugins: func(*phasetest.Env) []phases.Plugin { return nil },
	}, *update)
}
