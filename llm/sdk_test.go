package llm_test

// The official SDKs read what the codecs write: each golden translation is
// served from a real HTTP server to anthropic-sdk-go and openai-go, whose
// stream accumulators must end up with the text, tool calls, stop reason
// and usage of the source.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	anthropic "github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/phasegate/phasegate/llm"
)

// want is what a client must make of a reply, from the source's neutral
// events or response.
type want struct {
	text    string // text blocks, in order
	refusal string // refusal blocks
	calls   []llm.ToolCall
	stop    llm.StopReason
	usage   llm.Usage
	err     bool // the stream ends with an error
}

// streamWant decodes the source stream of c into what a client must see.
func streamWant(t *testing.T, c testCase) want {
	var w want
	dec := codecs[c.from].NewStreamDecoder()
	kinds := map[int]llm.BlockKind{}
	calls := map[int]int{}
	ended := false
	var evs []llm.Event
	forEachEvent(t, c.in, func(name string, data []byte) {
		if ended {
			return
		}
		var err error
		evs, err = dec.Decode(evs[:0], name, data)
		for _, ev := range evs {
			switch ev.Kind {
			case llm.EventBlockStart:
				kinds[ev.Index] = ev.Block
				if ev.Block == llm.BlockToolCall {
					calls[ev.Index] = len(w.calls)
					w.calls = append(w.calls, llm.ToolCall{ID: ev.ID, Name: ev.Name})
				}
			case llm.EventBlockDelta:
				switch kinds[ev.Index] {
				case llm.BlockText:
					w.text += string(ev.Delta)
				case llm.BlockRefusal:
					w.refusal += string(ev.Delta)
				case llm.BlockToolCall:
					w.calls[calls[ev.Index]].Arguments += string(ev.Delta)
				}
			case llm.EventStop:
				w.stop = ev.Stop
			case llm.EventUsage:
				w.usage = ev.Usage
			case llm.EventEnd:
				ended = true
			case llm.EventError:
				w.err, ended = true, true
			}
		}
		if err != nil {
			w.err, ended = true, true
		}
	})
	if !ended && w.stop == llm.StopUnknown {
		w.err = true
	}
	return w
}

func responseWant(t *testing.T, c testCase) want {
	resp, err := codecs[c.from].DecodeResponse(c.in)
	if err != nil {
		t.Fatal(err)
	}
	ch := resp.Choices[0]
	w := want{stop: ch.Stop}
	if resp.Usage != nil {
		w.usage = *resp.Usage
	}
	for _, p := range ch.Parts {
		switch p.Kind {
		case llm.PartText:
			w.text += p.Text
		case llm.PartRefusal:
			w.refusal += p.Text
		case llm.PartToolCall:
			w.calls = append(w.calls, p.ToolCall)
		}
	}
	return w
}

// serve serves the golden file name of c with status, for one test.
func serve(t *testing.T, c testCase, name string, status int) *httptest.Server {
	body, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	ctype := "application/json"
	if strings.HasSuffix(name, ".sse") {
		ctype = "text/event-stream"
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func anthropicClient(srv *httptest.Server) anthropic.Client {
	return anthropic.NewClient(aoption.WithBaseURL(srv.URL), aoption.WithAPIKey("test"),
		aoption.WithHTTPClient(srv.Client()), aoption.WithMaxRetries(0))
}

func openaiClient(srv *httptest.Server) openai.Client {
	return openai.NewClient(ooption.WithBaseURL(srv.URL), ooption.WithAPIKey("test"),
		ooption.WithHTTPClient(srv.Client()), ooption.WithMaxRetries(0))
}

var anthropicParams = anthropic.MessageNewParams{
	Model: "claude-sonnet-4-5", MaxTokens: 1024,
	Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hi"))},
}

var chatParams = openai.ChatCompletionNewParams{
	Model:    "gpt-4o",
	Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hi")},
}

var responsesParams = responses.ResponseNewParams{
	Model: "gpt-4.1",
	Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi")},
}

// The stop reasons as each protocol names them, written out here rather
// than taken from the codecs.
var (
	anthropicStops = map[llm.StopReason]string{
		llm.StopUnknown: "end_turn", llm.StopEnd: "end_turn", llm.StopSequence: "stop_sequence",
		llm.StopMaxTokens: "max_tokens", llm.StopToolCalls: "tool_use", llm.StopRefusal: "refusal", llm.StopPause: "pause_turn",
	}
	chatFinishes = map[llm.StopReason]string{
		llm.StopUnknown: "stop", llm.StopEnd: "stop", llm.StopSequence: "stop", llm.StopMaxTokens: "length",
		llm.StopToolCalls: "tool_calls", llm.StopRefusal: "content_filter", llm.StopPause: "stop",
	}
	responsesIncomplete = map[llm.StopReason]string{llm.StopMaxTokens: "max_output_tokens", llm.StopRefusal: "content_filter"}
)

// sameJSON reports whether two tool call arguments are the same JSON, or
// the same text when they are not JSON.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

func checkCalls(t *testing.T, got, want []llm.ToolCall) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("tool calls: got %d %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Name != want[i].Name || !sameJSON(got[i].Arguments, want[i].Arguments) {
			t.Errorf("tool call %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// checkAnthropicMessage compares what anthropic-sdk-go made of a reply:
// Messages has no refusal blocks, so refusals arrive as text.
func checkAnthropicMessage(t *testing.T, m *anthropic.Message, w want, stream bool) {
	t.Helper()
	var text string
	var calls []llm.ToolCall
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			text += b.Text
		case "tool_use":
			calls = append(calls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: string(b.Input)})
		}
	}
	if text != w.text+w.refusal {
		t.Errorf("text %q, want %q", text, w.text+w.refusal)
	}
	if !stream || !w.err {
		// A cut-off tool call's input is emptied by the SDK.
		checkCalls(t, calls, w.calls)
	}
	if stream && w.err {
		return
	}
	if string(m.StopReason) != anthropicStops[w.stop] {
		t.Errorf("stop_reason %q, want %q", m.StopReason, anthropicStops[w.stop])
	}
	u := m.Usage
	if u.InputTokens != w.usage.InputTokens-w.usage.CacheReadTokens-w.usage.CacheWriteTokens ||
		u.CacheReadInputTokens != w.usage.CacheReadTokens || u.CacheCreationInputTokens != w.usage.CacheWriteTokens ||
		u.OutputTokens != w.usage.OutputTokens {
		t.Errorf("usage %+v, want %+v", u, w.usage)
	}
}

func TestAnthropicSDKReadsStreams(t *testing.T) {
	for _, c := range cases(t, "streams", ".sse") {
		if c.from == llm.AnthropicMessages {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			w := streamWant(t, c)
			client := anthropicClient(serve(t, c, "out.anthropic-messages.sse", 200))
			stream := client.Messages.NewStreaming(context.Background(), anthropicParams)
			defer stream.Close()
			var m anthropic.Message
			for stream.Next() {
				if err := m.Accumulate(stream.Current()); err != nil {
					t.Fatalf("Accumulate: %v", err)
				}
			}
			if err := stream.Err(); (err != nil) != w.err {
				t.Fatalf("stream error %v, want error: %v", err, w.err)
			}
			checkAnthropicMessage(t, &m, w, true)
		})
	}
}

func TestAnthropicSDKReadsResponses(t *testing.T) {
	for _, c := range cases(t, "responses", ".json") {
		if c.from == llm.AnthropicMessages {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			w := responseWant(t, c)
			if w.stop == llm.StopMaxTokens && len(w.calls) > 0 {
				// Arguments cut short are not JSON, and Messages' input is
				// an object: the codec writes {}.
				w.calls[0].Arguments = "{}"
			}
			client := anthropicClient(serve(t, c, "out.anthropic-messages.json", 200))
			m, err := client.Messages.New(context.Background(), anthropicParams)
			if err != nil {
				t.Fatal(err)
			}
			checkAnthropicMessage(t, m, w, false)
		})
	}
}

func checkChatCompletion(t *testing.T, cc *openai.ChatCompletion, w want, stream bool) {
	t.Helper()
	if len(cc.Choices) != 1 {
		t.Fatalf("%d choices", len(cc.Choices))
	}
	ch := cc.Choices[0]
	if ch.Message.Content != w.text || ch.Message.Refusal != w.refusal {
		t.Errorf("content %q refusal %q, want %q and %q", ch.Message.Content, ch.Message.Refusal, w.text, w.refusal)
	}
	var calls []llm.ToolCall
	for _, tc := range ch.Message.ToolCalls {
		calls = append(calls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	checkCalls(t, calls, w.calls)
	if stream && w.err {
		return
	}
	if ch.FinishReason != chatFinishes[w.stop] {
		t.Errorf("finish_reason %q, want %q", ch.FinishReason, chatFinishes[w.stop])
	}
	u := cc.Usage
	if u.PromptTokens != w.usage.InputTokens || u.CompletionTokens != w.usage.OutputTokens ||
		u.TotalTokens != w.usage.TotalTokens() || u.PromptTokensDetails.CachedTokens != w.usage.CacheReadTokens ||
		u.PromptTokensDetails.CacheWriteTokens != w.usage.CacheWriteTokens ||
		u.CompletionTokensDetails.ReasoningTokens != w.usage.ReasoningTokens {
		t.Errorf("usage %+v, want %+v", u, w.usage)
	}
}

func TestOpenAIChatSDKReadsStreams(t *testing.T) {
	for _, c := range cases(t, "streams", ".sse") {
		if c.from == llm.OpenAIChat {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			w := streamWant(t, c)
			client := openaiClient(serve(t, c, "out.openai-chat.sse", 200))
			stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams)
			defer stream.Close()
			var acc openai.ChatCompletionAccumulator
			var usage openai.CompletionUsage // the usage chunk's, as sent
			for stream.Next() {
				chunk := stream.Current()
				if !acc.AddChunk(chunk) {
					t.Fatalf("the accumulator refused chunk %s", chunk.RawJSON())
				}
				if chunk.JSON.Usage.Valid() {
					usage = chunk.Usage
				}
			}
			if err := stream.Err(); (err != nil) != w.err {
				t.Fatalf("stream error %v, want error: %v", err, w.err)
			}
			// The accumulator adds up usage chunks (one is sent) and knows
			// no cache writes.
			if acc.Usage.PromptTokens != usage.PromptTokens || acc.Usage.CompletionTokens != usage.CompletionTokens {
				t.Errorf("accumulated usage %+v, sent %+v", acc.Usage, usage)
			}
			acc.Usage = usage
			checkChatCompletion(t, &acc.ChatCompletion, w, true)
		})
	}
}

func TestOpenAIChatSDKReadsResponses(t *testing.T) {
	for _, c := range cases(t, "responses", ".json") {
		if c.from == llm.OpenAIChat {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			w := responseWant(t, c)
			client := openaiClient(serve(t, c, "out.openai-chat.json", 200))
			cc, err := client.Chat.Completions.New(context.Background(), chatParams)
			if err != nil {
				t.Fatal(err)
			}
			checkChatCompletion(t, cc, w, false)
		})
	}
}

// checkResponse compares what openai-go made of a Responses reply.
func checkResponse(t *testing.T, r *responses.Response, w want, stream bool) {
	t.Helper()
	var text, refusal string
	var calls []llm.ToolCall
	for _, item := range r.Output {
		switch item.Type {
		case "message":
			for _, part := range item.Content {
				text += part.Text
				refusal += part.Refusal
			}
		case "function_call":
			calls = append(calls, llm.ToolCall{ID: item.CallID, Name: item.Name, Arguments: item.Arguments.OfString})
		}
	}
	if text != w.text || refusal != w.refusal {
		t.Errorf("text %q refusal %q, want %q and %q", text, refusal, w.text, w.refusal)
	}
	checkCalls(t, calls, w.calls)
	if r.OutputText() != w.text {
		t.Errorf("OutputText %q, want %q", r.OutputText(), w.text)
	}
	if stream && w.err {
		if r.Status != "failed" || r.Error.Message == "" {
			t.Errorf("status %q error %+v, want a failed response with a message", r.Status, r.Error)
		}
		return
	}
	wantStatus := "completed"
	if reason := responsesIncomplete[w.stop]; reason != "" {
		wantStatus = "incomplete"
		if string(r.IncompleteDetails.Reason) != reason {
			t.Errorf("incomplete reason %q, want %q", r.IncompleteDetails.Reason, reason)
		}
	}
	if string(r.Status) != wantStatus {
		t.Errorf("status %q, want %q", r.Status, wantStatus)
	}
	u := r.Usage
	if u.InputTokens != w.usage.InputTokens || u.OutputTokens != w.usage.OutputTokens ||
		u.TotalTokens != w.usage.TotalTokens() || u.InputTokensDetails.CachedTokens != w.usage.CacheReadTokens ||
		u.InputTokensDetails.CacheWriteTokens != w.usage.CacheWriteTokens ||
		u.OutputTokensDetails.ReasoningTokens != w.usage.ReasoningTokens {
		t.Errorf("usage %+v, want %+v", u, w.usage)
	}
}

func TestOpenAIResponsesSDKReadsStreams(t *testing.T) {
	for _, c := range cases(t, "streams", ".sse") {
		if c.from == llm.OpenAIResponses {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			w := streamWant(t, c)
			client := openaiClient(serve(t, c, "out.openai-responses.sse", 200))
			stream := client.Responses.NewStreaming(context.Background(), responsesParams)
			defer stream.Close()
			// openai-go's accumulator takes the events it shares with
			// the Realtime socket; the HTTP stream's are the same JSON.
			var acc responses.ResponseAccumulator
			var terminal string
			var texts strings.Builder
			for stream.Next() {
				ev := stream.Current()
				var se responses.ResponsesServerEventUnion
				if err := json.Unmarshal([]byte(ev.RawJSON()), &se); err != nil {
					t.Fatal(err)
				}
				if err := acc.AddEvent(se); err != nil {
					t.Fatalf("AddEvent(%s): %v", ev.Type, err)
				}
				switch ev.Type {
				case "response.output_text.delta":
					texts.WriteString(ev.Delta)
				case "response.completed", "response.incomplete", "response.failed":
					if terminal != "" {
						t.Fatalf("second terminal event %s after %s", ev.Type, terminal)
					}
					terminal = ev.Type
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("stream error %v", err)
			}
			snap := acc.Snapshot()
			if snap.TerminalEvent != terminal || terminal == "" {
				t.Fatalf("terminal event %q (accumulator %q)", terminal, snap.TerminalEvent)
			}
			if snap.OutputText() != w.text || texts.String() != w.text {
				t.Errorf("snapshot text %q, deltas %q, want %q", snap.OutputText(), texts.String(), w.text)
			}
			r, err := acc.ReconstructedResponse()
			if err != nil {
				t.Fatal(err)
			}
			checkResponse(t, r, w, true)
		})
	}
}

func TestOpenAIResponsesSDKReadsResponses(t *testing.T) {
	for _, c := range cases(t, "responses", ".json") {
		if c.from == llm.OpenAIResponses {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			w := responseWant(t, c)
			client := openaiClient(serve(t, c, "out.openai-responses.json", 200))
			r, err := client.Responses.New(context.Background(), responsesParams)
			if err != nil {
				t.Fatal(err)
			}
			checkResponse(t, r, w, false)
		})
	}
}

// TestSDKsReadErrors serves each translated error with its status: the
// SDKs must report that status and the message.
func TestSDKsReadErrors(t *testing.T) {
	for _, c := range cases(t, "errors", ".json") {
		t.Run(c.name, func(t *testing.T) {
			raw, _ := os.ReadFile(filepath.Join(c.dir, "status"))
			status, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
			e := codecs[c.from].DecodeError(status, c.in)
			ctx := context.Background()
			if c.from != llm.AnthropicMessages {
				client := anthropicClient(serve(t, c, "out.anthropic-messages.json", status))
				_, err := client.Messages.New(ctx, anthropicParams)
				var ae *anthropic.Error
				if !errors.As(err, &ae) || ae.StatusCode != status || ae.Message != e.Message || ae.Type() == "" {
					t.Errorf("anthropic-sdk-go: %v (%+v)", err, ae)
				}
			}
			if c.from != llm.OpenAIChat {
				client := openaiClient(serve(t, c, "out.openai-chat.json", status))
				_, err := client.Chat.Completions.New(ctx, chatParams)
				var oe *openai.Error
				if !errors.As(err, &oe) || oe.StatusCode != status || oe.Message != e.Message {
					t.Errorf("openai-go chat: %v", err)
				}
			}
			if c.from != llm.OpenAIResponses {
				client := openaiClient(serve(t, c, "out.openai-responses.json", status))
				_, err := client.Responses.New(ctx, responsesParams)
				var oe *openai.Error
				if !errors.As(err, &oe) || oe.StatusCode != status || oe.Message != e.Message {
					t.Errorf("openai-go responses: %v", err)
				}
			}
		})
	}
}
