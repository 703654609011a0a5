package mockllm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Request headers that select mock behaviour. Values are validated; an
// invalid value makes the mock answer 400 with an error whose "param" is the
// header name (on the Messages paths, an Anthropic error whose message names
// it). Unless stated otherwise a header applies to every endpoint but
// GET /healthz; those that shape a reply apply to chat completions and
// messages alike.
const (
	// HeaderStatus makes the mock reply with this HTTP status, which must be
	// in the range 400-599, and an OpenAI-style error body instead of a
	// normal response. Example: "X-Mock-Status: 429".
	HeaderStatus = "X-Mock-Status"

	// HeaderErrorBody replaces the error body sent because of [HeaderStatus]
	// verbatim. It is served as application/json when it is valid JSON and
	// as text/plain otherwise. Without HeaderStatus it is ignored.
	HeaderErrorBody = "X-Mock-Error-Body"

	// HeaderContent sets the completion text, overriding
	// [Options.DefaultContent]; an empty value selects an empty completion.
	// For a streamed reply this is the text split into content chunks. With
	// a tool call (see [HeaderToolArguments]) the text comes before the call
	// when the header is present and not empty; otherwise the call has no
	// text. Chat completions and messages.
	HeaderContent = "X-Mock-Content"

	// HeaderChunks sets the number of content chunks of a streamed reply, an
	// integer >= 1 (default [DefaultStreamChunks]). A tool call's arguments
	// stream in as many chunks of their own. Chat completions and messages.
	HeaderChunks = "X-Mock-Chunks"

	// HeaderChunkDelay is a Go duration ("50ms") slept before each content
	// chunk of a streamed reply (text or tool call arguments). Chat
	// completions and messages.
	HeaderChunkDelay = "X-Mock-Chunk-Delay"

	// HeaderHeaderDelay is a Go duration ("2s") slept before the response
	// headers are written: a slow first byte. It delays error replies
	// selected by [HeaderStatus] too.
	HeaderHeaderDelay = "X-Mock-Header-Delay"

	// HeaderSplit, when true, writes each server-sent event in two writes,
	// split in the middle of its JSON, with a flush and a pause of about
	// 5ms in between, to exercise the reassembly of events by clients and
	// proxies. Chat completions and messages.
	HeaderSplit = "X-Mock-Split"

	// HeaderResetAfter aborts the connection abruptly. For a streamed reply
	// the abort follows the opening events (the role chunk; message_start,
	// ping and the first content_block_start) and K content chunks (text
	// and tool call arguments alike), K being the header's value (an
	// integer >= 0, clamped to the number of chunks), so that the finish
	// chunk and [DONE], or message_delta and message_stop, are never sent.
	// Events that carry no content and come between content chunks
	// (content_block_stop, content_block_start of the next block) are sent
	// before the next content chunk. For a non-streamed
	// reply the status line and headers (200) are sent and the connection is
	// aborted before the body, whatever K is. Such requests are counted in
	// [Stats].Aborted.
	HeaderResetAfter = "X-Mock-Reset-After"

	// HeaderHang, when true, makes the handler block until the client goes
	// away (or the [Server] is closed): after the headers of a streamed
	// reply, before the headers of a non-streamed one.
	HeaderHang = "X-Mock-Hang"

	// HeaderPromptTokens overrides the input token count, an integer >= 0:
	// usage.prompt_tokens of chat completions, the input tokens of
	// messages (cache counts included, see [HeaderUsageDetails]) and the
	// input_tokens of count_tokens.
	HeaderPromptTokens = "X-Mock-Prompt-Tokens"

	// HeaderCompletionTokens overrides the output token count, an integer
	// >= 0: usage.completion_tokens of chat completions, output_tokens of
	// messages.
	HeaderCompletionTokens = "X-Mock-Completion-Tokens"

	// HeaderUsageDetails, when true, makes min(2, input tokens) of the
	// input tokens cache reads and min(3, output tokens) of the output
	// tokens reasoning. Chat completions report them as
	// usage.prompt_tokens_details.cached_tokens and
	// usage.completion_tokens_details.reasoning_tokens; messages as
	// cache_read_input_tokens, leaving them out of input_tokens as
	// Anthropic does (Messages has no reasoning count).
	HeaderUsageDetails = "X-Mock-Usage-Details"

	// HeaderToolArguments is the JSON object the mock passes as the
	// arguments of the tool calls it makes (default "{}"), verbatim. When
	// it calls a tool is described in the package documentation. Chat
	// completions and messages.
	HeaderToolArguments = "X-Mock-Tool-Arguments"
)

// maxChunks bounds [HeaderChunks] so that a typo cannot make the mock
// allocate or send an absurd number of events.
const maxChunks = 100_000

// behaviour is the parsed form of the behaviour headers of one request.
type behaviour struct {
	status       int // 0: no injected error
	errorBody    string
	hasErrorBody bool

	content    string
	hasContent bool

	chunks      int
	chunkDelay  time.Duration
	headerDelay time.Duration
	split       bool

	reset      bool
	resetAfter int

	hang bool

	promptTokens     int64
	hasPromptTokens  bool
	completionTokens int64
	hasCompletion    bool

	usageDetails bool

	toolArguments string
}

// headerError reports an invalid behaviour header value.
type headerError struct {
	header string
	value  string
	reason string
}

func (e *headerError) Error() string {
	return fmt.Sprintf("invalid %s header %q: %s", e.header, e.value, e.reason)
}

// lookupHeader returns the first value of header name and whether the
// header is present at all, so that an explicitly empty value can be told
// from an absent one.
func lookupHeader(h http.Header, name string) (string, bool) {
	vs := h.Values(name)
	if len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// parseBehaviour validates and parses the behaviour headers of h.
func parseBehaviour(h http.Header) (behaviour, *headerError) {
	b := behaviour{chunks: DefaultStreamChunks}
	var err *headerError

	if v, ok := lookupHeader(h, HeaderStatus); ok {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 400 || n > 599 {
			return b, &headerError{HeaderStatus, v, "must be an integer between 400 and 599"}
		}
		b.status = n
	}
	b.errorBody, b.hasErrorBody = lookupHeader(h, HeaderErrorBody)
	b.content, b.hasContent = lookupHeader(h, HeaderContent)

	if v, ok := lookupHeader(h, HeaderChunks); ok {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > maxChunks {
			return b, &headerError{HeaderChunks, v, fmt.Sprintf("must be an integer between 1 and %d", maxChunks)}
		}
		b.chunks = n
	}
	if b.chunkDelay, err = durationHeader(h, HeaderChunkDelay); err != nil {
		return b, err
	}
	if b.headerDelay, err = durationHeader(h, HeaderHeaderDelay); err != nil {
		return b, err
	}
	if b.split, err = boolHeader(h, HeaderSplit); err != nil {
		return b, err
	}
	if v, ok := lookupHeader(h, HeaderResetAfter); ok {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 {
			return b, &headerError{HeaderResetAfter, v, "must be an integer >= 0"}
		}
		b.reset, b.resetAfter = true, n
	}
	if b.hang, err = boolHeader(h, HeaderHang); err != nil {
		return b, err
	}
	if b.promptTokens, b.hasPromptTokens, err = countHeader(h, HeaderPromptTokens); err != nil {
		return b, err
	}
	if b.completionTokens, b.hasCompletion, err = countHeader(h, HeaderCompletionTokens); err != nil {
		return b, err
	}
	if b.usageDetails, err = boolHeader(h, HeaderUsageDetails); err != nil {
		return b, err
	}
	b.toolArguments = "{}"
	if v, ok := lookupHeader(h, HeaderToolArguments); ok {
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(v), &obj) != nil || obj == nil {
			return b, &headerError{HeaderToolArguments, v, "must be a JSON object"}
		}
		b.toolArguments = v
	}
	return b, nil
}

func durationHeader(h http.Header, name string) (time.Duration, *headerError) {
	v, ok := lookupHeader(h, name)
	if !ok {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, &headerError{name, v, `must be a non-negative Go duration such as "50ms"`}
	}
	return d, nil
}

func boolHeader(h http.Header, name string) (bool, *headerError) {
	v, ok := lookupHeader(h, name)
	if !ok {
		return false, nil
	}
	t, err := strconv.ParseBool(v)
	if err != nil {
		return false, &headerError{name, v, `must be "true" or "false"`}
	}
	return t, nil
}

func countHeader(h http.Header, name string) (int64, bool, *headerError) {
	v, ok := lookupHeader(h, name)
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return 0, false, &headerError{name, v, "must be an integer between 0 and 2147483647"}
	}
	return n, true, nil
}
