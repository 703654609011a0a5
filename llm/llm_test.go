package llm_test

import (
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/llmtest"
	"github.com/phasegate/phasegate/llm/openai"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEstimateInputTokens(t *testing.T) {
	text := func(s string) []llm.Part { return []llm.Part{{Kind: llm.PartText, Text: s}} }
	for _, tc := range []struct {
		name string
		req  llm.Request
		want int64
	}{
		// 3 for the reply, 3 for the message, 40 ASCII characters / 4.
		{"ascii", llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Parts: text(strings.Repeat("abcd", 10))}}}, 3 + 3 + 10},
		// Ideographs count one each, other non-ASCII letters a half.
		{"cjk and accents", llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Parts: text("日本語ééé")}}}, 3 + 3 + 3 + 2},
		{"image", llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartImage}}}}}, 3 + 3 + 1600},
		{"system", llm.Request{System: text("abcdabcd")}, 3 + 2},
		// A tool adds the tool-use prompt, its framing and its text.
		{"tool", llm.Request{Tools: []llm.Tool{{Name: "abcd", Description: "abcd", Parameters: []byte(`{"a":1}`)}}}, 3 + 346 + 10 + 4},
		{"tool result", llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartToolResult, ToolResult: llm.ToolResult{Content: text("abcd")}}}}}}, 3 + 3 + 1},
	} {
		if got := llm.EstimateInputTokens(&tc.req); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestTranslatorStopsAtAnUnreadableUpstream: the client's stream ends
// with an error once, and what the upstream sends later is ignored.
func TestTranslatorStopsAtAnUnreadableUpstream(t *testing.T) {
	tr := llm.NewStreamTranslator(openai.Chat{}.NewStreamDecoder(), openai.Responses{Now: now}.NewStreamEncoder(nil))
	out, err := tr.Translate(nil, "", []byte(`{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err = tr.Translate(out, "", []byte(`<html>`))
	if err == nil || !tr.Done() {
		t.Fatalf("err %v, done %v: want an error and the end", err, tr.Done())
	}
	if err := llmtest.WellFormed(llm.OpenAIResponses, out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"status":"failed"`) || !strings.Contains(string(out), "could not be translated") {
		t.Errorf("no failed response in\n%s", out)
	}
	more, err := tr.Translate(nil, "", []byte(`{"id":"c","choices":[{"index":0,"delta":{"content":"more"}}]}`))
	if err != nil || len(more) > 0 || len(tr.Events()) > 0 {
		t.Errorf("after the end: %q, %v, %v", more, err, tr.Events())
	}
	if end := tr.Finish(nil); len(end) > 0 {
		t.Errorf("Finish after the end wrote %q", end)
	}
}

// TestEndAddsTheGatewaysMessage: End closes the open block and adds the
// message as a block of its own before the stop.
func TestEndAddsTheGatewaysMessage(t *testing.T) {
	tr := llm.NewStreamTranslator(openai.Chat{}.NewStreamDecoder(), openai.Chat{Now: now}.NewStreamEncoder(&llm.Request{IncludeUsage: true}))
	out, _ := tr.Translate(nil, "", []byte(`{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Step 1:"}}]}`))
	out = tr.End(out, llm.StopRefusal, "Stopped by moderation.")
	if err := llmtest.WellFormed(llm.OpenAIChat, out); err != nil {
		t.Fatal(err)
	}
	s := string(out)
	i, j := strings.Index(s, `"content":"Step 1:"`), strings.Index(s, `"content":"Stopped by moderation."`)
	k := strings.Index(s, `"finish_reason":"content_filter"`)
	if i < 0 || j < i || k < j {
		t.Errorf("want the reply, then the message, then the finish; got\n%s", s)
	}
}

// TestEndClosesBeforeItsMessage: on the protocols with blocks, End closes
// the block the reply left open before the message's block opens, so
// that Messages never has two blocks open and Responses lists its output
// in the order the items were added.
func TestEndClosesBeforeItsMessage(t *testing.T) {
	const chunk = `{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"Step 1:"}}]}`
	for p, want := range map[llm.Protocol][]string{
		llm.AnthropicMessages: {
			`"content_block_start","index":0`, `"content_block_stop","index":0`,
			`"content_block_start","index":1`, `"content_block_stop","index":1`, `"stop_reason":"refusal"`,
		},
		llm.OpenAIResponses: {
			`"response.output_item.added","sequence_number":2,"output_index":0`, `"response.output_item.done","sequence_number":7,"output_index":0`,
			`"response.output_item.added","sequence_number":8,"output_index":1`, `"response.output_item.done","sequence_number":13,"output_index":1`,
			// The final output: the reply's item, then the message's.
			`"output":[{"id":"msg_c_0"`, `"Step 1:"`, `{"id":"msg_c_1"`, `"Stopped by moderation."`,
		},
	} {
		tr := llm.NewStreamTranslator(openai.Chat{}.NewStreamDecoder(), codecs[p].NewStreamEncoder(goldenRequest))
		out, _ := tr.Translate(nil, "", []byte(chunk))
		out = tr.End(out, llm.StopRefusal, "Stopped by moderation.")
		if err := llmtest.WellFormed(p, out); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		s, at := string(out), 0
		for _, w := range want {
			i := strings.Index(s[at:], w)
			if i < 0 {
				t.Fatalf("%s: no %s after byte %d of\n%s", p, w, at, s)
			}
			at += i + len(w)
		}
	}
}

func TestStopReasonNames(t *testing.T) {
	for s := llm.StopUnknown; s <= llm.StopPause+1; s++ {
		if s.String() == "" {
			t.Errorf("StopReason(%d) has no name", s)
		}
	}
	if llm.StopToolCalls.String() != "tool_calls" {
		t.Errorf("StopToolCalls is %q", llm.StopToolCalls)
	}
}

// TestResponsesOutputInOutputIndexOrder: parallel tool calls that finish
// out of order are listed in the final response by output index, the
// order their items were added in.
func TestResponsesOutputInOutputIndexOrder(t *testing.T) {
	enc := openai.Responses{Now: now}.NewStreamEncoder(goldenRequest)
	events := []llm.Event{
		{Kind: llm.EventStart, ID: "r", Model: "m"},
		{Kind: llm.EventBlockStart, Index: 0, Block: llm.BlockToolCall, ID: "call_a", Name: "a"},
		{Kind: llm.EventBlockStart, Index: 1, Block: llm.BlockToolCall, ID: "call_b", Name: "b"},
		{Kind: llm.EventBlockStart, Index: 2, Block: llm.BlockText},
		{Kind: llm.EventBlockDelta, Index: 1, Delta: []byte(`{"y":2}`)},
		{Kind: llm.EventBlockDelta, Index: 0, Delta: []byte(`{"x":1}`)},
		{Kind: llm.EventBlockDelta, Index: 2, Delta: []byte(`done`)},
		{Kind: llm.EventBlockStop, Index: 2},
		{Kind: llm.EventBlockStop, Index: 1},
		{Kind: llm.EventBlockStop, Index: 0},
		{Kind: llm.EventStop, Stop: llm.StopToolCalls},
		{Kind: llm.EventEnd},
	}
	var out []byte
	for i := range events {
		out = enc.Encode(out, &events[i])
	}
	if err := llmtest.WellFormed(llm.OpenAIResponses, out); err != nil {
		t.Fatalf("%v in\n%s", err, out)
	}
	s := string(out)
	final := s[strings.LastIndex(s, `"output":[`):]
	a, b, text := strings.Index(final, `"call_id":"call_a"`), strings.Index(final, `"call_id":"call_b"`), strings.Index(final, `"text":"done"`)
	if a < 0 || b < a || text < b {
		t.Fatalf("final output not in output index order (call_a, call_b, text):\n%s", final)
	}
}
