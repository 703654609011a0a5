package door_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/llm/llmtest"
	"github.com/phasegate/phasegate/llm/openai"
)

// A Responses stream translated from Chat and cut by an exit at each of
// its events in turn ends well formed: the renderer, told the rest of the
// group the cut event belongs to, sends it before the ending, whatever
// event of a group the exit lands on (the item's start, its part's
// start, the done events of its end).
func TestEndingCompletesTheCutGroup(t *testing.T) {
	chunks := []string{
		`{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}`,
		`{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"lo"}}]}`,
		`{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
	}
	req := &llm.Request{Model: "m", Stream: true}
	// The stream as the client would get it, event by event, with where
	// each event's group ends.
	tr := llm.NewStreamTranslator(openai.Chat{}.NewStreamDecoder(), door.Codec(llm.OpenAIResponses).NewStreamEncoder(req))
	var stream []byte
	var groupEnds []int
	for _, c := range chunks {
		stream, _ = tr.Translate(stream, "", []byte(c))
		groupEnds = append(groupEnds, tr.Groups()...) // lengths of stream: offsets in it
	}
	events := splitEvents(stream)
	if len(events) < 8 {
		t.Fatalf("only %d events", len(events))
	}
	for _, refusal := range []bool{false, true} {
		for cut := 1; cut < len(events); cut++ {
			r := door.NewRenderer(llm.OpenAIResponses)
			shadow := llm.NewStreamTranslator(door.Codec(llm.OpenAIResponses).NewStreamDecoder(), door.Codec(llm.OpenAIResponses).NewStreamEncoder(req))
			r.Follow(shadow)
			var sent []byte
			for _, ev := range events[:cut] {
				sent = append(sent, ev.raw...)
				_, _ = shadow.Translate(nil, "", ev.data)
				r.Sent(ev.data)
			}
			r.Pending(restOfGroup(stream, groupEnds, len(sent)))
			var body []byte
			if refusal {
				_, body = r.Error(200, door.TypeRefusal, "Stopped.")
			} else {
				_, body = r.Error(400, "invalid_request_error", "cut")
			}
			out := append(sent, r.EndStream(body)...)
			if err := llmtest.WellFormed(llm.OpenAIResponses, out); err != nil {
				t.Fatalf("cut before event %d (%s), refusal %v: %v\n%s", cut, events[cut].name(), refusal, err, out)
			}
		}
	}
}

type event struct{ raw, data []byte }

func (e event) name() string {
	_, after, _ := strings.Cut(string(e.raw), "event: ")
	name, _, _ := strings.Cut(after, "\n")
	return name
}

func splitEvents(b []byte) []event {
	var out []event
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\n\n"))
		raw := b[:i+2]
		b = b[i+2:]
		_, data, _ := bytes.Cut(raw, []byte("data: "))
		data, _, _ = bytes.Cut(data, []byte("\n"))
		out = append(out, event{raw, data})
	}
	return out
}

// restOfGroup is the stream from start to the end of its group, or nil
// when start begins a group: what the stream body tells the renderer.
func restOfGroup(stream []byte, ends []int, start int) []byte {
	for _, end := range ends {
		if end == start {
			return nil
		}
		if end > start {
			return stream[start:end]
		}
	}
	return nil
}
