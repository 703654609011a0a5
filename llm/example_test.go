package llm_test

import (
	"fmt"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/anthropic"
	"github.com/phasegate/phasegate/llm/openai"
)

// A Chat Completions upstream's stream, translated event by event for a
// client that speaks Anthropic Messages.
func ExampleStreamTranslator() {
	upstream := []string{
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1}}`,
		`[DONE]`,
	}
	tr := llm.NewStreamTranslator(openai.Chat{}.NewStreamDecoder(), anthropic.Codec{}.NewStreamEncoder(nil))
	var out []byte
	for _, data := range upstream {
		out, _ = tr.Translate(out, "", []byte(data))
	}
	fmt.Print(string(tr.Finish(out)))
	// Output:
	// event: message_start
	// data: {"type":"message_start","message":{"id":"chatcmpl-1","type":"message","role":"assistant","model":"gpt-4o","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}}
	//
	// event: content_block_start
	// data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}
	//
	// event: content_block_delta
	// data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}
	//
	// event: content_block_stop
	// data: {"type":"content_block_stop","index":0}
	//
	// event: message_delta
	// data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}
	//
	// event: message_stop
	// data: {"type":"message_stop"}
}

// Moderation stops a reply after the client's headers went out: the
// stream still ends the way the client's protocol wants.
func ExampleStreamTranslator_End() {
	tr := llm.NewStreamTranslator(openai.Chat{}.NewStreamDecoder(), anthropic.Codec{}.NewStreamEncoder(&llm.Request{Model: "claude-sonnet-4-5"}))
	out, _ := tr.Translate(nil, "", []byte(`{"id":"chatcmpl-2","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Step one:"}}]}`))
	out = tr.End(out, llm.StopRefusal, "")
	fmt.Print(string(out))
	// Output:
	// event: message_start
	// data: {"type":"message_start","message":{"id":"chatcmpl-2","type":"message","role":"assistant","model":"gpt-4o","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}}
	//
	// event: content_block_start
	// data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}
	//
	// event: content_block_delta
	// data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Step one:"}}
	//
	// event: content_block_stop
	// data: {"type":"content_block_stop","index":0}
	//
	// event: message_delta
	// data: {"type":"message_delta","delta":{"stop_reason":"refusal","stop_sequence":null},"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}}
	//
	// event: message_stop
	// data: {"type":"message_stop"}
}

// Translating a request: decode with the client's codec, encode with the
// provider's.
func ExampleCodec() {
	var client, provider llm.Codec = anthropic.Codec{}, openai.Chat{}
	req, err := client.DecodeRequest([]byte(`{
		"model": "claude-sonnet-4-5",
		"max_tokens": 256,
		"system": "Be brief.",
		"messages": [{"role": "user", "content": "Hi"}]
	}`))
	if err != nil {
		fmt.Println(string(client.EncodeError(err.(*llm.Error))))
		return
	}
	body, err := provider.EncodeRequest(req)
	fmt.Println(string(body), err)
	// Output:
	// {"model":"claude-sonnet-4-5","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"max_tokens":256} <nil>
}

// A prompt guard reads every text of a request, whatever its protocol.
func ExampleRequest_Texts() {
	req, _ := openai.Responses{}.DecodeRequest([]byte(`{
		"model": "gpt-4.1",
		"instructions": "Answer in French.",
		"input": [
			{"role": "user", "content": "Weather in Paris?"},
			{"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{\"city\":\"Paris\"}"},
			{"type": "function_call_output", "call_id": "c1", "output": "18C"}
		],
		"tools": [{"type": "function", "name": "weather", "description": "Current weather"}]
	}`))
	for src, text := range req.Texts() {
		fmt.Println(src, text)
	}
	// Output:
	// system Answer in French.
	// user Weather in Paris?
	// tool_arguments {"city":"Paris"}
	// tool_result 18C
	// tool_definition weather
	// tool_definition Current weather
}

func ExampleEstimateInputTokens() {
	req, _ := anthropic.Codec{}.DecodeCountTokensRequest([]byte(`{
		"model": "claude-sonnet-4-5",
		"messages": [{"role": "user", "content": "How many tokens is this sentence, roughly?"}]
	}`))
	fmt.Println(llm.EstimateInputTokens(req))
	// Output:
	// 17
}
