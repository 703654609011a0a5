package llm

import (
	"time"

	"github.com/phasegate/phasegate/phases"
)

// Info is what an AI upstream plugin records about a request, for the
// plugins after it (content moderation reads the model and usage), for its
// metrics and for the access log. The AI upstream stores it under InfoKey
// in the request's values during access and fills it in as the response
// arrives.
type Info struct {
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
	// ClientProtocol is the protocol the client speaks (its door);
	// ProviderProtocol the one the serving instance speaks, once an
	// attempt began ("" before).
	ClientProtocol   Protocol
	ProviderProtocol Protocol
}

// InfoKey is the key of a request's *Info.
var InfoKey = phases.NewKey[*Info]("llm")
