package llmtest_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/llmtest"
)

// WellFormed refuses what a client of each protocol would trip on, and
// accepts the same stream without the fault.
func TestWellFormedRefuses(t *testing.T) {
	ev := func(name, data string) string { return "event: " + name + "\ndata: " + data + "\n\n" }
	messages := func(delta string) string {
		return ev("message_start", `{"type":"message_start","message":{}}`) +
			ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`) +
			ev("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"`+delta+`"}}`) +
			ev("content_block_stop", `{"type":"content_block_stop","index":0}`) +
			ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"}}`) +
			ev("message_stop", `{"type":"message_stop"}`)
	}
	seq := func(typ string, n int, rest string) string {
		return ev(typ, `{"type":"`+typ+`","sequence_number":`+strconv.Itoa(n)+rest+`}`)
	}
	responses := func(second string) string {
		return seq("response.created", 0, `,"response":{"output":[]}`) +
			seq(second, 1, `,"response":{"output":[]}`) +
			seq("response.completed", 2, `,"response":{"output":[]}`)
	}
	for _, c := range []struct {
		p         llm.Protocol
		good, bad string
		why       string
	}{
		{llm.AnthropicMessages, messages("text_delta"), messages("input_json_delta"), "input_json_delta in a text block"},
		{llm.OpenAIResponses, responses("response.in_progress"), responses("response.created"), "response.created twice"},
	} {
		if err := llmtest.WellFormed(c.p, []byte(c.good)); err != nil {
			t.Errorf("%s: the good stream: %v", c.p, err)
		}
		if err := llmtest.WellFormed(c.p, []byte(c.bad)); err == nil || !strings.Contains(err.Error(), strings.Fields(c.why)[0]) {
			t.Errorf("%s: %s: %v", c.p, c.why, err)
		}
	}
}
