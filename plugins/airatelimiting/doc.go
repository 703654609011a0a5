// Package airatelimiting is phasegate's ai-rate-limiting plugin: token,
// request, cost and concurrency limits on LLM requests, kept as
// reservations that are bindings of the request's lifecycle.
//
//	plugins:
//	  ai-rate-limiting:
//	    policy: local                 # local | redis
//	    redis: { address: "127.0.0.1:6379", timeout: 100ms, key_prefix: phasegate }
//	    on_store_error: fail_closed   # fail_closed (503) | fail_open
//	    lease: 2m
//	    rejected_code: 429
//	    show_limit_quota_header: true
//	    estimate: { prompt: approx, completion_tokens: 256, enforce_max_tokens: false }
//	    limits:
//	      - { name: tenant-tpm, key: consumer, tokens: 100000, window: 1m, strategy: total_tokens }
//	      - { name: tenant-rpm, key: consumer, requests: 60, window: 1m }
//	      - { name: tenant-concurrency, key: consumer, concurrent: 4 }
//	      - { name: monthly-budget, key: "header:X-Team", cost: 50.0, window: 720h }
//	    prices: { "*": { prompt: 1.0, completion: 4.0 } }
//	    instances:                      # per attempt on an upstream instance
//	      primary: { tokens: 200000, window: 1m }
//
// In the access phase (priority 1080: after key-auth and ai-proxy, before
// the prompt guard and moderation) the plugin estimates the request's
// cost (the prompt, plus max_tokens or estimate.completion_tokens for the
// completion) and reserves it on every limit at once through package
// ratelimit: all admit it, or none takes anything and the request is
// answered 429 (rate_limit_exceeded with Retry-After, or
// insufficient_quota for a cost budget). The reservation is a binding on
// the request's scope: when the request is done, however it ended, it is
// committed once to the actual cost — the upstream's usage; with none,
// nothing when no upstream was called, no tokens when the upstream
// answered an error status, else the prompt estimate plus the completion
// text delivered so far (at most what was reserved). A concurrency slot is
// held from access to done. The log hook settles the actual cost first,
// so that the access log shows it: the plugin adds the fields ratelimit
// (the limit that rejected the request, or ""), reserved and committed (by
// limit name) through LogFields.
//
// The stores live in the gateway's pluginsdk.Shared: one local store, and
// one Redis client per connection config, each with a keeper per lease
// that renews the reservations of requests in flight. A reload builds the
// new plugins before it closes the old ones, so the counters and
// connections of a store that the new config still uses carry over; the
// reload that retires the last route on a store closes its keeper, then
// its client.
//
// An instances entry limits the attempts on one upstream instance of the
// route (ai-proxy-multi's by name, or "ai-proxy"): the plugin is the
// request's provider.AttemptGate, each attempt reserves on its own scope,
// an instance over its limit is skipped like a failed one, and the
// attempt's reservation is committed when the attempt ends.
//
// The body filter reads the usage and text from the response itself, and
// drops the usage chunk of a stream whose client did not ask for it (the
// AI upstream asks for it; the plugin rewrites a request that turned it
// off). docs/configuration.md documents every field and the APISIX fields
// they map to; docs/metrics.md the metrics.
package airatelimiting
