package phases

import "time"

// LLMInfo is what an AI upstream plugin records about a request, for the
// plugins after it (content moderation reads the model and usage), for its
// metrics and for the access log. The AI upstream stores it under LLM in the
// request's Values during access and fills it in as the response arrives.
type LLMInfo struct {
	// Model is the model sent upstream (after any override).
	Model string
	// Instance is the upstream instance that served the request
	// ("ai-proxy" for ai-proxy, the instance name for ai-proxy-multi).
	Instance string
	// Stream reports whether the client asked for a stream.
	Stream bool
	// Usage, when UsageKnown, is the token usage the upstream reported (or,
	// for a stream cut short, the usage seen so far).
	UsageKnown       bool
	PromptTokens     int
	CompletionTokens int
	CachedTokens     int
	ReasoningTokens  int
	// TTFT is the time from sending the request to the first content event
	// of a stream.
	TTFT time.Duration
	// Attempts counts upstream attempts (more than one after fallbacks).
	Attempts int
	// Moderation is content moderation's verdict, for the access log:
	// "refused" when it refused the request or response, "flagged" or
	// "passed" after a final_packet check of a stream it could not stop,
	// "error" when the moderation endpoint failed; "" when it had nothing
	// to report.
	Moderation string
}

// LLM is the key of a request's *LLMInfo.
var LLM = NewKey[*LLMInfo]("llm")
