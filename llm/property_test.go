package llm_test

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/llmtest"
)

// genStream draws a valid neutral stream that every protocol can carry:
// a start, blocks one after the other (text and refusal blocks hold at
// least one delta, and two blocks of the same text kind are never
// adjacent, since Chat would join them), pings anywhere, then a stop,
// usage and the end, or an error at any point.
func genStream(t *rapid.T) []llm.Event {
	text := rapid.StringMatching(`[\p{L}\p{N}\p{P}\p{S} \n\t"\\]{1,12}`)
	evs := []llm.Event{{
		Kind: llm.EventStart, ID: rapid.StringMatching(`[a-zA-Z0-9_-]{1,20}`).Draw(t, "id"),
		Model: text.Draw(t, "model"), Created: rapid.Int64Range(1, 1<<40).Draw(t, "created"),
	}}
	ping := func() {
		if rapid.IntRange(0, 5).Draw(t, "ping") == 0 {
			evs = append(evs, llm.Event{Kind: llm.EventPing})
		}
	}
	fail := func() bool {
		if rapid.IntRange(0, 12).Draw(t, "fail") != 0 {
			return false
		}
		status := rapid.SampledFrom([]int{400, 401, 403, 404, 429, 500, 529}).Draw(t, "status")
		evs = append(evs, llm.Event{Kind: llm.EventError, Err: &llm.Error{Status: status, Message: text.Draw(t, "message")}})
		return true
	}
	var last llm.BlockKind
	tools := false
	for i, n := 0, rapid.IntRange(0, 5).Draw(t, "blocks"); i < n; i++ {
		kind := rapid.SampledFrom([]llm.BlockKind{llm.BlockText, llm.BlockRefusal, llm.BlockToolCall}).Draw(t, "kind")
		if kind == last && kind != llm.BlockToolCall {
			kind = llm.BlockToolCall
		}
		last = kind
		start := llm.Event{Kind: llm.EventBlockStart, Index: i, Block: kind}
		deltas := rapid.IntRange(1, 4).Draw(t, "deltas")
		if kind == llm.BlockToolCall {
			tools = true
			start.ID = rapid.StringMatching(`call_[a-zA-Z0-9]{1,8}`).Draw(t, "call id")
			start.Name = rapid.StringMatching(`[a-z_]{1,10}`).Draw(t, "name")
			deltas--
		}
		evs = append(evs, start)
		for range deltas {
			ping()
			evs = append(evs, llm.Event{Kind: llm.EventBlockDelta, Index: i, Delta: []byte(text.Draw(t, "delta"))})
			if fail() {
				return evs
			}
		}
		evs = append(evs, llm.Event{Kind: llm.EventBlockStop, Index: i})
		ping()
	}
	if fail() {
		return evs
	}
	stop := rapid.SampledFrom([]llm.StopReason{llm.StopEnd, llm.StopSequence, llm.StopMaxTokens, llm.StopRefusal, llm.StopPause}).Draw(t, "stop")
	if tools {
		stop = rapid.SampledFrom([]llm.StopReason{llm.StopToolCalls, llm.StopMaxTokens}).Draw(t, "tool stop")
	}
	ev := llm.Event{Kind: llm.EventStop, Stop: stop}
	if stop == llm.StopSequence {
		ev.StopSequence = text.Draw(t, "stop sequence")
	}
	evs = append(evs, ev)
	if rapid.Bool().Draw(t, "usage") {
		u := llm.Usage{CacheReadTokens: rapid.Int64Range(0, 1e6).Draw(t, "cache read"), CacheWriteTokens: rapid.Int64Range(0, 1e6).Draw(t, "cache write")}
		u.InputTokens = u.CacheReadTokens + u.CacheWriteTokens + rapid.Int64Range(0, 1e6).Draw(t, "input")
		u.OutputTokens = rapid.Int64Range(0, 1e6).Draw(t, "output")
		u.ReasoningTokens = rapid.Int64Range(0, u.OutputTokens).Draw(t, "reasoning")
		evs = append(evs, llm.Event{Kind: llm.EventUsage, Usage: u})
	}
	return append(evs, llm.Event{Kind: llm.EventEnd})
}

// render renders a stream for comparison: blocks in the order they
// start, each with its deltas, then the stop reason, usage and how it
// ended. Block stops and where pings fall are left out (Chat closes tool
// calls only at the finish and opens text blocks at their first delta);
// the number of pings is kept. With p set, it renders what protocol p can
// carry of the stream instead.
func render(p llm.Protocol, evs []llm.Event) string {
	var b strings.Builder
	blocks := map[int]int{} // neutral index -> position
	var lines [][]string
	var stop *llm.Event
	var usage *llm.Usage
	pings := 0
	tools := false
	var tail string
	for i := range evs {
		ev := &evs[i]
		switch ev.Kind {
		case llm.EventStart:
			created := ev.Created
			if p == llm.AnthropicMessages {
				created = 0
			}
			fmt.Fprintf(&b, "start %q %q %d\n", ev.ID, ev.Model, created)
		case llm.EventBlockStart:
			kind := ev.Block
			if kind == llm.BlockRefusal && p == llm.AnthropicMessages {
				kind = llm.BlockText
			}
			tools = tools || kind == llm.BlockToolCall
			blocks[ev.Index] = len(lines)
			lines = append(lines, []string{fmt.Sprintf("block %s %q %q", kind, ev.ID, ev.Name)})
		case llm.EventBlockDelta:
			k := blocks[ev.Index]
			lines[k] = append(lines[k], fmt.Sprintf("  %q", ev.Delta))
		case llm.EventStop:
			stop = ev
		case llm.EventUsage:
			u := ev.Usage
			usage = &u
		case llm.EventPing:
			pings++
		case llm.EventEnd:
			tail = "end"
		case llm.EventError:
			status := ev.Err.Status
			if p == llm.OpenAIResponses && status != 429 {
				status = 500
			}
			tail = fmt.Sprintf("error %d %q", status, ev.Err.Message)
		}
	}
	for _, l := range lines {
		b.WriteString(strings.Join(l, "\n") + "\n")
	}
	if tail == "end" {
		s, seq := llm.StopUnknown, ""
		if stop != nil {
			s, seq = stop.Stop, stop.StopSequence
		}
		switch p {
		case llm.OpenAIChat:
			if s == llm.StopSequence || s == llm.StopPause {
				s = llm.StopEnd
			}
			seq = ""
		case llm.OpenAIResponses:
			if s != llm.StopMaxTokens && s != llm.StopRefusal {
				s = llm.StopEnd
				if tools {
					s = llm.StopToolCalls
				}
			}
			seq = ""
		}
		fmt.Fprintf(&b, "stop %s %q\n", s, seq)
		if usage == nil && p == llm.AnthropicMessages {
			usage = &llm.Usage{}
		}
		if usage != nil {
			u := *usage
			if p == llm.AnthropicMessages {
				u.ReasoningTokens = 0
			}
			fmt.Fprintf(&b, "usage %+v\n", u)
		}
	}
	fmt.Fprintf(&b, "pings %d\n%s\n", pings, tail)
	return b.String()
}

// TestPropertyStreamRoundTrip: a valid neutral stream encoded in a
// protocol and decoded back gives the same events, as far as the protocol
// can carry them.
func TestPropertyStreamRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		evs := genStream(t)
		for _, p := range llm.Protocols() {
			enc := codecs[p].NewStreamEncoder(goldenRequest)
			var wire []byte
			for i := range evs {
				wire = enc.Encode(wire, &evs[i])
			}
			if err := llmtest.WellFormed(p, wire); err != nil {
				t.Fatalf("%s: %v\n%s", p, err, wire)
			}
			dec := codecs[p].NewStreamDecoder()
			var back, evs2 []llm.Event
			forEachEvent(t, wire, func(name string, data []byte) {
				var err error
				evs2, err = dec.Decode(evs2[:0], name, data)
				if err != nil {
					t.Fatalf("%s: decoding %s: %v", p, data, err)
				}
				for _, ev := range evs2 {
					ev.Delta = append([]byte(nil), ev.Delta...)
					back = append(back, ev)
				}
			})
			if want, got := render(p, evs), render("", back); got != want {
				t.Fatalf("%s: decoded\n%s\nwant\n%s\nwire:\n%s", p, got, want, wire)
			}
		}
	})
}

// genAnyEvents draws any sequence of events, sensible or not.
func genAnyEvents(t *rapid.T) []llm.Event {
	var evs []llm.Event
	for i, n := 0, rapid.IntRange(0, 30).Draw(t, "events"); i < n; i++ {
		ev := llm.Event{
			Kind:  llm.EventKind(rapid.IntRange(1, 9).Draw(t, "kind")),
			Index: rapid.IntRange(0, 4).Draw(t, "index"),
			Block: llm.BlockKind(rapid.IntRange(0, 4).Draw(t, "block")),
			ID:    rapid.StringMatching(`[a-z]{0,3}`).Draw(t, "id"),
			Name:  rapid.StringMatching(`[a-z]{0,3}`).Draw(t, "name"),
			Delta: []byte(rapid.String().Draw(t, "delta")),
			Stop:  llm.StopReason(rapid.IntRange(0, 7).Draw(t, "stop")),
		}
		if rapid.IntRange(0, 9).Draw(t, "other choice") == 0 {
			ev.Choice = 1
		}
		if ev.Kind == llm.EventError && rapid.Bool().Draw(t, "with error") {
			ev.Err = &llm.Error{Status: rapid.IntRange(0, 600).Draw(t, "status"), Message: rapid.String().Draw(t, "message")}
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestPropertyEncodersAlwaysEndWellFormed: whatever events an encoder
// gets, in whatever order, what it writes up to its end, or up to the end
// a StreamTranslator adds, is a well-formed stream with exactly one
// terminal event and every block it opened closed.
func TestPropertyEncodersAlwaysEndWellFormed(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		evs := genAnyEvents(t)
		for _, p := range llm.Protocols() {
			for _, ending := range []string{"finish", "refuse", "fail"} {
				enc := codecs[p].NewStreamEncoder(goldenRequest)
				tr := llm.NewStreamTranslator(replay(evs), enc)
				var out []byte
				out, _ = tr.Translate(out, "", []byte("x"))
				switch ending {
				case "finish":
					out = tr.Finish(out)
				case "refuse":
					out = tr.End(out, llm.StopRefusal, "The reply was stopped by moderation.")
				case "fail":
					out = tr.Fail(out, &llm.Error{Status: 502, Message: "upstream gone"})
				}
				if !tr.Done() {
					t.Fatalf("%s: not done after %s", p, ending)
				}
				if err := llmtest.WellFormed(p, out); err != nil {
					t.Fatalf("%s, %s: %v\n%s", p, ending, err, out)
				}
				if again := tr.Finish(nil); len(again) > 0 {
					t.Fatalf("%s: wrote %q after the end", p, again)
				}
			}
		}
	})
}

// replay is a decoder that hands out fixed events on its first call.
type replayDecoder struct {
	evs  []llm.Event
	done bool
}

func replay(evs []llm.Event) *replayDecoder { return &replayDecoder{evs: evs} }

func (r *replayDecoder) Decode(dst []llm.Event, _ string, _ []byte) ([]llm.Event, error) {
	if r.done {
		return dst, nil
	}
	r.done = true
	return append(dst, r.evs...), nil
}
