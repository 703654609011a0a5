package llm_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/phasegate/phasegate/llm"
)

// pairs lists every ordered pair of protocols.
func pairs() [][2]llm.Protocol {
	var out [][2]llm.Protocol
	for _, a := range llm.Protocols() {
		for _, b := range llm.Protocols() {
			if a != b {
				out = append(out, [2]llm.Protocol{a, b})
			}
		}
	}
	return out
}

// BenchmarkRequest translates the tool round trip request of each
// protocol (a system prompt, an image, tool calls and results, a tool
// definition) into each other protocol: decode plus encode.
func BenchmarkRequest(b *testing.B) {
	for _, pair := range pairs() {
		from, to := pair[0], pair[1]
		body, err := os.ReadFile(filepath.Join(protocolsDir, "requests", requestCase[from], "in."+string(from)+".json"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(from)+"-to-"+string(to), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req, err := codecs[from].DecodeRequest(body)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := codecs[to].EncodeRequest(req); err != nil && to != llm.OpenAIResponses {
					b.Fatal(err)
				}
			}
		})
	}
}

var requestCase = map[llm.Protocol]string{
	llm.OpenAIChat:        "chat-tool-round-trip",
	llm.AnthropicMessages: "anthropic-tool-round-trip",
	llm.OpenAIResponses:   "responses-tool-round-trip",
}

// benchStream is a typical reply as each protocol streams it: 120 text
// deltas of a few words, then a tool call whose arguments come in 20
// deltas, a stop and usage.
func benchStream(b fataler, p llm.Protocol) []sseEvent {
	evs := []llm.Event{{Kind: llm.EventStart, ID: "msg_bench", Model: "bench-model", Created: 1}, {Kind: llm.EventBlockStart, Index: 0, Block: llm.BlockText}}
	for i := range 120 {
		evs = append(evs, llm.Event{Kind: llm.EventBlockDelta, Index: 0, Delta: []byte(" token " + strconv.Itoa(i) + ",")})
	}
	evs = append(evs, llm.Event{Kind: llm.EventBlockStop, Index: 0}, llm.Event{Kind: llm.EventBlockStart, Index: 1, Block: llm.BlockToolCall, ID: "call_1", Name: "search"})
	for i := range 20 {
		evs = append(evs, llm.Event{Kind: llm.EventBlockDelta, Index: 1, Delta: []byte(`{"q\"` + strconv.Itoa(i) + `":`)})
	}
	evs = append(evs, llm.Event{Kind: llm.EventBlockStop, Index: 1}, llm.Event{Kind: llm.EventStop, Stop: llm.StopToolCalls},
		llm.Event{Kind: llm.EventUsage, Usage: llm.Usage{InputTokens: 1200, OutputTokens: 300, CacheReadTokens: 1000}}, llm.Event{Kind: llm.EventEnd})
	enc := codecs[p].NewStreamEncoder(goldenRequest)
	var wire []byte
	for i := range evs {
		wire = enc.Encode(wire, &evs[i])
	}
	var out []sseEvent
	forEachEvent(b, wire, func(name string, data []byte) {
		out = append(out, sseEvent{name, append([]byte(nil), data...)})
	})
	return out
}

type sseEvent struct {
	name string
	data []byte
}

// BenchmarkStreamEvent translates upstream events from one protocol to
// another; an op is one upstream event, the translator's set-up shared by
// the events of a stream.
func BenchmarkStreamEvent(b *testing.B) {
	for _, pair := range pairs() {
		from, to := pair[0], pair[1]
		stream := benchStream(b, from)
		b.Run(string(from)+"-to-"+string(to), func(b *testing.B) {
			b.ReportAllocs()
			out := make([]byte, 0, 64<<10)
			var tr *llm.StreamTranslator
			i := len(stream)
			for b.Loop() {
				if i == len(stream) {
					tr = llm.NewStreamTranslator(codecs[from].NewStreamDecoder(), codecs[to].NewStreamEncoder(goldenRequest))
					out, i = out[:0], 0
				}
				var err error
				if out, err = tr.Translate(out, stream[i].name, stream[i].data); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkStreamDecode reads upstream events into neutral events only, as
// when client and provider speak one protocol and plugins read the
// stream; an op is one event.
func BenchmarkStreamDecode(b *testing.B) {
	for _, p := range llm.Protocols() {
		stream := benchStream(b, p)
		b.Run(string(p), func(b *testing.B) {
			b.ReportAllocs()
			var dec llm.StreamDecoder
			evs := make([]llm.Event, 0, 8)
			i := len(stream)
			for b.Loop() {
				if i == len(stream) {
					dec, i = codecs[p].NewStreamDecoder(), 0
				}
				var err error
				if evs, err = dec.Decode(evs[:0], stream[i].name, stream[i].data); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// TestStreamEventsAllocateNothing: once a stream is under way, translating
// a text delta allocates nothing, for every pair of protocols.
func TestStreamEventsAllocateNothing(t *testing.T) {
	for _, pair := range pairs() {
		from, to := pair[0], pair[1]
		stream := benchStream(t, from)
		tr := llm.NewStreamTranslator(codecs[from].NewStreamDecoder(), codecs[to].NewStreamEncoder(goldenRequest))
		out := make([]byte, 0, 64<<10)
		// Up to and including the first text delta: the reply and its
		// first block are open.
		delta := -1
		for i, ev := range stream {
			out, _ = tr.Translate(out, ev.name, ev.data)
			if evs := tr.Events(); len(evs) > 0 && evs[len(evs)-1].Kind == llm.EventBlockDelta {
				delta = i
				break
			}
		}
		if delta < 0 {
			t.Fatalf("%s: no text delta", from)
		}
		ev := stream[delta]
		if n := testing.AllocsPerRun(200, func() { out, _ = tr.Translate(out[:0], ev.name, ev.data) }); n != 0 {
			t.Errorf("%s to %s: %v allocations per text delta", from, to, n)
		}
	}
}
