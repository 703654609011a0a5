package llmtest_test

import (
	"fmt"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/llmtest"
)

// A Messages stream that starts twice is refused; one that opens, fills
// and closes its block and stops once is well formed.
func ExampleWellFormed() {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\n"
	rest := "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	fmt.Println(llmtest.WellFormed(llm.AnthropicMessages, []byte(start+rest)))
	fmt.Println(llmtest.WellFormed(llm.AnthropicMessages, []byte(start+start+rest)) != nil)
	// Output:
	// <nil>
	// true
}
