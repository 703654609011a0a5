// Package phases is phasegate's plugin API: one small interface per phase of
// the request lifecycle, the Exit value that is a plugin's only means of
// control, and the Chain that runs a route's plugins on the lifecycle machine
// of package fsm.
//
// A plugin implements Plugin (a name) and any of AccessHook, Upstream,
// HeaderFilter, BodyFilter and LogHook; the chain finds them by type
// assertion. Within a phase, hooks run by descending Priority (plugins
// without a Priority method have priority 0); ties run in ascending name
// order, so the order never depends on how the plugins were listed.
//
// A hook never writes the response. Request-side hooks (access, upstream) see
// a *Request; response-side hooks see a *ResponseHead or a *BodyChunk whose
// headers may still be unsent; log hooks see the final *Summary and return
// nothing. A hook that wants to end the request returns an Exit (built by
// Reply, Error or JSON); a body filter returns a BodyResult that either
// transforms the chunk (Replace) or ends the response (End), so the two
// cannot be confused.
//
// The rules every request obeys, whatever its hooks do, are those of
// docs/lifecycle.md: start and done exactly once, log hooks
// exactly once, no request-side hook after an exit, response-side hooks only
// while the response is unsent, panics recovered into exits, and every
// resource acquired on the request's Scope released exactly once. Package
// phasetest checks them for any plugin over random paths.
package phases
