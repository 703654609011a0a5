package door_test

import (
	"fmt"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/door"
)

// Under client_protocol auto, the request path's suffix names the door.
func ExampleByPath() {
	for _, path := range []string{"/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens", "/v1/responses", "/chat"} {
		p, count, ok := door.ByPath(path)
		fmt.Println(path, p, count, ok)
	}
	// Output:
	// /v1/chat/completions openai-chat false true
	// /v1/messages anthropic-messages false true
	// /v1/messages/count_tokens anthropic-messages true true
	// /v1/responses openai-responses false true
	// /chat  false false
}

// Every door refuses a body without a single reading.
func ExampleDecode() {
	_, err := door.Decode(llm.AnthropicMessages, []byte(`{"model":"m","max_tokens":1,"Max_Tokens":9,"messages":[]}`))
	fmt.Println(err)
	_, err = door.Decode(llm.OpenAIResponses, []byte(`{"model":"m","input":"hi","input":"bye"}`))
	fmt.Println(err)
	req, _ := door.Decode(llm.OpenAIResponses, []byte(`{"model":"m","input":"hi"}`))
	fmt.Println(req.Model, req.Messages[0].Parts[0].Text)
	// Output:
	// Max_Tokens: ambiguous key: some upstreams read it as "max_tokens"
	// input: duplicate key
	// m hi
}

// A renderer writes errors in its door's shape.
func ExampleRenderer_Error() {
	r := door.NewRenderer(llm.AnthropicMessages)
	_, body := r.Error(401, "invalid_request_error", "Missing API key")
	fmt.Println(string(body))
	// Output:
	// {"type":"error","error":{"type":"authentication_error","message":"Missing API key"}}
}
