package mockllm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// anthropicClient returns an official Messages client of s that does not
// retry and whose connections close when the test ends.
func anthropicClient(t *testing.T, s *Server) anthropic.Client {
	return anthropic.NewClient(
		option.WithBaseURL(s.URL()),
		option.WithAPIKey("test-key"),
		option.WithMaxRetries(0),
		option.WithHTTPClient(newClient(t)),
	)
}

// mockHeaders turns behaviour headers into request options.
func mockHeaders(headers map[string]string) []option.RequestOption {
	var opts []option.RequestOption
	for k, v := range headers {
		opts = append(opts, option.WithHeader(k, v))
	}
	return opts
}

// weatherTools offers two function tools.
var weatherTools = []anthropic.ToolUnionParam{
	anthropic.ToolUnionParamOfTool(anthropic.ToolInputSchemaParam{
		Properties: map[string]any{"city": map[string]any{"type": "string"}},
	}, "get_weather"),
	anthropic.ToolUnionParamOfTool(anthropic.ToolInputSchemaParam{}, "get_time"),
}

// messageParams asks with a system prompt of three words and a user
// message of five: 8 prompt tokens.
func messageParams() anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-test",
		MaxTokens: 100,
		System:    []anthropic.TextBlockParam{{Text: "You are terse."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello to the gateway"))},
	}
}

const messageParamsPromptTokens = 3 + 5

// summary is what a test compares of a Messages reply.
type summary struct {
	ID, Model, Stop string
	Text            string
	Calls           []string // "id name input"
	In, Out         int64
	CacheRead       int64
}

func summarize(m *anthropic.Message) summary {
	s := summary{ID: m.ID, Model: string(m.Model), Stop: string(m.StopReason),
		In: m.Usage.InputTokens, Out: m.Usage.OutputTokens, CacheRead: m.Usage.CacheReadInputTokens}
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			s.Text += b.Text
		case "tool_use":
			s.Calls = append(s.Calls, b.ID+" "+b.Name+" "+string(b.Input))
		}
	}
	return s
}

// accumulate streams params and returns the accumulated message with the
// types of the events received.
func accumulate(t *testing.T, c anthropic.Client, params anthropic.MessageNewParams, opts ...option.RequestOption) (anthropic.Message, []string) {
	t.Helper()
	stream := c.Messages.NewStreaming(t.Context(), params, opts...)
	defer stream.Close()
	var msg anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatalf("Accumulate %s: %v", ev.Type, err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	return msg, types
}

func TestMessagesSDK(t *testing.T) {
	s, _ := startServer(t, Options{})
	c := anthropicClient(t, s)

	msg, err := c.Messages.New(t.Context(), messageParams())
	if err != nil {
		t.Fatal(err)
	}
	want := summary{ID: "msg_mock_1", Model: "claude-test", Stop: "end_turn", Text: DefaultCompletionText,
		In: messageParamsPromptTokens, Out: 6}
	if got := summarize(msg); !reflect.DeepEqual(got, want) {
		t.Errorf("message:\n got %+v\nwant %+v", got, want)
	}

	streamed, types := accumulate(t, c, messageParams(), mockHeaders(map[string]string{
		HeaderContent: "one two three four five",
		HeaderChunks:  "3",
	})...)
	want = summary{ID: "msg_mock_2", Model: "claude-test", Stop: "end_turn", Text: "one two three four five",
		In: messageParamsPromptTokens, Out: 5}
	if got := summarize(&streamed); !reflect.DeepEqual(got, want) {
		t.Errorf("streamed message:\n got %+v\nwant %+v", got, want)
	}
	// The SDK hands out every event but pings.
	wantTypes := []string{"message_start", "content_block_start",
		"content_block_delta", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop"}
	if !reflect.DeepEqual(types, wantTypes) {
		t.Errorf("event types = %q, want %q", types, wantTypes)
	}
	if st := waitStats(t, s.Mock(), idle); st != (Stats{Requests: 2, Completed: 2}) {
		t.Errorf("stats = %+v", st)
	}
}

func TestMessagesToolUseRoundTrip(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%t", stream), func(t *testing.T) {
			s, _ := startServer(t, Options{})
			c := anthropicClient(t, s)
			ask := func(params anthropic.MessageNewParams, headers map[string]string) anthropic.Message {
				t.Helper()
				if stream {
					msg, _ := accumulate(t, c, params, mockHeaders(headers)...)
					return msg
				}
				msg, err := c.Messages.New(t.Context(), params, mockHeaders(headers)...)
				if err != nil {
					t.Fatal(err)
				}
				return *msg
			}

			params := messageParams()
			params.Tools = weatherTools
			first := ask(params, map[string]string{
				HeaderToolArguments: `{"city": "Paris"}`,
				HeaderContent:       "Let me check.",
				HeaderChunks:        "2",
			})
			want := summary{ID: "msg_mock_1", Model: "claude-test", Stop: "tool_use", Text: "Let me check.",
				Calls: []string{`toolu_mock_1 get_weather {"city":"Paris"}`},
				In:    messageParamsPromptTokens, Out: 3 + 2}
			got := summarize(&first)
			if stream { // the input streams verbatim, as the header gives it
				want.Calls = []string{`toolu_mock_1 get_weather {"city": "Paris"}`}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("tool use:\n got %+v\nwant %+v", got, want)
			}

			// The client runs the tool and sends its result: the mock answers
			// with text, and the words of the assistant's text and of the
			// result count as prompt.
			params.Messages = append(params.Messages,
				first.ToParam(),
				anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_mock_1", "sunny and warm", false)),
			)
			second := ask(params, nil)
			want = summary{ID: "msg_mock_2", Model: "claude-test", Stop: "end_turn", Text: DefaultCompletionText,
				In: messageParamsPromptTokens + 3 + 3, Out: 6}
			if got := summarize(&second); !reflect.DeepEqual(got, want) {
				t.Errorf("after the tool result:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestMessagesToolChoice(t *testing.T) {
	s, _ := startServer(t, Options{})
	c := anthropicClient(t, s)
	for _, tc := range []struct {
		name   string
		choice anthropic.ToolChoiceUnionParam
		want   string // the tool called; "" for none
	}{
		{"unset", anthropic.ToolChoiceUnionParam{}, "get_weather"},
		{"auto", anthropic.ToolChoiceUnionParam{OfAuto: &anthropic.ToolChoiceAutoParam{}}, "get_weather"},
		{"any", anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{}}, "get_weather"},
		{"tool", anthropic.ToolChoiceParamOfTool("get_time"), "get_time"},
		{"none", anthropic.ToolChoiceUnionParam{OfNone: &anthropic.ToolChoiceNoneParam{}}, ""},
	} {
		params := messageParams()
		params.Tools, params.ToolChoice = weatherTools, tc.choice
		msg, err := c.Messages.New(t.Context(), params)
		if err != nil {
			t.Fatal(err)
		}
		got := summarize(msg)
		switch {
		case tc.want == "" && (len(got.Calls) != 0 || got.Stop != "end_turn" || got.Text != DefaultCompletionText):
			t.Errorf("%s: %+v, want text and no call", tc.name, got)
		case tc.want != "" && (len(got.Calls) != 1 || !strings.Contains(got.Calls[0], " "+tc.want+" {}") || got.Text != "" || got.Out != 1):
			t.Errorf("%s: %+v, want a call of %s with {} and no text", tc.name, got, tc.want)
		}
	}
}

func TestMessagesCountTokens(t *testing.T) {
	s, _ := startServer(t, Options{})
	c := anthropicClient(t, s)
	p := messageParams()
	count := anthropic.MessageCountTokensParams{
		Model:    p.Model,
		System:   anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: p.System},
		Messages: append(p.Messages, anthropic.NewAssistantMessage(anthropic.NewTextBlock("two more"))),
		Tools:    []anthropic.MessageCountTokensToolUnionParam{{OfTool: weatherTools[0].OfTool}},
	}
	got, err := c.Messages.CountTokens(t.Context(), count)
	if err != nil {
		t.Fatal(err)
	}
	if got.InputTokens != messageParamsPromptTokens+2 {
		t.Errorf("input_tokens = %d, want %d", got.InputTokens, messageParamsPromptTokens+2)
	}
	got, err = c.Messages.CountTokens(t.Context(), count, option.WithHeader(HeaderPromptTokens, "1234"))
	if err != nil || got.InputTokens != 1234 {
		t.Errorf("with %s: %+v, %v", HeaderPromptTokens, got, err)
	}
	_, err = c.Messages.CountTokens(t.Context(), count, option.WithHeader(HeaderStatus, "529"))
	checkSDKError(t, err, 529, "overloaded_error")
}

// checkSDKError checks that err is an Anthropic API error with status and
// type.
func checkSDKError(t *testing.T, err error, status int, typ string) {
	t.Helper()
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("error = %v, want an *anthropic.Error", err)
	}
	if apiErr.StatusCode != status || string(apiErr.Type()) != typ || apiErr.Message == "" {
		t.Errorf("error: status %d type %q message %q; want %d %s", apiErr.StatusCode, apiErr.Type(), apiErr.Message, status, typ)
	}
}

func TestMessagesSDKErrors(t *testing.T) {
	s, _ := startServer(t, Options{})
	c := anthropicClient(t, s)
	for _, tc := range []struct {
		status int
		typ    string
	}{
		{400, "invalid_request_error"},
		{401, "authentication_error"},
		{429, "rate_limit_error"},
		{500, "api_error"},
		{529, "overloaded_error"},
	} {
		_, err := c.Messages.New(t.Context(), messageParams(), option.WithHeader(HeaderStatus, fmt.Sprint(tc.status)))
		checkSDKError(t, err, tc.status, tc.typ)
	}

	// An injected error ends a stream before it starts.
	stream := c.Messages.NewStreaming(t.Context(), messageParams(), option.WithHeader(HeaderStatus, "429"))
	for stream.Next() {
		t.Errorf("event %s from a failed stream", stream.Current().Type)
	}
	checkSDKError(t, stream.Err(), 429, "rate_limit_error")
	stream.Close()

	// Validation: the model must ask for max_tokens.
	params := messageParams()
	params.MaxTokens = 0
	_, err := c.Messages.New(t.Context(), params)
	checkSDKError(t, err, 400, "invalid_request_error")
	if st := waitStats(t, s.Mock(), idle); st != (Stats{Requests: 7, Completed: 7}) {
		t.Errorf("stats = %+v", st)
	}
}

// anthropicError is the Anthropic error body.
type anthropicError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// checkAnthropicError checks an Anthropic-shaped error reply whose message
// contains want.
func checkAnthropicError(t *testing.T, resp *http.Response, status int, typ, want string) {
	t.Helper()
	var got anthropicError
	decode(t, resp, status, &got)
	if got.Type != "error" || got.Error.Type != typ || !strings.Contains(got.Error.Message, want) {
		t.Errorf("error = %+v, want type %s and a message containing %q", got, typ, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

const messagesBody = `{"model":"claude-test","max_tokens":50,"messages":[{"role":"user","content":"hi there"}]}`

func messagesStreamBody() string {
	return strings.Replace(messagesBody, `{"model"`, `{"stream":true,"model"`, 1)
}

func TestMessagesBadRequests(t *testing.T) {
	s, c := startServer(t, Options{})
	for _, tc := range []struct {
		name, path, body string
		headers          map[string]string
		status           int
		typ, message     string
	}{
		{"bad json", PathMessages, `{"model":`, nil, 400, "invalid_request_error", ""},
		{"no model", PathMessages, `{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, nil, 400, "invalid_request_error", "model"},
		{"no messages", PathMessages, `{"model":"m","max_tokens":5,"messages":[]}`, nil, 400, "invalid_request_error", "messages"},
		{"no max_tokens", PathMessages, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, nil, 400, "invalid_request_error", "max_tokens"},
		{"bad role", PathMessages, `{"model":"m","max_tokens":5,"messages":[{"role":"tool","content":"hi"}]}`, nil, 400, "invalid_request_error", "messages[0].role"},
		{"bad content", PathCountTokens, `{"model":"m","messages":[{"role":"user","content":42}]}`, nil, 400, "invalid_request_error", "messages[0].content"},
		{"wrong content type", PathMessages, messagesBody, map[string]string{"Content-Type": "text/plain"}, 400, "invalid_request_error", "Content-Type"},
		{"bad header", PathMessages, messagesBody, map[string]string{HeaderChunks: "0"}, 400, "invalid_request_error", HeaderChunks},
		{"bad tool arguments", PathMessages, messagesBody, map[string]string{HeaderToolArguments: "[1]"}, 400, "invalid_request_error", HeaderToolArguments},
		{"too large", PathMessages, `{"model":"` + strings.Repeat("x", maxBodyBytes) + `"}`, nil, 413, "request_too_large", "exceeds"},
		{"unknown path", PathMessages + "/batches", messagesBody, nil, 404, "not_found_error", "/v1/messages/batches"},
		{"injected", PathMessages, `not json`, map[string]string{HeaderStatus: "503"}, 503, "overloaded_error", HeaderStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkAnthropicError(t, mustPost(t, c, s.URL()+tc.path, tc.body, tc.headers), tc.status, tc.typ, tc.message)
		})
	}

	// The error body override is verbatim on every door.
	const raw = `{"type":"error","error":{"type":"overloaded_error","message":"custom"}}`
	resp := mustPost(t, c, s.URL()+PathMessages, messagesBody, map[string]string{HeaderStatus: "529", HeaderErrorBody: raw})
	if b, err := io.ReadAll(resp.Body); err != nil || resp.StatusCode != 529 || string(b) != raw {
		t.Errorf("error body override: %d %q %v", resp.StatusCode, b, err)
	}

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL()+PathCountTokens, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Allow") != "POST" {
		t.Errorf("Allow = %q", resp.Header.Get("Allow"))
	}
	checkAnthropicError(t, resp, 405, "invalid_request_error", "GET")
}

// sseEvent is one server-sent event: its name and data.
type sseEvent struct{ name, data string }

// readEvents reads named server-sent events from r. The error is nil at a
// clean end of stream and the read error otherwise.
func readEvents(r io.Reader) ([]sseEvent, error) {
	var events []sseEvent
	var ev sseEvent
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" && ev == (sseEvent{}) {
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
			if ev.data == "" {
				return events, fmt.Errorf("event without data after %d events", len(events))
			}
			events = append(events, ev)
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data = strings.TrimPrefix(line, "data: ")
		default:
			return events, fmt.Errorf("unexpected SSE line %q", line)
		}
	}
}

// names returns the names of events, checking that each names its data's
// type as Anthropic's events do.
func names(t *testing.T, events []sseEvent) []string {
	t.Helper()
	var out []string
	for _, ev := range events {
		var data struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(ev.data), &data); err != nil || data.Type != ev.name {
			t.Errorf("event %q has data %s", ev.name, ev.data)
		}
		out = append(out, ev.name)
	}
	return out
}

func TestMessagesStreamReset(t *testing.T) {
	head := []string{"message_start", "ping"}
	text := "content_block_start"
	for _, tc := range []struct {
		resetAfter string
		tool       bool
		want       []string
	}{
		{"0", false, append(head, text)},
		{"2", false, append(head, text, "content_block_delta", "content_block_delta")},
		// Text in 4 chunks, then the tool call block and its 4 chunks.
		{"5", true, append(head, text, "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta",
			"content_block_stop", "content_block_start", "content_block_delta")},
		{"99", false, append(head, text, "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta",
			"content_block_stop")},
	} {
		t.Run(tc.resetAfter, func(t *testing.T) {
			s, c := startServer(t, Options{})
			body := messagesStreamBody()
			headers := map[string]string{HeaderResetAfter: tc.resetAfter}
			if tc.tool {
				body = strings.Replace(body, `"messages"`, `"tools":[{"name":"t","input_schema":{"type":"object"}}],"messages"`, 1)
				headers[HeaderContent] = "a b c d"
				headers[HeaderToolArguments] = `{"k":"value"}`
			}
			resp := mustPost(t, c, s.URL()+PathMessages, body, headers)
			events, err := readEvents(resp.Body)
			if err == nil {
				t.Fatalf("stream ended cleanly after %v, want a read error", events)
			}
			if got := names(t, events); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("events before the reset = %q, want %q", got, tc.want)
			}
			if st := waitStats(t, s.Mock(), idle); st != (Stats{Requests: 1, Aborted: 1}) {
				t.Errorf("stats = %+v", st)
			}
		})
	}

	// Non-streamed: headers, then the abort.
	s, c := startServer(t, Options{})
	for _, path := range []string{PathMessages, PathCountTokens} {
		resp := mustPost(t, c, s.URL()+path, messagesBody, map[string]string{HeaderResetAfter: "0"})
		if b, err := io.ReadAll(resp.Body); resp.StatusCode != 200 || err == nil {
			t.Errorf("%s: status %d, body %q, %v; want 200 and a broken body", path, resp.StatusCode, b, err)
		}
	}
}

func TestMessagesStreamFaults(t *testing.T) {
	t.Run("hang", func(t *testing.T) {
		s, c := startServer(t, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		resp, err := post(t, ctx, c, s.URL()+PathMessages, messagesStreamBody(), map[string]string{HeaderHang: "true"})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		checkPromptCancel(t, s.Mock(), cancel)
	})
	t.Run("chunk-delay", func(t *testing.T) {
		s, c := startServer(t, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		resp, err := post(t, ctx, c, s.URL()+PathMessages, messagesStreamBody(), map[string]string{HeaderChunkDelay: "1m"})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "event: message_start\n" {
			t.Fatalf("first line %q, %v; want message_start", line, err)
		}
		checkPromptCancel(t, s.Mock(), cancel)
	})
	t.Run("header-delay", func(t *testing.T) {
		s, c := startServer(t, Options{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() {
			resp, err := post(t, ctx, c, s.URL()+PathCountTokens, messagesBody, map[string]string{HeaderHeaderDelay: "1m"})
			if err == nil {
				resp.Body.Close()
			}
		}()
		waitStats(t, s.Mock(), func(st Stats) bool { return st.Active == 1 })
		checkPromptCancel(t, s.Mock(), cancel)
	})
	t.Run("split", func(t *testing.T) {
		m := New(Options{})
		var mu sync.Mutex
		var writes []string
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			m.ServeHTTP(writeRecorder{w, &mu, &writes}, r)
		}))
		defer ts.Close()
		resp := mustPost(t, newClient(t), ts.URL+PathMessages, messagesStreamBody(), map[string]string{HeaderSplit: "true"})
		events, err := readEvents(resp.Body)
		if err != nil {
			t.Fatalf("split stream: %v", err)
		}
		want := []string{"message_start", "ping", "content_block_start",
			"content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta",
			"content_block_stop", "message_delta", "message_stop"}
		if got := names(t, events); !reflect.DeepEqual(got, want) {
			t.Errorf("events = %q, want %q", got, want)
		}
		waitStats(t, m, idle)
		mu.Lock()
		defer mu.Unlock()
		if len(writes) != 2*len(events) {
			t.Fatalf("got %d writes for %d events, want two per event", len(writes), len(events))
		}
		for i := 0; i < len(writes); i += 2 {
			if first, second := writes[i], writes[i+1]; !strings.HasPrefix(first, "event: ") || strings.HasSuffix(first, "\n\n") || !strings.HasSuffix(second, "}\n\n") {
				t.Errorf("event %d not split mid-event: %q + %q", i/2, first, second)
			}
		}
	})
}

// TestDoorsAgree asks both doors the same things and checks that they
// answer the same text, tool call and usage: what a gateway test charges
// does not depend on the provider's protocol.
func TestDoorsAgree(t *testing.T) {
	s, c := startServer(t, Options{})
	type answer struct {
		Text       string
		Tool, Args string
		Stop       string
		In, Out    int64
		CacheRead  int64
	}
	stops := map[string]string{"stop": "end", "end_turn": "end", "tool_calls": "tool", "tool_use": "tool"}
	for _, tc := range []struct {
		name           string
		chat, messages string // request bodies
		headers        map[string]string
	}{
		{
			"plain",
			`{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is up?"}]}`,
			`{"model":"m","max_tokens":9,"system":"Be brief.","messages":[{"role":"user","content":"What is up?"}]}`,
			nil,
		},
		{
			"headers",
			`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"one two"}]}]}`,
			`{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"text","text":"one two"}]}]}`,
			map[string]string{HeaderContent: "custom words here", HeaderUsageDetails: "true", HeaderCompletionTokens: "17"},
		},
		{
			"tool call",
			`{"model":"m","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"call it"}]}`,
			`{"model":"m","max_tokens":9,"tools":[{"name":"f","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"call it"}]}`,
			map[string]string{HeaderToolArguments: `{"a": "b c"}`},
		},
		{
			"tool result",
			`{"model":"m","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"call it"},` +
				`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},` +
				`{"role":"tool","tool_call_id":"c1","content":"it is done"}]}`,
			`{"model":"m","max_tokens":9,"tools":[{"name":"f","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"call it"},` +
				`{"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"f","input":{}}]},` +
				`{"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":"it is done"}]}]}`,
			nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cc chatCompletion
			decode(t, mustPost(t, c, s.URL()+PathChatCompletions, tc.chat, tc.headers), 200, &cc)
			ch := cc.Choices[0]
			fromChat := answer{Stop: stops[ch.FinishReason], In: cc.Usage.PromptTokens, Out: cc.Usage.CompletionTokens}
			if ch.Message.Content != nil {
				fromChat.Text = *ch.Message.Content
			}
			for _, call := range ch.Message.ToolCalls {
				fromChat.Tool, fromChat.Args = call.Function.Name, call.Function.Arguments
			}
			if d := cc.Usage.PromptTokensDetails; d != nil {
				fromChat.CacheRead = d.CachedTokens
			}

			var msg anthropic.Message
			decode(t, mustPost(t, c, s.URL()+PathMessages, tc.messages, tc.headers), 200, &msg)
			got := summarize(&msg)
			fromMessages := answer{Text: got.Text, Stop: stops[got.Stop], CacheRead: got.CacheRead,
				In: got.In + got.CacheRead, Out: got.Out}
			for _, b := range msg.Content {
				if b.Type == "tool_use" {
					fromMessages.Tool = b.Name
					var a, b2 any
					_ = json.Unmarshal(b.Input, &a)
					_ = json.Unmarshal([]byte(fromChat.Args), &b2)
					if reflect.DeepEqual(a, b2) {
						fromMessages.Args = fromChat.Args
					}
				}
			}
			if fromChat != fromMessages {
				t.Errorf("the doors disagree:\n chat     %+v\n messages %+v", fromChat, fromMessages)
			}
			if fromChat.In == 0 || fromChat.Stop == "" {
				t.Errorf("empty answer %+v", fromChat)
			}
		})
	}
}

// A stream reports the input counts in message_start and the whole usage,
// cumulatively, in message_delta; Anthropic's input_tokens leaves the
// cache reads out.
func TestMessagesStreamUsage(t *testing.T) {
	s, c := startServer(t, Options{})
	resp := mustPost(t, c, s.URL()+PathMessages, messagesStreamBody(), map[string]string{
		HeaderPromptTokens: "10",
		HeaderUsageDetails: "true",
		HeaderChunks:       "1",
	})
	events, err := readEvents(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"type":"message_start","message":{"id":"msg_mock_1","type":"message","role":"assistant","model":"claude-test","content":[],"stop_reason":null,"stop_sequence":null,` +
			`"usage":{"input_tokens":8,"cache_creation_input_tokens":0,"cache_read_input_tokens":2,"output_tokens":0}}}`,
		`{"type":"ping"}`,
		`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello from the phasegate mock LLM."}}`,
		`{"type":"content_block_stop","index":0}`,
		`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},` +
			`"usage":{"input_tokens":8,"cache_creation_input_tokens":0,"cache_read_input_tokens":2,"output_tokens":6}}`,
		`{"type":"message_stop"}`,
	}
	var got []string
	for _, ev := range events {
		got = append(got, ev.data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stream:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	names(t, events)
}
