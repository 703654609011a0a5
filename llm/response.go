package llm

import "iter"

// Response is a model's whole (non-streamed) reply.
type Response struct {
	ID    string `json:",omitzero"`
	Model string `json:",omitzero"`
	// Created is the Unix time the reply was created; 0 if not known.
	Created int64 `json:",omitzero"`
	// Choices holds one reply, or Chat's n of them.
	Choices []Choice `json:",omitzero"`
	// Usage is the tokens used; nil if the provider did not say.
	Usage *Usage `json:",omitzero"`
}

// Choice is one of the replies of a response.
type Choice struct {
	Index int `json:",omitzero"`
	// Parts is the reply: text, refusal and tool call parts.
	Parts []Part `json:",omitzero"`
	// Stop is why generation stopped.
	Stop StopReason `json:",omitzero"`
	// StopSequence is the stop sequence met, when Stop is StopSequence
	// and the provider says which.
	StopSequence string `json:",omitzero"`
}

// Texts visits every text of the reply a response moderation checks:
// text, refusals and tool call arguments.
func (c *Choice) Texts() iter.Seq2[TextSource, string] {
	return func(yield func(TextSource, string) bool) {
		partTexts(c.Parts, SourceAssistant, yield)
	}
}

// StopReason says why a model stopped generating.
type StopReason uint8

// The stop reasons. The zero value means not (yet) known.
const (
	StopUnknown StopReason = iota
	// StopEnd: the model finished (Chat "stop", Anthropic "end_turn").
	StopEnd
	// StopSequence: a stop sequence was produced.
	StopSequence
	// StopMaxTokens: the token limit was reached (Chat "length").
	StopMaxTokens
	// StopToolCalls: the model called tools and waits for their results.
	StopToolCalls
	// StopRefusal: the reply was refused or filtered (Chat
	// "content_filter", Anthropic "refusal").
	StopRefusal
	// StopPause: Anthropic's "pause_turn", a long turn paused.
	StopPause
)

var stopNames = [...]string{"unknown", "end", "stop_sequence", "max_tokens", "tool_calls", "refusal", "pause"}

// String returns the reason's name as it appears in logs and traces.
func (s StopReason) String() string {
	if int(s) < len(stopNames) {
		return stopNames[s]
	}
	return "unknown"
}

// Usage counts the tokens of one exchange, the same way for every
// protocol.
type Usage struct {
	// InputTokens is every input token, cache reads and writes included
	// (Chat's prompt_tokens; Anthropic's input_tokens plus its cache
	// counts).
	InputTokens int64 `json:",omitzero"`
	// OutputTokens is every output token, reasoning included.
	OutputTokens int64 `json:",omitzero"`
	// CacheReadTokens and CacheWriteTokens are the input tokens read from
	// and written to the provider's prompt cache.
	CacheReadTokens  int64 `json:",omitzero"`
	CacheWriteTokens int64 `json:",omitzero"`
	// ReasoningTokens is the output tokens spent on reasoning, when the
	// provider says.
	ReasoningTokens int64 `json:",omitzero"`
}

// TotalTokens is input plus output tokens.
func (u Usage) TotalTokens() int64 { return u.InputTokens + u.OutputTokens }

// MarshalText writes the reason's name, for readable JSON dumps.
func (s StopReason) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
