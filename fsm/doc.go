// Package fsm is the request lifecycle of phasegate as a finite state
// machine, built on github.com/looplab/fsm.
//
// Every request is one Machine. It starts in StateNew, is moved by the
// framework through
//
//	access → upstream → header_filter → body_filter → log → done
//
// and can take the shortcuts of the transition table (Table): EventExit from a
// request-side state to header_filter, from header_filter to body_filter and
// from body_filter to log; EventAbort from any live state straight to log.
// Nothing else is possible: Fire returns an error for an event the current
// state does not accept.
//
// Resources acquired while a request is live (a gauge increment, a
// concurrency slot, a reservation) are held as Bindings of a Scope. A binding
// is released exactly once: when its scope is closed, or at the latest when the
// machine enters StateDone, which closes the request's root scope. A Binding is
// only obtainable from Scope.Acquire, so a release without an acquisition cannot
// be written, and Release is idempotent, so a double release cannot happen.
// A Ledger set on the machine is told of every acquisition, release and
// scope end, in order; package fsm/fsmtest's Audit is the Ledger tests use to
// check that each binding is released by the time its scope ends.
//
// The package knows nothing of HTTP. It guards against the hazards of the
// underlying library (docs/lifecycle.md): no cancellable context ever reaches
// looplab's Event, no code of ours runs inside looplab (it has no callbacks:
// the Observer and releases run after Event returns), re-entrant Fire calls
// are refused instead of deadlocking, and ForceDone finishes a machine that
// is stuck.
package fsm
