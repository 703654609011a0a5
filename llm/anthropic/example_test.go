package anthropic_test

import (
	"fmt"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/anthropic"
)

// A request from a Chat client, sent on to Messages: the system message
// moves to "system", the tool call id is made to fit Messages' pattern,
// and max_tokens, which Messages requires, gets a default.
func ExampleCodec_EncodeRequest() {
	req := &llm.Request{
		Model: "claude-sonnet-4-5",
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Parts: []llm.Part{{Kind: llm.PartText, Text: "Be brief."}}},
			{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: "Weather in Oslo?"}}},
			{Role: llm.RoleAssistant, Parts: []llm.Part{{Kind: llm.PartToolCall, ToolCall: llm.ToolCall{ID: "functions.weather:0", Name: "weather", Arguments: `{"city": "Oslo"}`}}}},
			{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartToolResult, ToolResult: llm.ToolResult{ToolCallID: "functions.weather:0", Content: []llm.Part{{Kind: llm.PartText, Text: "-3C"}}}}}},
		},
	}
	body, err := anthropic.Codec{}.EncodeRequest(req)
	fmt.Println(string(body), err)
	// Output:
	// {"model":"claude-sonnet-4-5","max_tokens":4096,"system":"Be brief.","messages":[{"role":"user","content":[{"type":"text","text":"Weather in Oslo?"}]},{"role":"assistant","content":[{"type":"tool_use","id":"functions_weather_0","name":"weather","input":{"city":"Oslo"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"functions_weather_0","content":[{"type":"text","text":"-3C"}]}]}]} <nil>
}

// Any error, whatever its source, in the body Messages clients expect;
// the type follows from the status.
func ExampleCodec_EncodeError() {
	fmt.Println(string(anthropic.Codec{}.EncodeError(&llm.Error{Status: 429, Message: "slow down"})))
	// Output:
	// {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}
}

// Answering POST /v1/messages/count_tokens when the provider cannot.
func ExampleEncodeCountTokensResponse() {
	c := anthropic.Codec{}
	req, err := c.DecodeCountTokensRequest([]byte(`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hello, Claude"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(anthropic.EncodeCountTokensResponse(llm.EstimateInputTokens(req))))
	// Output:
	// {"input_tokens":10}
}
