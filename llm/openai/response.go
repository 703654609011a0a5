package openai

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/phasegate/phasegate/llm/internal/wire"
	"github.com/phasegate/phasegate/sse"
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
	it, ok := wire.ParseObject(obj)
	if !ok {
		return Usage{}, false
	}
	var raw []byte
	for {
		k, v, ok := it.Next()
		if !ok {
			break
		}
		if wire.KeyIs(k, "usage") {
			raw = v
		}
	}
	if it.Err() != nil || !isObject(raw) {
		return Usage{}, false
	}
	u := Usage{Known: true}
	it, _ = wire.ObjectOf(raw)
	for {
		k, v, ok := it.Next()
		if !ok {
			break
		}
		switch {
		case wire.KeyIs(k, "prompt_tokens"):
			u.PromptTokens, _ = decodeInt(v)
		case wire.KeyIs(k, "completion_tokens"):
			u.CompletionTokens, _ = decodeInt(v)
		case wire.KeyIs(k, "total_tokens"):
			u.TotalTokens, _ = decodeInt(v)
		case wire.KeyIs(k, "prompt_tokens_details"):
			u.CachedTokens = 0
			if isObject(v) {
				u.CachedTokens, _ = decodeInt(member(v, "cached_tokens"))
			}
		case wire.KeyIs(k, "completion_tokens_details"):
			u.ReasoningTokens = 0
			if isObject(v) {
				u.ReasoningTokens, _ = decodeInt(member(v, "reasoning_tokens"))
			}
		}
	}
	return u, true
}

// AppendChunkDeltaText appends the choices[*].delta.content of a
// chat.completion.chunk to dst, in choice order, and returns the extended
// slice, without allocating when dst has room. Choices without string
// content (for example tool-call deltas) add nothing; invalid JSON adds
// nothing. Keys match exactly (it follows a stream for metrics; moderation
// reads responses with [EachText]).
func AppendChunkDeltaText(dst, chunk []byte) []byte {
	it, ok := wire.ParseObject(chunk)
	if !ok {
		return dst
	}
	var choices []byte
	for {
		k, v, ok := it.Next()
		if !ok {
			break
		}
		if wire.KeyIs(k, "choices") {
			choices = v
		}
	}
	if it.Err() != nil || !isArray(choices) {
		return dst
	}
	ait, _ := wire.ArrayOf(choices)
	for {
		choice, ok := ait.Next()
		if !ok {
			return dst
		}
		if !isObject(choice) {
			continue
		}
		if m := member(choice, "delta"); isObject(m) {
			if c := member(m, "content"); isString(c) {
				dst, _ = wire.AppendUnquote(dst, c)
			}
		}
	}
}

// TextKind is the field of a choice that a response text comes from.
type TextKind uint8

// The fields of a choice's message or delta read by [EachText].
const (
	TextContent           TextKind = iota // "content"
	TextRefusal                           // "refusal"
	TextReasoning                         // "reasoning_content" or "reasoning"
	TextToolArguments                     // "tool_calls"[].function.arguments
	TextFunctionArguments                 // the legacy "function_call".arguments
)

var textKinds = [...]string{"content", "refusal", "reasoning", "tool_arguments", "function_arguments"}

// String returns the kind's name, such as "content" or "tool_arguments".
func (k TextKind) String() string {
	if int(k) < len(textKinds) {
		return textKinds[k]
	}
	return "TextKind(" + string(appendInt(nil, int(k))) + ")"
}

// ResponseText is one text of a response that reaches the client.
type ResponseText struct {
	// Choice is the choice's "index", or its position in "choices" when it
	// has no integer index.
	Choice int
	// Kind is the field the text comes from.
	Kind TextKind
	// Tool is, for TextToolArguments, the tool call's "index" (as streamed
	// deltas number them), or its position in "tool_calls"; else 0.
	Tool int
	// Text is the decoded text. It is only valid during the call.
	Text []byte
}

// The response fields EachText reads, by kind of object.
var (
	responseFields   = newFieldSet("choices")
	choiceFieldSet   = newFieldSet("index", "delta", "message")
	messageTexts     = newFieldSet("content", "refusal", "reasoning_content", "reasoning", "tool_calls", "function_call")
	toolCallFieldSet = newFieldSet("index", "function")
	argumentFields   = newFieldSet("arguments")
	partTextFields   = newFieldSet("text")
)

// EachText calls fn, in order, for each non-empty text of the choices of a
// chat.completion ("message") or a chat.completion.chunk ("delta"): the
// content (a string, or the "text" of each part of an array), the refusal,
// the reasoning, and the arguments of each tool call and of a function
// call. A body that is not a JSON object yields nothing; one with a syntax
// error yields the texts of the members before it, which a lenient client
// might show. scratch is working space, returned for reuse; EachText itself
// does not allocate when it has room.
//
// An upstream is not trusted to send one reading either: a key is read when
// it names a field loosely (in case, dashes or underscores, as some client
// decoders match; see [ParseChatRequest]), and ambiguous reports an object
// that names one of the fields read (or "index") twice, exactly or loosely:
// clients may read either value. Every such member is read all the same.
func EachText(body, scratch []byte, fn func(ResponseText)) (newScratch []byte, ambiguous bool) {
	return eachText(body, scratch, fn, true)
}

// eachText is EachText; fast enables the one-pass read of the common
// chunk shape (see chunkChoices), which tests compare with the strict walk.
func eachText(body, scratch []byte, fn func(ResponseText), fast bool) ([]byte, bool) {
	w := textWalk{scratch: scratch}
	it, ok := wire.ParseObject(body)
	if !ok {
		return scratch, false
	}
	var seen uint64
	for {
		k, v, ok := it.Next()
		if !ok {
			return w.scratch, w.ambiguous
		}
		if w.lookup(&responseFields, k, &seen) == 0 && isArray(v) && !(fast && w.chunkChoices(v, fn)) {
			w.choices(v, fn)
		}
	}
}

// textWalk is the state of an EachText walk. The callback is passed along
// rather than kept in it, so that it does not escape.
type textWalk struct {
	scratch   []byte
	ambiguous bool
}

// lookup returns the index in fs of the field k names, exactly or loosely,
// or -1, noting a field named again (seen holds those of the object so
// far).
func (w *textWalk) lookup(fs *fieldSet, k []byte, seen *uint64) int {
	i, _ := fs.lookup(k)
	if i < 0 {
		return i
	}
	if *seen&(1<<i) != 0 {
		w.ambiguous = true
	}
	*seen |= 1 << i
	return i
}

// chunkChoices reads choices, a valid JSON array, when it has the shape of
// nearly every streamed chunk: at most one choice, an object whose members
// are "index", "delta" (an object of "role" and "content"), "logprobs" and
// "finish_reason", each at most once, every value but delta's a scalar. It
// then emits what the strict walk (choices) would, in one pass over the
// bytes and without folding keys; for anything else it emits nothing and
// returns false, for the strict walk.
func (w *textWalk) chunkChoices(choices []byte, fn func(ResponseText)) bool {
	b := choices
	i := skipSpace(b, 1)
	if b[i] == ']' {
		return true
	}
	if b[i] != '{' {
		return false
	}
	t := ResponseText{}
	var delta, content []byte
	var seen uint8
	i, ok := eachMember(b, i, func(key, v []byte) bool {
		var bit uint8
		switch string(key) {
		case `"index"`:
			bit = 1
			if n, ok := decodeInt(v); ok {
				t.Choice = n
			}
		case `"delta"`:
			bit, delta = 2, v
		case `"logprobs"`:
			bit = 4
		case `"finish_reason"`:
			bit = 8
		default:
			return false
		}
		if seen&bit != 0 || (bit != 2 && (v[0] == '{' || v[0] == '[')) {
			return false
		}
		seen |= bit
		return true
	})
	if !ok || b[skipSpace(b, i)] != ']' {
		return false
	}
	if len(delta) > 0 {
		if delta[0] != '{' {
			return false
		}
		seen = 0
		if _, ok := eachMember(delta, 0, func(key, v []byte) bool {
			var bit uint8
			switch string(key) {
			case `"role"`:
				bit = 1
			case `"content"`:
				bit, content = 2, v
			default:
				return false
			}
			if seen&bit != 0 || v[0] == '{' || v[0] == '[' {
				return false
			}
			seen |= bit
			return true
		}); !ok {
			return false
		}
	}
	t.Kind = TextContent
	w.emit(content, t, fn)
	return true
}

// eachMember calls f with the raw key and value of each member of the
// object at b[i] (valid JSON), and returns the offset after the object. A
// key with an escape (compared as written, it might name a field), an
// array, or f returning false stop it with ok false.
func eachMember(b []byte, i int, f func(key, v []byte) bool) (end int, ok bool) {
	i = skipSpace(b, i+1)
	if b[i] == '}' {
		return i + 1, true
	}
	for {
		kend, escaped := stringEnd(b, i)
		if kend < 0 || escaped {
			return 0, false
		}
		key := b[i:kend]
		i = skipSpace(b, skipSpace(b, kend)+1) // past the colon
		vend := -1
		switch b[i] {
		case '"':
			vend, _ = stringEnd(b, i)
		case '{':
			vend, ok = eachMember(b, i, func(_, _ []byte) bool { return true })
			if !ok {
				return 0, false
			}
		case '[':
			return 0, false
		default:
			vend = i
			for vend < len(b) && !isDelim(b[vend]) {
				vend++
			}
		}
		if vend < 0 || !f(key, b[i:vend]) {
			return 0, false
		}
		i = skipSpace(b, vend)
		if b[i] == '}' {
			return i + 1, true
		}
		i = skipSpace(b, i+1) // past the comma
	}
}

// stringEnd returns the end of the JSON string at b[i] (valid JSON) and
// whether it holds an escape.
func stringEnd(b []byte, i int) (end int, escaped bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1, escaped
		case '\\':
			escaped = true
			j++
		}
	}
	return -1, escaped
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func isDelim(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func (w *textWalk) choices(choices []byte, fn func(ResponseText)) {
	ait, _ := wire.ArrayOf(choices)
	for pos := 0; ; pos++ {
		choice, ok := ait.Next()
		if !ok {
			return
		}
		if !isObject(choice) {
			continue
		}
		// The index may follow the message: hold the messages (a field
		// named twice makes the response ambiguous; any messages beyond
		// those held are walked again once the index is known).
		t := ResponseText{Choice: pos}
		var held [2][]byte
		nHeld, more := 0, false
		var seen uint64
		it, _ := wire.ObjectOf(choice)
		for {
			k, v, ok := it.Next()
			if !ok {
				break
			}
			switch i := w.lookup(&choiceFieldSet, k, &seen); {
			case i == 0:
				if n, ok := decodeInt(v); ok {
					t.Choice = n
				}
			case i > 0 && isObject(v):
				if nHeld < len(held) {
					held[nHeld] = v
					nHeld++
				} else {
					more = true
				}
			}
		}
		for _, v := range held[:nHeld] {
			w.message(v, t, fn)
		}
		if !more {
			continue
		}
		it, _ = wire.ObjectOf(choice)
		for n := 0; ; {
			k, v, ok := it.Next()
			if !ok {
				break
			}
			if i, _ := choiceFieldSet.lookup(k); i > 0 && isObject(v) {
				if n++; n > len(held) {
					w.message(v, t, fn)
				}
			}
		}
	}
}

func (w *textWalk) message(msg []byte, t ResponseText, fn func(ResponseText)) {
	var seen uint64
	it, _ := wire.ObjectOf(msg)
	for {
		k, v, ok := it.Next()
		if !ok {
			return
		}
		switch w.lookup(&messageTexts, k, &seen) {
		case 0:
			t.Kind = TextContent
			if !isArray(v) {
				w.emit(v, t, fn)
				continue
			}
			pit, _ := wire.ArrayOf(v)
			for {
				part, ok := pit.Next()
				if !ok {
					break
				}
				if isObject(part) {
					w.fields(part, &partTextFields, t, fn)
				}
			}
		case 1:
			t.Kind = TextRefusal
			w.emit(v, t, fn)
		case 2, 3:
			t.Kind = TextReasoning
			w.emit(v, t, fn)
		case 4:
			if !isArray(v) {
				continue
			}
			cit, _ := wire.ArrayOf(v)
			for pos := 0; ; pos++ {
				call, ok := cit.Next()
				if !ok {
					break
				}
				if isObject(call) {
					w.toolCall(call, ResponseText{Choice: t.Choice, Kind: TextToolArguments, Tool: pos}, fn)
				}
			}
		case 5:
			if isObject(v) {
				w.fields(v, &argumentFields, ResponseText{Choice: t.Choice, Kind: TextFunctionArguments}, fn)
			}
		}
	}
}

// toolCall reads the arguments of one tool call.
func (w *textWalk) toolCall(call []byte, t ResponseText, fn func(ResponseText)) {
	var seen uint64
	it, _ := wire.ObjectOf(call)
	for {
		k, v, ok := it.Next()
		if !ok {
			break
		}
		if w.lookup(&toolCallFieldSet, k, &seen) == 0 {
			if n, ok := decodeInt(v); ok {
				t.Tool = n
			}
		}
	}
	it, _ = wire.ObjectOf(call)
	for {
		k, v, ok := it.Next()
		if !ok {
			return
		}
		if i, _ := toolCallFieldSet.lookup(k); i == 1 && isObject(v) {
			w.fields(v, &argumentFields, t, fn)
		}
	}
}

// fields emits each string member of obj that the one-field set fs names.
func (w *textWalk) fields(obj []byte, fs *fieldSet, t ResponseText, fn func(ResponseText)) {
	var seen uint64
	it, _ := wire.ObjectOf(obj)
	for {
		k, v, ok := it.Next()
		if !ok {
			return
		}
		if w.lookup(fs, k, &seen) == 0 {
			w.emit(v, t, fn)
		}
	}
}

// emit calls fn with the decoded raw string v, if it is a non-empty
// string.
func (w *textWalk) emit(v []byte, t ResponseText, fn func(ResponseText)) {
	if !isString(v) || len(v) == 2 {
		return
	}
	w.scratch, _ = wire.AppendUnquote(w.scratch[:0], v)
	t.Text = w.scratch
	fn(t)
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
	b = wire.AppendString(b, message)
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
	b = wire.AppendString(b, message)
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
	return wire.AppendString(b, model)
}

// appendHex appends the n low hex digits of v, zero-padded.
func appendHex(b []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, "0123456789abcdef"[v>>(4*uint(i))&0xF])
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
	b = wire.AppendString(b, message)
	b = append(b, `,"type":`...)
	b = wire.AppendString(b, typ)
	b = append(b, `,"code":`...)
	b = appendCode(b, code)
	return append(b, `}}`...)
}

func appendCode(b []byte, code any) []byte {
	switch c := code.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return wire.AppendString(b, c)
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
