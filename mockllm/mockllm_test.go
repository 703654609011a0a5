package mockllm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer starts a Server on a loopback port and returns it with a
// client of its own; both are shut down when the test ends.
func startServer(t *testing.T, opts Options) (*Server, *http.Client) {
	t.Helper()
	s, err := Start("127.0.0.1:0", opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, newClient(t)
}

// newClient returns a client with a private transport whose idle
// connections are closed when the test ends.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// post sends a JSON POST with extra headers. The context is the test's
// unless ctx is non-nil.
func post(t *testing.T, ctx context.Context, c *http.Client, url, body string, headers map[string]string) (*http.Response, error) {
	t.Helper()
	if ctx == nil {
		ctx = t.Context()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return c.Do(req)
}

// mustPost is post that fails the test on a transport error.
func mustPost(t *testing.T, c *http.Client, url, body string, headers map[string]string) *http.Response {
	t.Helper()
	resp, err := post(t, nil, c, url, body, headers)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// decode reads resp's body as JSON into v after checking the status.
func decode(t *testing.T, resp *http.Response, wantStatus int, v any) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("status = %d, want %d; body: %s", resp.StatusCode, wantStatus, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
}

// waitStats polls m's stats until cond holds, failing after a few seconds.
func waitStats(t *testing.T, m *Mock, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := m.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats condition not reached; stats: %+v", st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func idle(st Stats) bool { return st.Active == 0 }

// readSSE reads server-sent events from r and returns their data payloads.
// The error is nil at a clean end of stream and the read error otherwise;
// it is also an error for a stream to end inside an event.
func readSSE(r io.Reader) ([]string, error) {
	var events []string
	var data []string
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" && data == nil {
				return events, nil
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return events, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data == nil {
				return events, fmt.Errorf("empty event after %d events", len(events))
			}
			events = append(events, strings.Join(data, "\n"))
			data = nil
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		default:
			return events, fmt.Errorf("unexpected SSE line %q", line)
		}
	}
}

const chatBody = `{"model":"gpt-test","messages":[` +
	`{"role":"system","content":"You are terse."},` +
	`{"role":"user","content":[{"type":"text","text":"two words"},{"type":"image_url","image_url":{"url":"https://example.com/x.png"}}]},` +
	`{"role":"assistant","content":null},` +
	`{"role":"user","content":"Say hello to the gateway"}]}`

// chatBodyPromptTokens is the word count of chatBody's message contents.
const chatBodyPromptTokens = 3 + 2 + 0 + 5

func streamBody(includeUsage bool) string {
	return fmt.Sprintf(`{"model":"gpt-stream","stream":true,"stream_options":{"include_usage":%t},"messages":[{"role":"user","content":"hi there"}]}`, includeUsage)
}

func TestChatCompletion(t *testing.T) {
	s, c := startServer(t, Options{})
	before := time.Now().Unix()
	resp := mustPost(t, c, s.URL()+PathChatCompletions, chatBody, nil)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got map[string]any
	decode(t, resp, http.StatusOK, &got)

	created, _ := got["created"].(float64)
	if int64(created) < before || int64(created) > time.Now().Unix() {
		t.Errorf("created = %v, want about %d", got["created"], before)
	}
	delete(got, "created")
	want := map[string]any{
		"id":     "chatcmpl-mock-1",
		"object": "chat.completion",
		"model":  "gpt-test",
		"choices": []any{map[string]any{
			"index":         0.0,
			"message":       map[string]any{"role": "assistant", "content": DefaultCompletionText},
			"finish_reason": "stop",
		}},
		"usage": map[string]any{
			"prompt_tokens":     float64(chatBodyPromptTokens),
			"completion_tokens": 6.0,
			"total_tokens":      float64(chatBodyPromptTokens + 6),
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("response:\n got %v\nwant %v", got, want)
	}

	// IDs are sequential per Mock.
	var second chatCompletion
	decode(t, mustPost(t, c, s.URL()+PathChatCompletions, chatBody, nil), http.StatusOK, &second)
	if second.ID != "chatcmpl-mock-2" {
		t.Errorf("second id = %q, want chatcmpl-mock-2", second.ID)
	}
	if st := waitStats(t, s.Mock(), idle); st != (Stats{Requests: 2, Completed: 2}) {
		t.Errorf("stats = %+v", st)
	}
}

func TestChatCompletionOptionsAndHeaders(t *testing.T) {
	s, c := startServer(t, Options{DefaultContent: "configured default"})
	url := s.URL() + PathChatCompletions

	var got chatCompletion
	decode(t, mustPost(t, c, url, chatBody, nil), http.StatusOK, &got)
	if content := got.Choices[0].Message.Content; content == nil || *content != "configured default" {
		t.Errorf("message = %+v, want Options.DefaultContent", got.Choices[0].Message)
	}
	if got.Usage.CompletionTokens != 2 {
		t.Errorf("completion_tokens = %d, want 2", got.Usage.CompletionTokens)
	}

	resp := mustPost(t, c, url, chatBody, map[string]string{
		"Content-Type":         "application/json; charset=utf-8",
		HeaderContent:          "a custom reply",
		HeaderPromptTokens:     "100",
		HeaderCompletionTokens: "7",
		HeaderUsageDetails:     "true",
	})
	var raw map[string]json.RawMessage
	decode(t, resp, http.StatusOK, &raw)
	var choices []chatChoice
	if err := json.Unmarshal(raw["choices"], &choices); err != nil || *choices[0].Message.Content != "a custom reply" {
		t.Errorf("choices = %s (%v), want content from %s", raw["choices"], err, HeaderContent)
	}
	const wantUsage = `{"prompt_tokens":100,"completion_tokens":7,"total_tokens":107,` +
		`"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":3}}`
	if string(raw["usage"]) != wantUsage {
		t.Errorf("usage = %s, want %s", raw["usage"], wantUsage)
	}

	// An explicitly empty content header selects an empty completion, and
	// details never exceed the counts they break down.
	decode(t, mustPost(t, c, url, `{"model":"m","messages":[{"role":"user","content":"one"}]}`, map[string]string{
		HeaderContent:      "",
		HeaderUsageDetails: "1",
	}), http.StatusOK, &got)
	if *got.Choices[0].Message.Content != "" || got.Usage.CompletionTokens != 0 {
		t.Errorf("empty content: got %+v", got)
	}
	if got.Usage.PromptTokensDetails.CachedTokens != 1 || got.Usage.CompletionTokensDetails.ReasoningTokens != 0 {
		t.Errorf("details = %+v %+v", got.Usage.PromptTokensDetails, got.Usage.CompletionTokensDetails)
	}
}

// streamChunk mirrors chatChunk with maps where the test needs to see
// which keys are present.
type streamChunk struct {
	ID      string                       `json:"id"`
	Object  string                       `json:"object"`
	Created int64                        `json:"created"`
	Model   string                       `json:"model"`
	Choices []map[string]json.RawMessage `json:"choices"`
	Usage   *usage                       `json:"usage"`
}

func TestChatStream(t *testing.T) {
	for _, includeUsage := range []bool{false, true} {
		t.Run(fmt.Sprintf("include_usage=%t", includeUsage), func(t *testing.T) {
			s, c := startServer(t, Options{})
			const content = "one two three four five"
			resp := mustPost(t, c, s.URL()+PathChatCompletions, streamBody(includeUsage), map[string]string{
				HeaderContent: content,
				HeaderChunks:  "3",
			})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control = %q", cc)
			}
			events, err := readSSE(resp.Body)
			if err != nil {
				t.Fatalf("reading stream: %v (events so far: %q)", err, events)
			}
			checkStream(t, events, "gpt-stream", []string{"one two ", "three four ", "five"}, includeUsage,
				usage{PromptTokens: 2, CompletionTokens: 5, TotalTokens: 7})
			if st := waitStats(t, s.Mock(), idle); st != (Stats{Requests: 1, Completed: 1}) {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

// checkStream verifies a complete chat completion event stream.
func checkStream(t *testing.T, events []string, model string, pieces []string, includeUsage bool, wantUsage usage) {
	t.Helper()
	want := 1 + len(pieces) + 1 + 1 // role, content, finish, [DONE]
	if includeUsage {
		want++
	}
	if len(events) != want {
		t.Fatalf("got %d events, want %d: %q", len(events), want, events)
	}
	if last := events[len(events)-1]; last != "[DONE]" {
		t.Errorf("last event = %q, want [DONE]", last)
	}
	chunks := make([]streamChunk, len(events)-1)
	for i := range chunks {
		if err := json.Unmarshal([]byte(events[i]), &chunks[i]); err != nil {
			t.Fatalf("event %d %q: %v", i, events[i], err)
		}
		ch := chunks[i]
		if ch.ID != chunks[0].ID || ch.Created != chunks[0].Created || ch.Model != model ||
			ch.Object != "chat.completion.chunk" || !strings.HasPrefix(ch.ID, "chatcmpl-mock-") {
			t.Errorf("event %d header fields differ: %+v, first %+v", i, ch, chunks[0])
		}
		if ch.Usage != nil && !(includeUsage && i == len(chunks)-1) {
			t.Errorf("event %d has usage: %s", i, events[i])
		}
	}
	choice := func(i int) map[string]json.RawMessage {
		t.Helper()
		if len(chunks[i].Choices) != 1 {
			t.Fatalf("event %d: %d choices, want 1: %s", i, len(chunks[i].Choices), events[i])
		}
		return chunks[i].Choices[0]
	}
	if c := choice(0); string(c["delta"]) != `{"role":"assistant","content":""}` || string(c["finish_reason"]) != "null" || string(c["index"]) != "0" {
		t.Errorf("role chunk = %s", events[0])
	}
	for i, piece := range pieces {
		c := choice(1 + i)
		var d map[string]string
		if err := json.Unmarshal(c["delta"], &d); err != nil || len(d) != 1 || d["content"] != piece {
			t.Errorf("content chunk %d delta = %s, want content %q", i, c["delta"], piece)
		}
		if string(c["finish_reason"]) != "null" {
			t.Errorf("content chunk %d finish_reason = %s", i, c["finish_reason"])
		}
	}
	if c := choice(1 + len(pieces)); string(c["delta"]) != "{}" || string(c["finish_reason"]) != `"stop"` {
		t.Errorf("finish chunk = %s", events[1+len(pieces)])
	}
	if includeUsage {
		last := chunks[len(chunks)-1]
		if last.Choices == nil || len(last.Choices) != 0 || !strings.Contains(events[len(chunks)-1], `"choices":[]`) {
			t.Errorf("usage chunk choices = %v, want []", last.Choices)
		}
		if last.Usage == nil || *last.Usage != wantUsage {
			t.Errorf("usage chunk usage = %+v, want %+v", last.Usage, wantUsage)
		}
	}
}

func TestChatStreamDefaults(t *testing.T) {
	s, c := startServer(t, Options{})
	resp := mustPost(t, c, s.URL()+PathChatCompletions, streamBody(true), nil)
	events, err := readSSE(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// Six words in the default four chunks: 2, 2, 1, 1.
	checkStream(t, events, "gpt-stream", []string{"Hello from ", "the phasegate ", "mock ", "LLM."}, true,
		usage{PromptTokens: 2, CompletionTokens: 6, TotalTokens: 8})
}

// writeRecorder records the body writes of a handler; Unwrap lets
// http.ResponseController reach the underlying writer to flush.
type writeRecorder struct {
	http.ResponseWriter
	mu     *sync.Mutex
	writes *[]string
}

func (w writeRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	*w.writes = append(*w.writes, string(p))
	w.mu.Unlock()
	return w.ResponseWriter.Write(p)
}

func (w writeRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestChatStreamSplit(t *testing.T) {
	m := New(Options{})
	var mu sync.Mutex
	var writes []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.ServeHTTP(writeRecorder{w, &mu, &writes}, r)
	}))
	defer ts.Close()
	c := newClient(t)

	resp := mustPost(t, c, ts.URL+PathChatCompletions, streamBody(true), map[string]string{
		HeaderSplit:  "true",
		HeaderChunks: "2",
	})
	events, err := readSSE(resp.Body)
	if err != nil {
		t.Fatalf("split stream is not valid SSE: %v", err)
	}
	checkStream(t, events, "gpt-stream", []string{"Hello from the ", "phasegate mock LLM."}, true,
		usage{PromptTokens: 2, CompletionTokens: 6, TotalTokens: 8})

	waitStats(t, m, idle)
	mu.Lock()
	defer mu.Unlock()
	if len(writes) != 2*len(events) {
		t.Fatalf("got %d writes for %d events, want two per event", len(writes), len(events))
	}
	for i := 0; i < len(writes); i += 2 {
		first, second := writes[i], writes[i+1]
		if !strings.HasPrefix(first, "data: ") || strings.Contains(first, "\n") || !strings.HasSuffix(second, "\n\n") {
			t.Errorf("event %d not split mid-event: %q + %q", i/2, first, second)
		}
		if payload := strings.TrimPrefix(first, "data: "); strings.HasPrefix(payload, "{") && json.Valid([]byte(payload)) {
			t.Errorf("event %d: first half %q holds the whole JSON", i/2, first)
		}
	}
}

func TestStreamReset(t *testing.T) {
	for _, tc := range []struct {
		resetAfter string
		want       int // content chunks received
	}{
		{"0", 0},
		{"2", 2},
		{"99", 4}, // clamped: all content, then the reset
	} {
		t.Run("after="+tc.resetAfter, func(t *testing.T) {
			s, c := startServer(t, Options{})
			resp := mustPost(t, c, s.URL()+PathChatCompletions, streamBody(true), map[string]string{
				HeaderResetAfter: tc.resetAfter,
			})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			events, err := readSSE(resp.Body)
			if err == nil {
				t.Fatalf("stream ended cleanly after %q, want a read error", events)
			}
			if len(events) != 1+tc.want {
				t.Errorf("got %d events before the reset, want role + %d content: %q", len(events), tc.want, events)
			}
			st := waitStats(t, s.Mock(), idle)
			if st != (Stats{Requests: 1, Aborted: 1}) {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestNonStreamReset(t *testing.T) {
	s, c := startServer(t, Options{})
	for _, path := range []string{PathChatCompletions, PathModerations} {
		body := chatBody
		if path == PathModerations {
			body = `{"input":"hello"}`
		}
		resp := mustPost(t, c, s.URL()+path, body, map[string]string{HeaderResetAfter: "0"})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status = %d, want 200 before the reset", path, resp.StatusCode)
		}
		if b, err := io.ReadAll(resp.Body); err == nil {
			t.Errorf("%s: body read succeeded with %q, want an error", path, b)
		}
	}
	if st := waitStats(t, s.Mock(), idle); st != (Stats{Requests: 2, Aborted: 2}) {
		t.Errorf("stats = %+v", st)
	}
}

func TestHangCancel(t *testing.T) {
	t.Run("stream", func(t *testing.T) {
		s, c := startServer(t, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		resp, err := post(t, ctx, c, s.URL()+PathChatCompletions, streamBody(false), map[string]string{HeaderHang: "true"})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if st := s.Mock().Stats(); st.Active != 1 {
			t.Fatalf("hanging handler not active: %+v", st)
		}
		checkPromptCancel(t, s.Mock(), cancel)
	})
	t.Run("non-stream", func(t *testing.T) {
		s, c := startServer(t, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			resp, err := post(t, ctx, c, s.URL()+PathChatCompletions, chatBody, map[string]string{HeaderHang: "true"})
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		waitStats(t, s.Mock(), func(st Stats) bool { return st.Active == 1 })
		checkPromptCancel(t, s.Mock(), cancel)
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("client error = %v, want context.Canceled", err)
		}
	})
	t.Run("chunk-delay", func(t *testing.T) {
		s, c := startServer(t, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		resp, err := post(t, ctx, c, s.URL()+PathChatCompletions, streamBody(false), map[string]string{HeaderChunkDelay: "1m"})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.Contains(line, `"role":"assistant"`) {
			t.Fatalf("first line %q, %v; want the role chunk", line, err)
		}
		checkPromptCancel(t, s.Mock(), cancel)
	})
	t.Run("header-delay", func(t *testing.T) {
		s, c := startServer(t, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() {
			resp, err := post(t, ctx, c, s.URL()+PathModerations, `{"input":"x"}`, map[string]string{HeaderHeaderDelay: "1m"})
			if err == nil {
				resp.Body.Close()
			}
		}()
		waitStats(t, s.Mock(), func(st Stats) bool { return st.Active == 1 })
		checkPromptCancel(t, s.Mock(), cancel)
	})
}

// checkPromptCancel cancels the single active request of m and checks that
// its handler notices at once and is counted as canceled.
func checkPromptCancel(t *testing.T, m *Mock, cancel context.CancelFunc) {
	t.Helper()
	start := time.Now()
	cancel()
	st := waitStats(t, m, idle)
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("handler took %v to notice the cancellation", elapsed)
	}
	if st != (Stats{Requests: 1, Canceled: 1}) {
		t.Errorf("stats = %+v, want one canceled request", st)
	}
}

func TestHeaderDelay(t *testing.T) {
	s, c := startServer(t, Options{})
	const delay = 150 * time.Millisecond
	for _, tc := range []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"completion", map[string]string{HeaderHeaderDelay: delay.String()}, http.StatusOK},
		{"injected-error", map[string]string{HeaderHeaderDelay: delay.String(), HeaderStatus: "500"}, http.StatusInternalServerError},
	} {
		start := time.Now()
		resp := mustPost(t, c, s.URL()+PathChatCompletions, chatBody, tc.headers)
		if elapsed := time.Since(start); elapsed < delay {
			t.Errorf("%s: headers after %v, want at least %v", tc.name, elapsed, delay)
		}
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status = %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
}

func TestModeration(t *testing.T) {
	s, c := startServer(t, Options{})
	url := s.URL() + PathModerations
	for _, tc := range []struct {
		input string
		want  []bool
	}{
		{`"I will kill the process"`, []bool{true}},
		{`"KILL"`, []bool{true}},
		{`"a bomb!"`, []bool{true}},
		{`"skill issue, killer app, bombastic"`, []bool{false}},
		{`"kill_switch"`, []bool{false}},
		{`"hello"`, []bool{false}},
		{`["hello", "drop the Bomb", "", "killed"]`, []bool{false, true, false, false}},
	} {
		var got moderationResponse
		decode(t, mustPost(t, c, url, `{"input":`+tc.input+`}`, nil), http.StatusOK, &got)
		if got.Model != DefaultModerationModel || !strings.HasPrefix(got.ID, "modr-mock-") {
			t.Errorf("%s: id %q model %q", tc.input, got.ID, got.Model)
		}
		if len(got.Results) != len(tc.want) {
			t.Fatalf("%s: %d results, want %d", tc.input, len(got.Results), len(tc.want))
		}
		for i, res := range got.Results {
			wantScores := categoryScores{Violence: 0.01, Hate: 0.01, Harassment: 0.01, SelfHarm: 0.01, Sexual: 0.01}
			if tc.want[i] {
				wantScores.Violence = 0.99
			}
			if res.Flagged != tc.want[i] || res.Categories != (categoryFlags{Violence: tc.want[i]}) || res.CategoryScores != wantScores {
				t.Errorf("%s: result %d = %+v, want flagged=%t", tc.input, i, res, tc.want[i])
			}
		}
	}

	// Exact wire shape, including category names and the echoed model.
	var raw map[string]any
	decode(t, mustPost(t, c, url, `{"input":"kill","model":"omni-moderation-2024-09-26"}`, nil), http.StatusOK, &raw)
	want := map[string]any{
		"id":    "modr-mock-8",
		"model": "omni-moderation-2024-09-26",
		"results": []any{map[string]any{
			"flagged": true,
			"categories": map[string]any{
				"violence": true, "hate": false, "harassment": false, "self-harm": false, "sexual": false,
			},
			"category_scores": map[string]any{
				"violence": 0.99, "hate": 0.01, "harassment": 0.01, "self-harm": 0.01, "sexual": 0.01,
			},
		}},
	}
	if !reflect.DeepEqual(raw, want) {
		t.Errorf("response:\n got %v\nwant %v", raw, want)
	}
}

func TestModerationWords(t *testing.T) {
	s, c := startServer(t, Options{ModerationWords: []string{" Zap ", "", "très mal"}})
	var got moderationResponse
	decode(t, mustPost(t, c, s.URL()+PathModerations, `{"input":["zap it","kill","c'est TRÈS MAL.","zapper"]}`, nil), http.StatusOK, &got)
	var flagged []bool
	for _, r := range got.Results {
		flagged = append(flagged, r.Flagged)
	}
	if want := []bool{true, false, true, false}; !reflect.DeepEqual(flagged, want) {
		t.Errorf("flagged = %v, want %v", flagged, want)
	}

	none := New(Options{ModerationWords: []string{}})
	if none.flags("kill the bomb") {
		t.Error("an empty non-nil ModerationWords still flags")
	}
}

func TestInjectedStatus(t *testing.T) {
	s, c := startServer(t, Options{})
	type errBody struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	for _, tc := range []struct {
		path, body string
		status     int
		typ, code  string
	}{
		{PathChatCompletions, chatBody, 429, "requests", "rate_limit_exceeded"},
		{PathChatCompletions, streamBody(true), 503, "server_error", ""},
		{PathChatCompletions, `not json at all`, 400, "invalid_request_error", ""}, // status wins over validation
		{PathModerations, `{"input":"kill"}`, 401, "invalid_request_error", "invalid_api_key"},
		{PathModerations, `{"input":"kill"}`, 500, "server_error", ""},
	} {
		var got errBody
		resp := mustPost(t, c, s.URL()+tc.path, tc.body, map[string]string{HeaderStatus: fmt.Sprint(tc.status)})
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %d: Content-Type = %q", tc.path, tc.status, ct)
		}
		decode(t, resp, tc.status, &got)
		code := ""
		if got.Error.Code != nil {
			code = *got.Error.Code
		}
		if got.Error.Type != tc.typ || code != tc.code || !strings.Contains(got.Error.Message, fmt.Sprint(tc.status)) {
			t.Errorf("%s %d: error = %+v (code %q)", tc.path, tc.status, got.Error, code)
		}
	}

	for _, tc := range []struct{ body, ct string }{
		{`{"error":{"message":"custom","type":"tokens","code":"rate_limit_exceeded"}}`, "application/json"},
		{`<html>bad gateway</html>`, "text/plain; charset=utf-8"},
	} {
		resp := mustPost(t, c, s.URL()+PathChatCompletions, chatBody, map[string]string{
			HeaderStatus:    "502",
			HeaderErrorBody: tc.body,
		})
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 502 || string(b) != tc.body || resp.Header.Get("Content-Type") != tc.ct {
			t.Errorf("error body override: status %d, Content-Type %q, body %q, %v", resp.StatusCode, resp.Header.Get("Content-Type"), b, err)
		}
	}
}

// checkError checks an OpenAI-style error reply.
func checkError(t *testing.T, resp *http.Response, status int, param string) {
	t.Helper()
	var got struct {
		Error apiError `json:"error"`
	}
	decode(t, resp, status, &got)
	if got.Error.Message == "" || got.Error.Type != "invalid_request_error" {
		t.Errorf("error = %+v", got.Error)
	}
	gotParam := ""
	if got.Error.Param != nil {
		gotParam = *got.Error.Param
	}
	if gotParam != param {
		t.Errorf("param = %q, want %q (message %q)", gotParam, param, got.Error.Message)
	}
}

func TestBadRequests(t *testing.T) {
	s, c := startServer(t, Options{})
	for _, tc := range []struct {
		name, path, body, contentType string
		status                        int
		param                         string
	}{
		{"bad json", PathChatCompletions, `{"model":`, "", 400, ""},
		{"not an object", PathChatCompletions, `[1,2]`, "", 400, ""},
		{"wrong content type", PathChatCompletions, chatBody, "text/plain", 400, ""},
		{"missing model", PathChatCompletions, `{"messages":[{"role":"user","content":"hi"}]}`, "", 400, "model"},
		{"no messages", PathChatCompletions, `{"model":"m","messages":[]}`, "", 400, "messages"},
		{"bad content", PathChatCompletions, `{"model":"m","messages":[{"role":"user","content":42}]}`, "", 400, "messages[0].content"},
		{"bad parts", PathChatCompletions, `{"model":"m","messages":[{"role":"user","content":["x"]}]}`, "", 400, "messages[0].content"},
		{"too large", PathChatCompletions, `{"model":"` + strings.Repeat("x", maxBodyBytes) + `"}`, "", 413, ""},
		{"moderation bad json", PathModerations, `{`, "", 400, ""},
		{"moderation no input", PathModerations, `{}`, "", 400, "input"},
		{"moderation bad input", PathModerations, `{"input":[1]}`, "", 400, "input"},
		{"moderation empty input", PathModerations, `{"input":[]}`, "", 400, "input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headers := map[string]string{}
			if tc.contentType != "" {
				headers["Content-Type"] = tc.contentType
			}
			checkError(t, mustPost(t, c, s.URL()+tc.path, tc.body, headers), tc.status, tc.param)
		})
	}

	// No Content-Type at all is accepted.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+PathChatCompletions, strings.NewReader(chatBody))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("without Content-Type: status = %d, want 200", resp.StatusCode)
	}
}

func TestInvalidHeaders(t *testing.T) {
	s, c := startServer(t, Options{})
	for _, tc := range []struct{ header, value string }{
		{HeaderStatus, "abc"},
		{HeaderStatus, "200"},
		{HeaderStatus, "600"},
		{HeaderChunks, "0"},
		{HeaderChunks, "many"},
		{HeaderChunkDelay, "50"},
		{HeaderChunkDelay, "-1s"},
		{HeaderHeaderDelay, "soon"},
		{HeaderSplit, "yes please"},
		{HeaderResetAfter, "-1"},
		{HeaderHang, "maybe"},
		{HeaderPromptTokens, "-3"},
		{HeaderCompletionTokens, "1.5"},
		{HeaderUsageDetails, "2"},
	} {
		t.Run(tc.header+"="+tc.value, func(t *testing.T) {
			for _, path := range []string{PathChatCompletions, PathModerations} {
				resp := mustPost(t, c, s.URL()+path, chatBody, map[string]string{tc.header: tc.value})
				checkError(t, resp, http.StatusBadRequest, tc.header)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	s, c := startServer(t, Options{})
	do := func(method, path string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	resp := do(http.MethodGet, PathHealth)
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "ok" {
		t.Errorf("healthz: %d %q", resp.StatusCode, b)
	}
	if resp := do(http.MethodHead, PathHealth); resp.StatusCode != 200 {
		t.Errorf("HEAD healthz: %d", resp.StatusCode)
	}
	for _, path := range []string{"/", "/v1/completions", "/v1/chat/completions/", "/healthz/x"} {
		checkError(t, do(http.MethodPost, path), http.StatusNotFound, "")
	}
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodGet, PathChatCompletions, "POST"},
		{http.MethodPut, PathModerations, "POST"},
		{http.MethodPost, PathHealth, "GET, HEAD"},
	} {
		resp := do(tc.method, tc.path)
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		checkError(t, resp, http.StatusMethodNotAllowed, "")
	}
}

func TestConcurrentStreams(t *testing.T) {
	s, c := startServer(t, Options{})
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			headers := map[string]string{HeaderChunks: "3", HeaderChunkDelay: "1ms"}
			if i%2 == 0 {
				headers[HeaderSplit] = "true"
			}
			resp, err := post(t, nil, c, s.URL()+PathChatCompletions, streamBody(true), headers)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			events, err := readSSE(resp.Body)
			if err != nil || len(events) != 7 {
				t.Errorf("stream %d: %d events, %v", i, len(events), err)
			}
		})
	}
	wg.Wait()
	if st := waitStats(t, s.Mock(), idle); st != (Stats{Requests: n, Completed: n}) {
		t.Errorf("stats = %+v", st)
	}
}

func TestServerCloseEndsHangingRequests(t *testing.T) {
	s, err := Start("127.0.0.1:0", Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	stream, err := post(t, nil, c, s.URL()+PathChatCompletions, streamBody(false), map[string]string{HeaderHang: "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	type result struct {
		status int
		err    error
	}
	plain := make(chan result, 1)
	go func() {
		resp, err := post(t, nil, c, s.URL()+PathChatCompletions, chatBody, map[string]string{HeaderHang: "1"})
		if err != nil {
			plain <- result{err: err}
			return
		}
		resp.Body.Close()
		plain <- result{status: resp.StatusCode}
	}()
	waitStats(t, s.Mock(), func(st Stats) bool { return st.Active == 2 })

	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Close took %v", elapsed)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if st := s.Mock().Stats(); st != (Stats{Requests: 2, Completed: 2}) {
		t.Errorf("stats after Close = %+v", st)
	}
	if events, err := readSSE(stream.Body); err != nil || len(events) != 0 {
		t.Errorf("hanging stream after Close: events %q, err %v; want a clean end", events, err)
	}
	if r := <-plain; r.err != nil || r.status != http.StatusServiceUnavailable {
		t.Errorf("hanging request after Close: status %d, err %v; want 503", r.status, r.err)
	}
	if _, err := post(t, nil, c, s.URL()+PathHealth, "", nil); err == nil {
		t.Error("request after Close succeeded")
	}
}

func TestListenAndServe(t *testing.T) {
	// Reserve a free port, release it, and serve on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ListenAndServe(ctx, addr, Options{}) }()

	c := newClient(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+PathHealth, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("healthz status %d", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ListenAndServe = %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
}

func TestListenErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ListenAndServe(t.Context(), ln.Addr().String(), Options{}); err == nil {
		t.Error("ListenAndServe on a busy address succeeded")
	}
	if s, err := Start("not an address", Options{}); err == nil {
		s.Close()
		t.Error("Start on a bad address succeeded")
	}
}

func TestSplitContent(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want []string
	}{
		{"one two three four five", 3, []string{"one two ", "three four ", "five"}},
		{"one two three four", 4, []string{"one ", "two ", "three ", "four"}},
		{"one two", 1, []string{"one two"}},
		{"  lead  and trail  ", 2, []string{"  lead  and ", "trail  "}},
		{"a\nb\tc", 3, []string{"a\n", "b\t", "c"}},
		{"hello", 2, []string{"hel", "lo"}}, // fewer words than pieces: runes
		{"héllo wörld", 4, []string{"hél", "lo ", "wör", "ld"}},
		{"ab", 4, []string{"a", "b", "", ""}},
		{"", 3, []string{"", "", ""}},
		{"   ", 2, []string{"  ", " "}},
	} {
		got := splitContent(tc.s, tc.n)
		if len(got) != tc.n || strings.Join(got, "") != tc.s {
			t.Errorf("splitContent(%q, %d) = %q: want %d pieces joining to the input", tc.s, tc.n, got, tc.n)
			continue
		}
		if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitContent(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestContainsWord(t *testing.T) {
	for _, tc := range []struct {
		text, word string
		want       bool
	}{
		{"kill", "kill", true},
		{"skill kill", "kill", true},
		{"skill", "kill", false},
		{"kills", "kill", false},
		{"(kill)", "kill", true},
		{"self-harm", "harm", true},
		{"kill9", "kill", false},
		{"ékill", "kill", false},
		{"self harm", "self harm", true},
		{"", "kill", false},
	} {
		if got := containsWord(tc.text, tc.word); got != tc.want {
			t.Errorf("containsWord(%q, %q) = %t, want %t", tc.text, tc.word, got, tc.want)
		}
	}
}
