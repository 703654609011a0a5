// Package gateway is the embeddable phasegate gateway: configuration,
// routing, plain and AI upstreams, the admin listener, metrics and the
// access log, all on the request lifecycle of package phases.
//
// A Gateway is an http.Handler. Build one from a Config (LoadConfig reads
// the YAML of docs/configuration.md, reporting every problem as FILE:LINE:COL:
// path.to.field: what is wrong) and Options (a prometheus.Registerer, a
// zerolog logger, a plugin Registry so that programs add their own plugins by
// name). Reload swaps in a new config atomically: requests in flight finish
// on the config they started with, and an invalid config changes nothing.
// Start and Shutdown run the data-plane and admin listeners for the
// standalone binary (which starts the mock LLM of a mock_llm block itself).
//
// Every request, including a 404, runs through a chain of plugins on the
// lifecycle machine, so the active-requests gauge (a binding acquired on
// entering access), the counters recorded in log and the access log line
// account for every request exactly once.
package gateway
