package mockllm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// chatRequest is the part of an OpenAI chat completion request the mock
// reads; other fields are accepted and ignored.
type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type usage struct {
	PromptTokens            int64              `json:"prompt_tokens"`
	CompletionTokens        int64              `json:"completion_tokens"`
	TotalTokens             int64              `json:"total_tokens"`
	PromptTokensDetails     *promptDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *completionDetails `json:"completion_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

type completionDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   usage        `json:"usage"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      responseMessage `json:"message"`
	FinishReason string          `json:"finish_reason"`
}

type responseMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// chat serves POST /v1/chat/completions.
func (m *Mock) chat(w http.ResponseWriter, r *http.Request, b *behaviour) outcome {
	body, res, ok := readBody(w, r)
	if !ok {
		return res
	}
	if res, done := prelude(w, r, b); done {
		return res
	}
	if !checkJSON(w, r) {
		return outcomeCompleted
	}
	req, prompt, err := parseChatRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, *err)
		return outcomeCompleted
	}

	content := m.content
	if b.hasContent {
		content = b.content
	}
	u := usage{PromptTokens: prompt, CompletionTokens: int64(countWords(content))}
	if b.hasPromptTokens {
		u.PromptTokens = b.promptTokens
	}
	if b.hasCompletion {
		u.CompletionTokens = b.completionTokens
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	if b.usageDetails {
		u.PromptTokensDetails = &promptDetails{CachedTokens: min(2, u.PromptTokens)}
		u.CompletionTokensDetails = &completionDetails{ReasoningTokens: min(3, u.CompletionTokens)}
	}

	id := fmt.Sprintf("chatcmpl-mock-%d", m.chatSeq.Add(1))
	created := time.Now().Unix()
	if !req.Stream {
		return respondJSON(w, r, b, chatCompletion{
			ID:      id,
			Object:  "chat.completion",
			Created: created,
			Model:   req.Model,
			Choices: []chatChoice{{
				Message:      responseMessage{Role: "assistant", Content: content},
				FinishReason: "stop",
			}},
			Usage: u,
		})
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	return streamChat(w, r, b, chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model}, content, includeUsage, u)
}

// parseChatRequest decodes and validates a chat completion request and
// returns it with its prompt token count.
func parseChatRequest(body []byte) (*chatRequest, int64, *apiError) {
	invalid := func(param, format string, args ...any) *apiError {
		e := &apiError{Message: fmt.Sprintf(format, args...), Type: "invalid_request_error"}
		if param != "" {
			e.Param = new(param)
		}
		return e
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, 0, invalid("", "We could not parse the JSON body of your request: %v", err)
	}
	if req.Model == "" {
		return nil, 0, invalid("model", "you must provide a model parameter")
	}
	if len(req.Messages) == 0 {
		return nil, 0, invalid("messages", "messages must be a non-empty array")
	}
	var prompt int64
	for i, msg := range req.Messages {
		n, err := contentWords(msg.Content)
		if err != nil {
			return nil, 0, invalid(fmt.Sprintf("messages[%d].content", i), "messages[%d].content: %v", i, err)
		}
		prompt += int64(n)
	}
	return &req, prompt, nil
}

// contentWords counts the words of a message content: a string, null, or an
// array of parts of which the "text" ones count.
func contentWords(raw json.RawMessage) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		return countWords(s), nil
	case '[':
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return 0, fmt.Errorf("content parts must be objects with a type: %w", err)
		}
		n := 0
		for _, p := range parts {
			if p.Type == "text" {
				n += countWords(p.Text)
			}
		}
		return n, nil
	}
	return 0, fmt.Errorf("content must be a string, null or an array of content parts")
}

// countWords returns the number of whitespace-separated words in s.
func countWords(s string) int {
	n := 0
	for range strings.FieldsSeq(s) {
		n++
	}
	return n
}

// streamChat writes a streamed chat completion; tmpl carries the fields
// shared by all chunks.
func streamChat(w http.ResponseWriter, r *http.Request, b *behaviour, tmpl chatChunk, content string, includeUsage bool, u usage) outcome {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: http.NewResponseController(w), r: r, split: b.split}
	if err := sw.flush(); err != nil {
		return outcomeCanceled
	}
	if b.hang {
		return streamOutcome(wait(r, -1))
	}

	send := func(c chatChunk) error {
		data, err := json.Marshal(c)
		if err != nil { // unreachable: chatChunk always marshals
			return err
		}
		return sw.event(data)
	}
	chunk := func(d delta, finish *string) chatChunk {
		c := tmpl
		c.Choices = []chunkChoice{{Delta: d, FinishReason: finish}}
		return c
	}

	if err := send(chunk(delta{Role: "assistant", Content: new("")}, nil)); err != nil {
		return streamOutcome(err)
	}
	for i, piece := range splitContent(content, b.chunks) {
		if b.reset && i == b.resetAfter {
			abort()
		}
		if b.chunkDelay > 0 {
			if err := wait(r, b.chunkDelay); err != nil {
				return streamOutcome(err)
			}
		}
		if err := send(chunk(delta{Content: new(piece)}, nil)); err != nil {
			return streamOutcome(err)
		}
	}
	if b.reset { // resetAfter >= number of chunks
		abort()
	}
	if err := send(chunk(delta{}, new("stop"))); err != nil {
		return streamOutcome(err)
	}
	if includeUsage {
		c := tmpl
		c.Choices = []chunkChoice{}
		c.Usage = &u
		if err := send(c); err != nil {
			return streamOutcome(err)
		}
	}
	if err := sw.event([]byte("[DONE]")); err != nil {
		return streamOutcome(err)
	}
	return outcomeCompleted
}

// sseWriter writes server-sent events, flushing each one.
type sseWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	r     *http.Request
	split bool
	buf   []byte
}

// event writes "data: <data>\n\n" and flushes it. In split mode the event
// goes out in two halves with a flush and a short pause in between. Errors
// are errClientGone or errStopping.
func (s *sseWriter) event(data []byte) error {
	s.buf = append(s.buf[:0], "data: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, "\n\n"...)
	if !s.split {
		return s.write(s.buf)
	}
	half := len(s.buf) / 2
	if err := s.write(s.buf[:half]); err != nil {
		return err
	}
	if err := wait(s.r, splitPause); err != nil {
		return err
	}
	return s.write(s.buf[half:])
}

// write writes and flushes p. It stops before writing once the client has
// gone, so that a departed client does not keep the stream going, but does
// not look afterwards: a client that hangs up right after receiving the
// last event has received a complete reply.
func (s *sseWriter) write(p []byte) error {
	if s.r.Context().Err() != nil {
		return errClientGone
	}
	if _, err := s.w.Write(p); err != nil {
		return errClientGone
	}
	return s.flush()
}

// flush flushes buffered output to the client. A ResponseWriter that
// cannot flush (some middleware wrappers) still gets the events, unflushed.
func (s *sseWriter) flush() error {
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return errClientGone
	}
	return nil
}

// splitContent splits s into exactly n pieces (n >= 1) that concatenate to
// s. Pieces are groups of nearly equal numbers of words, each word keeping
// the whitespace that follows it; when s has fewer than n words it is split
// into pieces of nearly equal numbers of characters instead, and when it has
// fewer than n characters the trailing pieces are empty.
func splitContent(s string, n int) []string {
	if ends := wordSpans(s); len(ends) >= n {
		return group(s, ends, n)
	}
	var ends []int // end offset of each rune
	for i, rn := range s {
		ends = append(ends, i+utf8.RuneLen(rn))
	}
	return group(s, ends, n)
}

// group distributes the units of s, unit i ending at byte offset ends[i]
// (the last at len(s)), over n pieces whose sizes differ by at most one
// unit, the larger pieces first.
func group(s string, ends []int, n int) []string {
	pieces := make([]string, n)
	q, rem := len(ends)/n, len(ends)%n
	start, units := 0, 0
	for i := range pieces {
		size := q
		if i < rem {
			size++
		}
		if size == 0 {
			continue
		}
		units += size
		stop := ends[units-1]
		pieces[i] = s[start:stop]
		start = stop
	}
	return pieces
}

// wordSpans returns the end offsets of the words of s, each word extended
// by the whitespace that follows it; leading whitespace belongs to the first
// word. The last end is len(s) when s has any word.
func wordSpans(s string) []int {
	var ends []int
	seenWord, prevSpace := false, false
	for i, rn := range s {
		space := unicode.IsSpace(rn)
		if !space && prevSpace && seenWord {
			ends = append(ends, i)
		}
		if !space {
			seenWord = true
		}
		prevSpace = space
	}
	if seenWord {
		ends = append(ends, len(s))
	}
	return ends
}
