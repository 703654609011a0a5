package openai_test

import (
	"fmt"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/openai"
)

// Responses is spoken without server-side state: a request that refers
// to a stored response is refused, in the client's own error format.
func ExampleResponses_DecodeRequest() {
	c := openai.Responses{}
	_, err := c.DecodeRequest([]byte(`{"model":"gpt-4.1","previous_response_id":"resp_123","input":"And then?"}`))
	fmt.Println(string(c.EncodeError(err.(*llm.Error))))
	// Output:
	// {"error":{"message":"previous_response_id is not supported: the gateway keeps no server-side state; send the whole conversation in input, with store false","type":"invalid_request_error","param":"previous_response_id","code":400}}
}

// Reading a chunk stream as neutral events, as a plugin would.
func ExampleChat_NewStreamDecoder() {
	dec := openai.Chat{}.NewStreamDecoder()
	var evs []llm.Event
	for _, data := range []string{
		`{"id":"chatcmpl-1","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"weather","arguments":""}}]}}]}`,
		`{"id":"chatcmpl-1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Oslo\"}"}}]}}]}`,
		`{"id":"chatcmpl-1","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
		`[DONE]`,
	} {
		evs, _ = dec.Decode(evs[:0], "", []byte(data))
		for _, ev := range evs {
			fmt.Println(ev.String())
		}
	}
	// Output:
	// start id="chatcmpl-1" model="gpt-4o"
	// block_start 0 tool_call id="call_1" name="weather"
	// delta 0 "{\"city\":\"Oslo\"}"
	// block_stop 0
	// stop tool_calls
	// end
}
