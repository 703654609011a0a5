// Package testhook holds the fault-injection points that the module's test
// harnesses use to reach states production code cannot reach on its own.
// Package fsm installs the hooks; only test harnesses (package phasetest)
// call them. Production code has no reason to: a wedged machine is a
// framework failure.
package testhook

// WedgeMachine is installed by package fsm. Given a scope (an *fsm.Scope),
// it wedges the machine that owns it the way a cancelled context wedges a
// looplab instance (docs/lifecycle.md): from then on every Fire returns
// fsm.ErrStuck, and only ForceDone can finish the machine. It reports
// whether it wedged anything: a scope whose machine has moved on to another
// request, or a machine already done, is left alone.
var WedgeMachine func(scope any) bool
