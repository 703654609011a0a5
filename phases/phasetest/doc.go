// Package phasetest is a property-test harness for phasegate plugins, on
// pgregory.net/rapid.
//
// Given the plugins under test, Check runs them through the real lifecycle
// runner on random paths. Scripted plugins placed before, between and after
// them exit, panic, make the client leave, mutate the request or wedge the
// machine in any phase, panic in their log hooks, and hold bindings (one
// acquired with a label slice they overwrite afterwards, one whose release
// panics). The upstream (unless a plugin under test provides it) fails over
// several attempts by network error or error status, each holding a gauge
// in its own child scope, then succeeds with any status and a stream of N
// chunks, fails, times out, hangs, breaks or panics mid-body. The client
// vanishes when headers or any chunk are written, and its sink may panic
// there instead.
//
// After every path the harness checks the lifecycle's rules
// (docs/lifecycle.md): start and done once each, log hooks exactly once and
// in log, hooks only in their own phase (so none after an exit in it, and
// none after the client left before the response started, whose next step
// must be an abort), response-side hooks only while the response is unsent
// after an exit, panics recovered, an escaped panic answered with a whole
// 500, a wedged machine finished like a panic, an SSE stream ended by an
// exit terminated by "data: [DONE]". Through the request's ledger (an
// fsm/fsmtest Audit) it checks that every binding is released exactly once,
// with its acquisition labels, by the time its scope ends: an attempt's
// scope before the next attempt starts, the upstream body when its stream
// ends or an exit or abort replaces it, everything by done; and that gauges
// named after bindings fall as their bindings are released, every gauge in
// the plugins' registry back to 0 at the end. docs/testing.md lists the
// rules and how to run the harness on a plugin.
//
// A failure is shrunk by rapid to a minimal path and printed as a readable
// trace; Parse reads the scenario back, and RunScenario replays it.
package phasetest
