package fsm_test

import (
	"fmt"

	"github.com/phasegate/phasegate/fsm"
)

// A request that runs to completion: the framework fires every event; the
// machine refuses anything the table does not allow.
func ExampleMachine() {
	m := fsm.New(nil)
	defer m.Release()
	for _, ev := range []fsm.Event{fsm.EventStart, fsm.EventNext, fsm.EventNext, fsm.EventNext, fsm.EventNext, fsm.EventFinish} {
		if err := m.Fire(ev); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println(m.Path())
	fmt.Println(m.Fire(fsm.EventNext))
	// Output:
	// access>upstream>header_filter>body_filter>log>done
	// fsm: event "next" is not allowed in state "done"
}

func ExampleScope_Child() {
	m := fsm.New(nil)
	defer m.Release()
	_ = m.Fire(fsm.EventStart)

	inflight := 0
	acquire := func(s *fsm.Scope, instance string) {
		inflight++
		s.Acquire(fsm.Resource{Name: "llm_active", Labels: []string{instance}}, func() { inflight-- })
	}

	acquire(m.Scope(), "request") // held until done
	attempt := m.Scope().Child("attempt")
	acquire(attempt, "primary")
	fmt.Println("during the attempt:", inflight)
	attempt.Close() // the primary instance failed: its gauge falls now
	fmt.Println("after the attempt:", inflight)

	m.ForceDone() // the framework's way to done releases the rest
	fmt.Println("done:", inflight)
	// Output:
	// during the attempt: 2
	// after the attempt: 1
	// done: 0
}
