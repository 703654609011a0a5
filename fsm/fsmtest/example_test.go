package fsmtest_test

import (
	"fmt"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/fsm/fsmtest"
)

// An Audit watches one request's machine. Here an attempt's gauge is
// acquired in a child scope that ends with the attempt; the audit checks
// the gauge was released by then, and finds nothing wrong.
func ExampleAudit() {
	m := fsm.New(nil)
	defer m.Release()
	audit := &fsmtest.Audit{}
	m.SetLedger(audit)
	_ = m.Fire(fsm.EventStart)

	attempt := m.Scope().Child("attempt")
	attempt.Acquire(fsm.Resource{Name: "inflight", Labels: []string{"primary"}}, func() {})
	attempt.Close()
	m.ForceDone()

	fmt.Println("problems:", audit.Finish())
	for _, b := range audit.Bindings() {
		fmt.Printf("%s in scope %d: acquired #%d, released #%d in %s\n", b.Resource, b.Scope, b.Acquired, b.Released, b.ReleasedIn)
	}
	for _, s := range audit.Scopes() {
		fmt.Printf("scope %d %q ended #%d in %s\n", s.ID, s.Name, s.Ended, s.EndedIn)
	}
	// Output:
	// problems: []
	// attempt in scope 0: acquired #1, released #5 in access
	// inflight{primary} in scope 1: acquired #2, released #3 in access
	// scope 0 "request" ended #6 in done
	// scope 1 "attempt" ended #4 in access
}
