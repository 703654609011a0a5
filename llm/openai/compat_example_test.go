package openai_test

import (
	"encoding/json"
	"fmt"

	"github.com/phasegate/phasegate/llm/openai"
)

func ExampleParseChatRequest() {
	body := []byte(`{
		"model": "gpt-4o",
		"stream": true,
		"messages": [
			{"role": "system", "content": "Be brief."},
			{"role": "user", "content": [
				{"type": "text", "text": "What is in"},
				{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
				{"type": "text", "text": "this picture?"}
			]}
		]
	}`)
	req, err := openai.ParseChatRequest(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(req.Model, req.Stream, req.IncludeUsage)
	for _, m := range req.Messages {
		fmt.Printf("%s: %q\n", m.Role, m.Content)
	}

	_, err = openai.ParseChatRequest([]byte(`{"messages": "hi"}`))
	fmt.Println(err)

	// A body must read the same to every decoder.
	_, err = openai.ParseChatRequest([]byte(`{"messages": [], "Messages": [{"role": "user", "content": "hi"}]}`))
	fmt.Println(err)
	_, err = openai.ParseChatRequest([]byte(`{"messages": [{"role": "user", "content": "a", "content": "b"}]}`))
	fmt.Println(err)
	// Output:
	// gpt-4o true false
	// system: "Be brief."
	// user: "What is in\nthis picture?"
	// messages: must be an array
	// Messages: ambiguous key: some upstreams read it as "messages"
	// messages[0].content: duplicate key
}

func ExampleRewrite() {
	body := []byte(`{"model":"fast","stream":true,"messages":[],"seed":7}`)
	out, err := openai.Rewrite(body, map[string]any{"model": "gpt-4o-mini-2024-07-18"}, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(out))
	// Output:
	// {"stream":true,"messages":[],"seed":7,"model":"gpt-4o-mini-2024-07-18","stream_options":{"include_usage":true}}
}

func ExampleParseUsage() {
	chunk := []byte(`{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":8}}}`)
	if u, ok := openai.ParseUsage(chunk); ok {
		fmt.Printf("%+v\n", u)
	}
	_, ok := openai.ParseUsage([]byte(`{"choices":[],"usage":null}`))
	fmt.Println(ok)
	// Output:
	// {PromptTokens:12 CompletionTokens:30 TotalTokens:42 CachedTokens:8 ReasoningTokens:0 Known:true}
	// false
}

func ExampleAppendChunkDeltaText() {
	chunk := []byte(`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}},{"index":1,"delta":{"content":"lo"}}]}`)
	fmt.Printf("%q\n", openai.AppendChunkDeltaText(nil, chunk))
	// Output:
	// "Hello"
}

func ExampleEachText() {
	body := []byte(`{"object":"chat.completion","choices":[
		{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"},
		{"index":1,"message":{"role":"assistant","content":null,"tool_calls":[
			{"id":"call_1","type":"function","function":{"name":"greet","arguments":"{\"to\":\"you\"}"}}]},"finish_reason":"tool_calls"}]}`)
	_, ambiguous := openai.EachText(body, nil, func(t openai.ResponseText) {
		fmt.Printf("choice %d, %s", t.Choice, t.Kind)
		if t.Kind == openai.TextToolArguments {
			fmt.Printf(" of call %d", t.Tool)
		}
		fmt.Printf(": %s\n", t.Text)
	})
	fmt.Println("ambiguous:", ambiguous)
	// Output:
	// choice 0, content: Hi!
	// choice 1, tool_arguments of call 0: {"to":"you"}
	// ambiguous: false
}

func ExampleRefusalCompletion() {
	body := openai.RefusalCompletion("gpt-4o", "I can't help with that.", openai.Usage{PromptTokens: 9, TotalTokens: 9, Known: true})
	var c struct {
		Object  string
		Model   string
		Choices []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		}
	}
	if err := json.Unmarshal(body, &c); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Object, c.Model, c.Choices[0].Message.Role, c.Choices[0].FinishReason, c.Usage.PromptTokens)
	fmt.Println(c.Choices[0].Message.Content)
	// Output:
	// chat.completion gpt-4o assistant stop 9
	// I can't help with that.
}

func ExampleErrorBody() {
	fmt.Println(string(openai.ErrorBody("messages: must be an array", "invalid_request_error", nil)))
	fmt.Println(string(openai.ErrorBody("Rate limit reached", "requests", "rate_limit_exceeded")))
	// Output:
	// {"error":{"message":"messages: must be an array","type":"invalid_request_error","code":null}}
	// {"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}
}
