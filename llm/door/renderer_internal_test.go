package door

import (
	"testing"

	"github.com/phasegate/phasegate/llm"
)

// An ending numbered ahead of what the client got is numbered on from the
// last sequence number the client was sent; other doors keep their bytes.
func TestEndStreamNumbersOnFromWhatWasSent(t *testing.T) {
	r := NewRenderer(llm.OpenAIResponses)
	r.Sent([]byte(`{"type":"response.created","sequence_number":0,"response":{}}`))
	r.Sent([]byte(`{"type":"response.output_text.delta","sequence_number":41,"delta":"x"}`))
	in := []byte("event: a\ndata: {\"type\":\"a\",\"sequence_number\":44,\"x\":1}\n\nevent: b\ndata: {\"type\":\"b\",\"sequence_number\":45}\n\n")
	want := "event: a\ndata: {\"type\":\"a\",\"sequence_number\":42,\"x\":1}\n\nevent: b\ndata: {\"type\":\"b\",\"sequence_number\":43}\n\n"
	if got := string(renumber(in, r.seq+1)); got != want {
		t.Errorf("renumber:\n%s\nwant\n%s", got, want)
	}
	if n, ok := seqOf([]byte(`{"sequence_number":x}`)); ok {
		t.Errorf("seqOf read %d from a value that is not a number", n)
	}
	m := NewRenderer(llm.AnthropicMessages)
	m.Sent([]byte(`{"type":"x","sequence_number":7}`))
	if m.seqKnown {
		t.Error("a Messages renderer kept a sequence number")
	}
}
