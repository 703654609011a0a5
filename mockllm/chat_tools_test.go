package mockllm

import (
	"fmt"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// openaiClient returns an official OpenAI client of s that does not retry
// and whose connections close when the test ends.
func openaiClient(t *testing.T, s *Server) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(s.URL()+"/v1"),
		option.WithAPIKey("test-key"),
		option.WithMaxRetries(0),
		option.WithHTTPClient(newClient(t)),
	)
}

func TestChatToolCallRoundTrip(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%t", stream), func(t *testing.T) {
			s, _ := startServer(t, Options{})
			c := openaiClient(t, s)
			ask := func(params openai.ChatCompletionNewParams, opts ...option.RequestOption) openai.ChatCompletion {
				t.Helper()
				if !stream {
					cc, err := c.Chat.Completions.New(t.Context(), params, opts...)
					if err != nil {
						t.Fatal(err)
					}
					return *cc
				}
				params.StreamOptions.IncludeUsage = openai.Bool(true)
				st := c.Chat.Completions.NewStreaming(t.Context(), params, opts...)
				defer st.Close()
				var acc openai.ChatCompletionAccumulator
				for st.Next() {
					if chunk := st.Current(); !acc.AddChunk(chunk) {
						t.Fatalf("the accumulator refused chunk %s", chunk.RawJSON())
					}
				}
				if err := st.Err(); err != nil {
					t.Fatal(err)
				}
				return acc.ChatCompletion
			}

			params := openai.ChatCompletionNewParams{
				Model: "gpt-test",
				Messages: []openai.ChatCompletionMessageParamUnion{
					openai.UserMessage("What is the weather in Paris?"),
				},
				Tools: []openai.ChatCompletionToolUnionParam{
					openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "get_weather"}),
					openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "get_time"}),
				},
			}
			first := ask(params, option.WithHeader(HeaderToolArguments, `{"city": "Paris"}`), option.WithHeader(HeaderChunks, "3"))
			ch := first.Choices[0]
			if ch.FinishReason != "tool_calls" || ch.Message.Content != "" || len(ch.Message.ToolCalls) != 1 {
				t.Fatalf("first reply = %+v, want one tool call and no text", ch)
			}
			call := ch.Message.ToolCalls[0]
			if call.ID != "call_mock_1" || call.Function.Name != "get_weather" || call.Function.Arguments != `{"city": "Paris"}` {
				t.Errorf("tool call = %+v", call)
			}
			if u := first.Usage; u.PromptTokens != 6 || u.CompletionTokens != 2 || u.TotalTokens != 8 {
				t.Errorf("usage = %+v, want 6 + 2", u)
			}

			params.Messages = append(params.Messages, ch.Message.ToParam(), openai.ToolMessage("sunny", call.ID))
			second := ask(params)
			if ch := second.Choices[0]; ch.FinishReason != "stop" || ch.Message.Content != DefaultCompletionText || len(ch.Message.ToolCalls) != 0 {
				t.Errorf("second reply = %+v, want the default text", ch)
			}
			if u := second.Usage; u.PromptTokens != 7 || u.CompletionTokens != 6 {
				t.Errorf("usage = %+v, want 7 + 6", u)
			}
		})
	}
}

// The wire shape of tool calls: content null beside the calls, and a
// stream whose first chunk of a call carries its index, id, type and name.
func TestChatToolCallWire(t *testing.T) {
	s, c := startServer(t, Options{})
	const body = `{"model":"m","tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required","messages":[{"role":"user","content":"go"}]}`
	resp := mustPost(t, c, s.URL()+PathChatCompletions, body, nil)
	var raw struct {
		Choices []map[string]any `json:"choices"`
	}
	decode(t, resp, 200, &raw)
	msg := fmt.Sprint(raw.Choices[0]["message"])
	if want := "map[content:<nil> role:assistant tool_calls:[map[function:map[arguments:{} name:f] id:call_mock_1 type:function]]]"; msg != want {
		t.Errorf("message = %s, want %s", msg, want)
	}

	stream := strings.Replace(body, `{"model"`, `{"stream":true,"model"`, 1)
	resp = mustPost(t, c, s.URL()+PathChatCompletions, stream, map[string]string{HeaderChunks: "2", HeaderContent: "a b"})
	events, err := readSSE(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var deltas []string
	for _, ev := range events {
		if i := strings.Index(ev, `"delta":`); i >= 0 {
			deltas = append(deltas, ev[i+len(`"delta":`):strings.LastIndex(ev, `,"finish_reason"`)])
		}
	}
	want := []string{
		`{"role":"assistant","content":""}`,
		`{"content":"a "}`,
		`{"content":"b"}`,
		`{"tool_calls":[{"index":0,"id":"call_mock_2","type":"function","function":{"name":"f","arguments":""}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}`,
		`{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}`,
		`{}`,
	}
	if strings.Join(deltas, "\n") != strings.Join(want, "\n") {
		t.Errorf("deltas:\n%s\nwant\n%s", strings.Join(deltas, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(events[len(events)-2], `"finish_reason":"tool_calls"`) || events[len(events)-1] != "[DONE]" {
		t.Errorf("stream end = %q", events[len(events)-2:])
	}

	// tool_choice none, and a malformed one.
	none := strings.Replace(body, `"required"`, `"none"`, 1)
	var cc chatCompletion
	decode(t, mustPost(t, c, s.URL()+PathChatCompletions, none, nil), 200, &cc)
	if cc.Choices[0].FinishReason != "stop" || len(cc.Choices[0].Message.ToolCalls) != 0 {
		t.Errorf("tool_choice none: %+v", cc.Choices[0])
	}
	bad := strings.Replace(body, `"required"`, `{"type":"function"}`, 1)
	checkError(t, mustPost(t, c, s.URL()+PathChatCompletions, bad, nil), 400, "tool_choice")
}
