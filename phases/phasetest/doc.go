// Package phasetest is a property-test harness for phasegate plugins, on
// pgregory.net/rapid.
//
// Given the plugins under test, Check runs them through the real lifecycle
// runner on random paths: scripted plugins placed before, between and after
// them exit, panic, make the client leave or mutate the request in any
// phase; the upstream (unless a plugin under test provides it) succeeds with
// any status and a stream of N chunks, fails, times out, hangs, breaks or
// panics mid-body; the client vanishes when headers or any chunk are
// written. After every path the harness checks the rules of the lifecycle
// (CONTRACT §1): start and done once each, log hooks exactly once, hooks
// only in their own phase (so none after an exit in it), response-side hooks
// only while the response is unsent after an exit, panics recovered, an SSE
// stream ended by an exit terminated by "data: [DONE]", every binding
// released exactly once with the labels it was acquired with, and every
// gauge in the plugins' registry back to 0.
//
// A failure is shrunk by rapid to a minimal path and printed as a readable
// trace; Parse reads the scenario back, and RunScenario replays it.
package phasetest
