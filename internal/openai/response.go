package openai

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/phasegate/phasegate/internal/sse"
)

// Usage is the token usage reported by a completion or stream chunk.
type Usage struct {
	PromptTokens     int // usage.prompt_tokens
	CompletionTokens int // usage.completion_tokens
	TotalTokens      int // usage.total_tokens
	CachedTokens     int // usage.prompt_tokens_details.cached_tokens
	ReasoningTokens  int // usage.completion_tokens_details.reasoning_tokens
	// Known reports whether usage was reported at all. The zero Usage is
	// unknown usage.
	Known bool
}

// ParseUsage reads the "usage" object of a chat.completion body or of a
// chat.completion.chunk. It returns false (and the zero Usage) if obj is
// not a valid JSON object or its usage is absent, null or not an object.
// Counts that are absent, null or not integers in the range of int read as
// 0. The returned Usage has Known set exactly when the result is true.
func ParseUsage(obj []byte) (Usage, bool) {
	it, ok := topObject(obj)
	if !ok {
		return Usage{}, false
	}
	var raw []byte
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		if keyIs(k, "usage") {
			raw = v
		}
	}
	if !topEnd(&it) || !isObject(raw) {
		return Usage{}, false
	}
	u := Usage{Known: true}
	it = newObjIter(raw, 0, 0)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch {
		case keyIs(k, "prompt_tokens"):
			u.PromptTokens, _ = decodeInt(v)
		case keyIs(k, "completion_tokens"):
			u.CompletionTokens, _ = decodeInt(v)
		case keyIs(k, "total_tokens"):
			u.TotalTokens, _ = decodeInt(v)
		case keyIs(k, "prompt_tokens_details"):
			u.CachedTokens = 0
			if isObject(v) {
				u.CachedTokens, _ = decodeInt(member(v, "cached_tokens"))
			}
		case keyIs(k, "completion_tokens_details"):
			u.ReasoningTokens = 0
			if isObject(v) {
				u.ReasoningTokens, _ = decodeInt(member(v, "reasoning_tokens"))
			}
		}
	}
	return u, true
}

// ChunkDeltaText returns the concatenated choices[*].delta.content of a
// chat.completion.chunk, in choice order. Choices without string content
// (for example tool-call deltas) contribute nothing; invalid JSON yields "".
func ChunkDeltaText(chunk []byte) string {
	var buf [256]byte
	return string(AppendChunkDeltaText(buf[:0], chunk))
}

// AppendChunkDeltaText appends the text ChunkDeltaText would return to dst
// and returns the extended slice, without allocating when dst has room.
func AppendChunkDeltaText(dst, chunk []byte) []byte {
	return appendChoiceText(dst, chunk, "delta")
}

// CompletionText returns the concatenated choices[*].message.content of a
// non-streamed chat.completion, in choice order. Choices without string
// content contribute nothing; invalid JSON yields "".
func CompletionText(body []byte) string {
	var buf [256]byte
	return string(appendChoiceText(buf[:0], body, "message"))
}

// appendChoiceText appends choices[*].<field>.content of the JSON object b.
func appendChoiceText(dst, b []byte, field string) []byte {
	it, ok := topObject(b)
	if !ok {
		return dst
	}
	var choices []byte
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		if keyIs(k, "choices") {
			choices = v
		}
	}
	if !topEnd(&it) || !isArray(choices) {
		return dst
	}
	ait := newArrIter(choices, 0, 0)
	for {
		choice, ok := ait.next()
		if !ok {
			return dst
		}
		if !isObject(choice) {
			continue
		}
		if m := member(choice, field); isObject(m) {
			if c := member(m, "content"); isString(c) {
				dst, _ = appendUnquote(dst, c)
			}
		}
	}
}

// RefusalFinishReason is the finish_reason of refusals built by this
// package. OpenAI's own "content_filter" means that content was withheld,
// and some clients drop or raise on such a response, whereas a refusal
// carries a message meant to be shown as the assistant's answer; "stop"
// makes every client display it as an ordinary reply.
const RefusalFinishReason = "stop"

// RefusalCompletion returns a complete, non-streamed chat.completion body
// from the assistant whose content is message, for model, with finish
// reason [RefusalFinishReason]. It includes usage only if usage.Known. Its
// id is "chatcmpl-phasegate-" followed by 24 random hex digits (from
// math/rand/v2: unique, not secret) and "created" is the current time.
func RefusalCompletion(model, message string, usage Usage) []byte {
	b := make([]byte, 0, 512+len(model)+len(message))
	b = appendHeader(b, "chat.completion", model)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	b = appendQuoted(b, message)
	b = append(b, `,"refusal":null},"logprobs":null,"finish_reason":"`+RefusalFinishReason+`"}]`...)
	b = appendUsage(b, usage)
	return append(b, '}')
}

// RefusalChunk returns one chat.completion.chunk body whose choice has
// delta.content set to message (with role "assistant") and finish reason
// [RefusalFinishReason], for model, with usage if usage.Known. A refusal
// stream is this chunk followed by "[DONE]"; see [RefusalStream].
func RefusalChunk(model, message string, usage Usage) []byte {
	b := make([]byte, 0, 512+len(model)+len(message))
	b = appendHeader(b, "chat.completion.chunk", model)
	b = append(b, `,"choices":[{"index":0,"delta":{"role":"assistant","content":`...)
	b = appendQuoted(b, message)
	b = append(b, `},"logprobs":null,"finish_reason":"`+RefusalFinishReason+`"}]`...)
	b = appendUsage(b, usage)
	return append(b, '}')
}

// RefusalStream returns the complete text/event-stream body of a streamed
// refusal: the [RefusalChunk] as an SSE event, then "data: [DONE]".
func RefusalStream(model, message string, usage Usage) []byte {
	chunk := RefusalChunk(model, message, usage)
	b := make([]byte, 0, len(chunk)+32)
	b = sse.AppendEvent(b, chunk)
	return sse.AppendEvent(b, []byte("[DONE]"))
}

// appendHeader appends the opening of a response object up to its model.
func appendHeader(b []byte, object, model string) []byte {
	b = append(b, `{"id":"chatcmpl-phasegate-`...)
	b = appendHex(b, rand.Uint64(), 16)
	b = appendHex(b, uint64(rand.Uint32()), 8)
	b = append(b, `","object":"`...)
	b = append(b, object...)
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, time.Now().Unix(), 10)
	b = append(b, `,"model":`...)
	return appendQuoted(b, model)
}

// appendHex appends the n low hex digits of v, zero-padded.
func appendHex(b []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, hexDigits[v>>(4*uint(i))&0xF])
	}
	return b
}

// appendUsage appends a "usage" member if usage is known.
func appendUsage(b []byte, u Usage) []byte {
	if !u.Known {
		return b
	}
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.PromptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CompletionTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.TotalTokens), 10)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CachedTokens), 10)
	b = append(b, `},"completion_tokens_details":{"reasoning_tokens":`...)
	b = strconv.AppendInt(b, int64(u.ReasoningTokens), 10)
	return append(b, `}}`...)
}

// ErrorBody returns an OpenAI-style error body,
// {"error":{"message":…,"type":…,"code":…}}. code may be nil (null), a
// string, an integer, or any other value encoding/json can encode; a value
// it cannot encode becomes null. The result is always valid JSON, whatever
// message and typ contain (invalid UTF-8 is replaced with U+FFFD).
func ErrorBody(message, typ string, code any) []byte {
	b := make([]byte, 0, 64+len(message)+len(typ))
	b = append(b, `{"error":{"message":`...)
	b = appendQuoted(b, message)
	b = append(b, `,"type":`...)
	b = appendQuoted(b, typ)
	b = append(b, `,"code":`...)
	b = appendCode(b, code)
	return append(b, `}}`...)
}

func appendCode(b []byte, code any) []byte {
	switch c := code.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendQuoted(b, c)
	case int:
		return strconv.AppendInt(b, int64(c), 10)
	case int64:
		return strconv.AppendInt(b, c, 10)
	case int32:
		return strconv.AppendInt(b, int64(c), 10)
	case uint:
		return strconv.AppendUint(b, uint64(c), 10)
	case uint64:
		return strconv.AppendUint(b, c, 10)
	}
	v, err := json.Marshal(code)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, v...)
}
