package aimoderation

import (
	"unicode/utf8"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/phases"
)

// readNeutral is readChat for a client of the Messages or Responses door:
// the prompt is the request's neutral reading (door.Read), its texts
// selected by request_roles as Chat's are.
func (p *Plugin) readNeutral(r *phases.Request, withTexts bool) (string, bool, []string, phases.Exit) {
	req, _, ex := door.Read(r)
	if ex.Exited() {
		return "", false, nil, ex
	}
	if !withTexts {
		return req.Model, req.Stream, nil, ex
	}
	return req.Model, req.Stream, p.neutralTexts(req), ex
}

// neutralTexts returns the texts of req's prompt that request_roles
// selects.
func (p *Plugin) neutralTexts(req *llm.Request) []string {
	texts := door.Definitions(nil, req)
	turns := door.Turns(req)
	from := 0
	if !p.allMessages {
		from = len(turns)
		for i := len(turns) - 1; i >= 0; i-- {
			if p.selectedRole(string(turns[i].Role)) {
				from = i
				break
			}
		}
	}
	for i := from; i < len(turns); i++ {
		if p.selectedRole(string(turns[i].Role)) {
			texts = door.MessageTexts(texts, &turns[i])
		}
	}
	return texts
}

// collectNeutral adds the texts of a response of the client's protocol
// (a whole body, or one event of a stream) to st, read with its codec.
func (p *Plugin) collectNeutral(st *state, data []byte, stream bool) {
	add := func(k textKey, s []byte) {
		t := st.textFor(k, len(p.patterns))
		if t == nil {
			return
		}
		t.buf = append(t.buf, s...)
		t.dirty = true
		if p.api != nil {
			t.pending += utf8.RuneCount(s)
		}
	}
	codec := door.Codec(st.proto)
	if !stream {
		resp, err := codec.DecodeResponse(data)
		if err != nil {
			return
		}
		for _, c := range resp.Choices {
			for i := range c.Parts {
				pt := &c.Parts[i]
				k := textKey{choice: c.Index, tool: i}
				switch pt.Kind {
				case llm.PartText:
					k.kind = openai.TextContent
					add(k, []byte(pt.Text))
				case llm.PartRefusal:
					k.kind = openai.TextRefusal
					add(k, []byte(pt.Text))
				case llm.PartToolCall:
					k.kind = openai.TextToolArguments
					add(k, []byte(pt.ToolCall.Arguments))
				}
			}
		}
		return
	}
	if st.dec == nil {
		st.dec = codec.NewStreamDecoder()
	}
	st.events, _ = st.dec.Decode(st.events[:0], "", data)
	for i := range st.events {
		ev := &st.events[i]
		switch ev.Kind {
		case llm.EventBlockStart:
			kind := openai.TextContent
			switch ev.Block {
			case llm.BlockToolCall:
				kind = openai.TextToolArguments
			case llm.BlockRefusal:
				kind = openai.TextRefusal
			}
			if ev.Index >= 0 && ev.Index < maxTexts {
				for len(st.blocks) <= ev.Index {
					st.blocks = append(st.blocks, openai.TextContent)
				}
				st.blocks[ev.Index] = kind
			}
		case llm.EventStop, llm.EventEnd, llm.EventError:
			st.stopped = true
		case llm.EventBlockDelta:
			kind := openai.TextContent
			if ev.Index >= 0 && ev.Index < len(st.blocks) {
				kind = st.blocks[ev.Index]
			}
			add(textKey{choice: ev.Choice, tool: ev.Index, kind: kind}, ev.Delta)
		}
	}
}

// neutralUsage is usage in the neutral model, or nil when unknown.
func neutralUsage(u openai.Usage) *llm.Usage {
	if !u.Known {
		return nil
	}
	return &llm.Usage{InputTokens: int64(u.PromptTokens), OutputTokens: int64(u.CompletionTokens),
		CacheReadTokens: int64(u.CachedTokens), ReasoningTokens: int64(u.ReasoningTokens)}
}
