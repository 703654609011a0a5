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

// reply is what a client makes of a reply: from the SDKs' results, or
// from the source's neutral events as the client's protocol shows them.
type reply struct {
	text    string // text blocks, in order
	refusal string // refusal blocks
	calls   []llm.ToolCall
	stop    string // the protocol's name for the stop reason
	usage   llm.Usage
	failed  bool // the stream ends with an error
}

// sourceReply is the reply of a source: its neutral content, stop reason
// and usage.
type sourceReply struct {
	reply
	reason llm.StopReason
}

// streamSource decodes the source stream of c.
func streamSource(t *testing.T, c testCase) sourceReply {
	var s sourceReply
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
					calls[ev.Index] = len(s.calls)
					s.calls = append(s.calls, llm.ToolCall{ID: ev.ID, Name: ev.Name})
				}
			case llm.EventBlockDelta:
				switch kinds[ev.Index] {
				case llm.BlockText:
					s.text += string(ev.Delta)
				case llm.BlockRefusal:
					s.refusal += string(ev.Delta)
				case llm.BlockToolCall:
					s.calls[calls[ev.Index]].Arguments += string(ev.Delta)
				}
			case llm.EventStop:
				s.reason = ev.Stop
			case llm.EventUsage:
				s.usage = ev.Usage
			case llm.EventEnd:
				ended = true
			case llm.EventError:
				s.failed, ended = true, true
			}
		}
		if err != nil {
			s.failed, ended = true, true
		}
	})
	if !ended && s.reason == llm.StopUnknown {
		s.failed = true
	}
	return s
}

func responseSource(t *testing.T, c testCase) sourceReply {
	resp, err := codecs[c.from].DecodeResponse(c.in)
	if err != nil {
		t.Fatal(err)
	}
	ch := resp.Choices[0]
	s := sourceReply{reason: ch.Stop}
	if resp.Usage != nil {
		s.usage = *resp.Usage
	}
	for _, p := range ch.Parts {
		switch p.Kind {
		case llm.PartText:
			s.text += p.Text
		case llm.PartRefusal:
			s.refusal += p.Text
		case llm.PartToolCall:
			s.calls = append(s.calls, p.ToolCall)
		}
	}
	return s
}

// The stop reasons as each protocol names them, written out here rather
// than taken from the codecs; Responses names the status and the reason
// of an incomplete response.
var stopNames = map[llm.Protocol]map[llm.StopReason]string{
	llm.AnthropicMessages: {
		llm.StopUnknown: "end_turn", llm.StopEnd: "end_turn", llm.StopSequence: "stop_sequence",
		llm.StopMaxTokens: "max_tokens", llm.StopToolCalls: "tool_use", llm.StopRefusal: "refusal", llm.StopPause: "pause_turn",
	},
	llm.OpenAIChat: {
		llm.StopUnknown: "stop", llm.StopEnd: "stop", llm.StopSequence: "stop", llm.StopMaxTokens: "length",
		llm.StopToolCalls: "tool_calls", llm.StopRefusal: "content_filter", llm.StopPause: "stop",
	},
	llm.OpenAIResponses: {
		llm.StopUnknown: "completed", llm.StopEnd: "completed", llm.StopSequence: "completed", llm.StopMaxTokens: "incomplete max_output_tokens",
		llm.StopToolCalls: "completed", llm.StopRefusal: "incomplete content_filter", llm.StopPause: "completed",
	},
}

// in returns the source's reply as protocol p shows it: Messages has no
// refusal blocks (they are text) and no reasoning count; a failed stream
// has no stop reason or usage to compare.
func (s sourceReply) in(p llm.Protocol) reply {
	r := s.reply
	r.stop = stopNames[p][s.reason]
	if p == llm.AnthropicMessages {
		r.text, r.refusal = r.text+r.refusal, ""
		r.usage.ReasoningTokens = 0
	}
	if r.failed {
		r.stop, r.usage = "", llm.Usage{}
	}
	return r
}

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

func checkReply(t *testing.T, got, want reply) {
	t.Helper()
	if got.text != want.text || got.refusal != want.refusal {
		t.Errorf("text %q refusal %q, want %q and %q", got.text, got.refusal, want.text, want.refusal)
	}
	if got.stop != want.stop || got.usage != want.usage || got.failed != want.failed {
		t.Errorf("stop %q usage %+v failed %v, want %q %+v %v", got.stop, got.usage, got.failed, want.stop, want.usage, want.failed)
	}
	if len(got.calls) != len(want.calls) {
		t.Fatalf("tool calls: got %+v, want %+v", got.calls, want.calls)
	}
	for i := range want.calls {
		g, w := got.calls[i], want.calls[i]
		if g.ID != w.ID || g.Name != w.Name || !sameJSON(g.Arguments, w.Arguments) {
			t.Errorf("tool call %d: got %+v, want %+v", i, g, w)
		}
	}
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

var (
	anthropicParams = anthropic.MessageNewParams{
		Model: "claude-sonnet-4-5", MaxTokens: 1024,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hi"))},
	}
	chatParams = openai.ChatCompletionNewParams{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hi")},
	}
	responsesParams = responses.ResponseNewParams{
		Model: "gpt-4.1",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi")},
	}
)

// fromMessage is what anthropic-sdk-go made of a reply.
func fromMessage(m *anthropic.Message) reply {
	var r reply
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			r.text += b.Text
		case "tool_use":
			r.calls = append(r.calls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: string(b.Input)})
		}
	}
	u := m.Usage
	r.stop = string(m.StopReason)
	r.usage = llm.Usage{
		InputTokens:  u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens,
		OutputTokens: u.OutputTokens, CacheReadTokens: u.CacheReadInputTokens, CacheWriteTokens: u.CacheCreationInputTokens,
	}
	return r
}

// fromChatCompletion is what openai-go made of a Chat reply.
func fromChatCompletion(t *testing.T, cc *openai.ChatCompletion) reply {
	if len(cc.Choices) != 1 {
		t.Fatalf("%d choices", len(cc.Choices))
	}
	ch := cc.Choices[0]
	r := reply{text: ch.Message.Content, refusal: ch.Message.Refusal, stop: ch.FinishReason}
	for _, tc := range ch.Message.ToolCalls {
		r.calls = append(r.calls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	u := cc.Usage
	if u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("total_tokens %d is not %d + %d", u.TotalTokens, u.PromptTokens, u.CompletionTokens)
	}
	r.usage = llm.Usage{
		InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, CacheReadTokens: u.PromptTokensDetails.CachedTokens,
		CacheWriteTokens: u.PromptTokensDetails.CacheWriteTokens, ReasoningTokens: u.CompletionTokensDetails.ReasoningTokens,
	}
	return r
}

// fromResponse is what openai-go made of a Responses reply.
func fromResponse(t *testing.T, resp *responses.Response) reply {
	var r reply
	for _, item := range resp.Output {
		switch item.Type {
		case "message":
			for _, part := range item.Content {
				r.text += part.Text
				r.refusal += part.Refusal
			}
		case "function_call":
			r.calls = append(r.calls, llm.ToolCall{ID: item.CallID, Name: item.Name, Arguments: item.Arguments.OfString})
		}
	}
	if resp.OutputText() != r.text {
		t.Errorf("OutputText %q, text parts %q", resp.OutputText(), r.text)
	}
	r.stop = string(resp.Status)
	if reason := resp.IncompleteDetails.Reason; reason != "" {
		r.stop += " " + string(reason)
	}
	u := resp.Usage
	if u.TotalTokens != u.InputTokens+u.OutputTokens {
		t.Errorf("total_tokens %d is not %d + %d", u.TotalTokens, u.InputTokens, u.OutputTokens)
	}
	r.usage = llm.Usage{
		InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CacheReadTokens: u.InputTokensDetails.CachedTokens,
		CacheWriteTokens: u.InputTokensDetails.CacheWriteTokens, ReasoningTokens: u.OutputTokensDetails.ReasoningTokens,
	}
	if resp.Status == "failed" {
		if resp.Error.Message == "" {
			t.Error("a failed response without an error message")
		}
		return reply{text: r.text, refusal: r.refusal, calls: r.calls, failed: true}
	}
	return r
}

// readStream has each SDK read a stream and accumulate it.
var readStream = map[llm.Protocol]func(t *testing.T, srv *httptest.Server) reply{
	llm.AnthropicMessages: func(t *testing.T, srv *httptest.Server) reply {
		client := anthropicClient(srv)
		stream := client.Messages.NewStreaming(context.Background(), anthropicParams)
		defer stream.Close()
		var m anthropic.Message
		for stream.Next() {
			if err := m.Accumulate(stream.Current()); err != nil {
				t.Fatalf("Accumulate: %v", err)
			}
		}
		r := fromMessage(&m)
		if stream.Err() != nil {
			// A cut-off tool call's input is emptied by the SDK.
			return reply{text: r.text, calls: r.calls, failed: true}
		}
		return r
	},
	llm.OpenAIChat: func(t *testing.T, srv *httptest.Server) reply {
		client := openaiClient(srv)
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
		// The accumulator adds up usage chunks (one is sent) and knows no
		// cache writes.
		if acc.Usage.PromptTokens != usage.PromptTokens || acc.Usage.CompletionTokens != usage.CompletionTokens {
			t.Errorf("accumulated usage %+v, sent %+v", acc.Usage, usage)
		}
		acc.Usage = usage
		r := fromChatCompletion(t, &acc.ChatCompletion)
		if stream.Err() != nil {
			return reply{text: r.text, refusal: r.refusal, calls: r.calls, failed: true}
		}
		return r
	},
	llm.OpenAIResponses: func(t *testing.T, srv *httptest.Server) reply {
		client := openaiClient(srv)
		stream := client.Responses.NewStreaming(context.Background(), responsesParams)
		defer stream.Close()
		// openai-go's accumulator takes the events it shares with the
		// Realtime socket; the HTTP stream's are the same JSON.
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
		resp, err := acc.ReconstructedResponse()
		if err != nil {
			t.Fatal(err)
		}
		r := fromResponse(t, resp)
		if snap.OutputText() != r.text || texts.String() != r.text {
			t.Errorf("snapshot text %q, deltas %q, response %q", snap.OutputText(), texts.String(), r.text)
		}
		return r
	},
}

// readResponse has each SDK read a whole reply.
var readResponse = map[llm.Protocol]func(t *testing.T, srv *httptest.Server) reply{
	llm.AnthropicMessages: func(t *testing.T, srv *httptest.Server) reply {
		client := anthropicClient(srv)
		m, err := client.Messages.New(context.Background(), anthropicParams)
		if err != nil {
			t.Fatal(err)
		}
		return fromMessage(m)
	},
	llm.OpenAIChat: func(t *testing.T, srv *httptest.Server) reply {
		client := openaiClient(srv)
		cc, err := client.Chat.Completions.New(context.Background(), chatParams)
		if err != nil {
			t.Fatal(err)
		}
		return fromChatCompletion(t, cc)
	},
	llm.OpenAIResponses: func(t *testing.T, srv *httptest.Server) reply {
		client := openaiClient(srv)
		resp, err := client.Responses.New(context.Background(), responsesParams)
		if err != nil {
			t.Fatal(err)
		}
		return fromResponse(t, resp)
	},
}

func TestSDKsReadStreams(t *testing.T) {
	for _, c := range cases(t, "streams", ".sse") {
		src := streamSource(t, c)
		for _, p := range llm.Protocols() {
			if p == c.from {
				continue
			}
			t.Run(c.name+"/"+string(p), func(t *testing.T) {
				got := readStream[p](t, serve(t, c, "out."+string(p)+".sse", 200))
				checkReply(t, got, src.in(p))
			})
		}
	}
}

func TestSDKsReadResponses(t *testing.T) {
	for _, c := range cases(t, "responses", ".json") {
		src := responseSource(t, c)
		for _, p := range llm.Protocols() {
			if p == c.from {
				continue
			}
			t.Run(c.name+"/"+string(p), func(t *testing.T) {
				want := src.in(p)
				if p == llm.AnthropicMessages && src.reason == llm.StopMaxTokens {
					// Arguments cut short are no JSON object, which
					// Messages' input is: the codec writes {}.
					want.calls = append([]llm.ToolCall(nil), want.calls...)
					for i := range want.calls {
						want.calls[i].Arguments = "{}"
					}
				}
				checkReply(t, readResponse[p](t, serve(t, c, "out."+string(p)+".json", 200)), want)
			})
		}
	}
}

// TestSDKsReadErrors serves each translated error with its status: the
// SDKs must report that status and the message.
func TestSDKsReadErrors(t *testing.T) {
	for _, c := range cases(t, "errors", ".json") {
		raw, _ := os.ReadFile(filepath.Join(c.dir, "status"))
		status, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		e := codecs[c.from].DecodeError(status, c.in)
		for _, p := range llm.Protocols() {
			if p == c.from {
				continue
			}
			t.Run(c.name+"/"+string(p), func(t *testing.T) {
				srv := serve(t, c, "out."+string(p)+".json", status)
				var err error
				switch p {
				case llm.AnthropicMessages:
					client := anthropicClient(srv)
					_, err = client.Messages.New(context.Background(), anthropicParams)
					var ae *anthropic.Error
					if !errors.As(err, &ae) || ae.StatusCode != status || ae.Message != e.Message || ae.Type() == "" {
						t.Errorf("%v (%+v)", err, ae)
					}
					return
				case llm.OpenAIChat:
					client := openaiClient(srv)
					_, err = client.Chat.Completions.New(context.Background(), chatParams)
				case llm.OpenAIResponses:
					client := openaiClient(srv)
					_, err = client.Responses.New(context.Background(), responsesParams)
				}
				var oe *openai.Error
				if !errors.As(err, &oe) || oe.StatusCode != status || oe.Message != e.Message {
					t.Errorf("%v", err)
				}
			})
		}
	}
}
