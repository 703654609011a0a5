package phasetest_test

import (
	"fmt"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

// A scenario is the harness's description of one path; Parse reads the
// syntax the harness prints in its failure reports, so a failure that
// Check reports can be replayed as a plain test.
func ExampleParse() {
	s, err := phasetest.Parse(`
plugin guard priority=10 acquire access=exit:403
upstream ok status=200 chunks=2 sse
client fail-write=1
`)
	if err != nil {
		panic(err)
	}
	fmt.Print(s)
	// Output:
	// plugin guard priority=10 acquire access=exit:403
	// upstream ok status=200 chunks=2 sse
	// client fail-write=1
}

// printTB makes RunScenario usable outside a test, for this example.
type printTB struct{}

func (printTB) Helper()                   {}
func (printTB) Logf(f string, a ...any)   { fmt.Printf(f+"\n", a...) }
func (printTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

func ExampleRunScenario() {
	s, _ := phasetest.Parse("plugin guard access=exit:403\nupstream ok status=200 chunks=1")
	res := phasetest.RunScenario(printTB{}, phasetest.Config{
		Plugins: func(*phasetest.Env) []phases.Plugin { return nil },
	}, s)
	fmt.Println(res.Status, res.Summary.Cause, res.Summary.ExitPhase, res.Summary.ExitPlugin)
	// Output: 403 exit access guard
}
