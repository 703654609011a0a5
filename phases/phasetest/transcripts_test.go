package phasetest_test

import (
	"path/filepath"
	"testing"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

// The runner's transcripts (phases/testdata/traces) are also the exact
// journals of the harness's scripted plugins, upstream and client: a change
// in how the harness scripts or journals a path shows here.
func TestRunnerTranscripts(t *testing.T) {
	phasetest.Transcripts(t, filepath.Join("..", "testdata", "traces"), phasetest.Config{
		Plugins: func(*phasetest.Env) []phases.Plugin { return nil },
	}, false)
}
