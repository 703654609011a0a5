package testhook_test

import (
	"fmt"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/fsm/testhook"
)

// A harness wedges a machine through any scope of it; from then on every
// event fails with fsm.ErrStuck.
func ExampleWedgeMachine() {
	m := fsm.New(nil)
	_ = m.Fire(fsm.EventStart)
	fmt.Println(testhook.WedgeMachine(m.Scope()))
	fmt.Println(m.Fire(fsm.EventNext) != nil)
	m.ForceDone()
	// Output:
	// true
	// true
}
