// Package provider is the machinery shared by phasegate's AI upstream
// plugins, ai-proxy and ai-proxy-multi: validating a chat-completions
// request in the access phase, performing upstream attempts against
// OpenAI-compatible instances, falling back from one instance to another,
// handing responses to the lifecycle runner, and recording the LLM metrics
// of docs/metrics.md from the request's final state.
//
// # Pieces
//
// An [Instance] is one configured upstream endpoint (provider, endpoint,
// auth, options, timeout and caps). It is immutable and shared by the
// requests of a route. A [Proxy] is a route's front: its Access validates
// the client's request and records the request's *llm.Info under
// llm.InfoKey; its Serve runs the upstream phase, one attempt per instance
// its caller picks; its Log records the metrics. Per-request state lives
// in the request's values, never in a Proxy or an Instance.
//
// # One attempt
//
// An attempt sends the client's request to the instance: the client's
// headers, except hop-by-hop ones, Accept-Encoding (responses must come
// back uncompressed so that body filters can read them), Content-Length
// (recomputed) and Host; with auth configured, the client's Authorization
// and every header and query parameter the auth sets are replaced by the
// configured ones. The body is openai.Rewrite of the body the access phase
// left, with the instance's options and include_usage forced for streams,
// done afresh for every attempt so that one instance's options never reach
// another. On the way back, hop-by-hop headers and Set-Cookie are dropped:
// the provider's cookies are the gateway's, not the client's. A response no
// client may get (see package forward's Watch.Check, and a body longer than
// its Content-Length, caught once the body is read whole) fails the
// attempt with a *proxy.BadResponseError, a network failure for fallback
// purposes. The timeout bounds the wait for the response header and then
// every wait for body bytes, as in package proxy.
//
// A response with a status below 400 and Content-Type text/event-stream is
// streamed: its body yields one chunk per server-sent event as soon as the
// event is complete (events split across reads are reassembled), with the
// event's exact wire bytes, while the request's LLMInfo follows the stream
// (time to first token at the first event carrying content, usage from the
// usage chunk). max_stream_duration (from the response header) and
// max_response_bytes end a started stream cleanly with a
// *phases.ExitError, which the runner turns into a final data event and
// "data: [DONE]". Any other response, including every error status, is read
// whole (bounded by max_response_bytes, beyond which the answer is a 502
// before anything is sent) and delivered as one chunk together with the end
// of the body, so that body filters such as content moderation see it
// whole before anything is sent.
//
// # The in-flight gauge
//
// phasegate_llm_active_connections is kept by bindings, one per attempt:
// the attempt opens a child of the request's scope, acquires the gauge on
// it with the labels (route, instance, model sent, request type) just
// before sending, and closes the child scope when the attempt fails (so a
// failed instance's series falls at once, with exactly its labels) or when
// the response body is closed, which the runner does exactly once on every
// path. The request's root scope closing at done is the backstop. There is
// no code path on which a decrement can be skipped: an early exit in any
// phase closes the body, and reaching done closes every scope.
//
// # Metrics
//
// The counters and histograms are recorded by the log hook, once, from the
// final attempt: token counters when usage is known (also the partial usage
// of a stream cut short), the request duration (from sending to the end of
// the body) only when that attempt's status is below 400, and the time to
// first token only for streams that produced one.
package provider
