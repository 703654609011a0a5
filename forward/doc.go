// Package forward is phasegate's plain upstream proxy: the upstream phase of a
// route that has an `upstream:` block instead of an AI provider plugin.
//
// An [Upstream] picks one of the route's nodes by smooth weighted round
// robin (nginx's algorithm), sends the client's request there over the
// gateway's shared keep-alive transport ([NewTransport]) and hands the
// response back to the lifecycle runner as a [phases.Response] whose body
// yields each read as it arrives, so chunked and server-sent-event responses
// reach the client as the upstream produces them.
//
// On the way out, hop-by-hop headers (Connection and every header it names,
// Proxy-Connection, Keep-Alive, Proxy-Authenticate, Proxy-Authorization, Te,
// Trailer, Transfer-Encoding, Upgrade) are removed in both directions, the
// client's address is appended to X-Forwarded-For, X-Forwarded-Proto and
// X-Forwarded-Host are set, and Host is the client's or the node's
// ([Config.PassHost]).
//
// Failures are returned to the runner, which answers them: an unreachable
// node (refused, reset, unknown host) becomes 502, a timeout
// ([Config.Timeout]) 504 before the response has started and an aborted
// response after. When the client goes away the upstream request is
// cancelled at once, since its context derives from the client's.
//
// A response no client may get (a status outside 200–999, a status line
// that is not HTTP/1.x, a header name that is not a token, both
// Content-Length and Transfer-Encoding, surplus bytes seen with the head) is
// a [*BadResponseError], which the runner answers with 502. [NewTransport]'s
// connections follow the framing of each response a [WatchResponse]
// announces, so that surplus bytes never reach Go's reader and the
// connection carrying them is never reused (docs/configuration.md,
// "Upstream responses phasegate refuses").
package forward
