package openai

import (
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

// finishReason names a stop reason as Chat's finish_reason.
func finishReason(s llm.StopReason) string {
	switch s {
	case llm.StopMaxTokens:
		return "length"
	case llm.StopToolCalls:
		return "tool_calls"
	case llm.StopRefusal:
		return "content_filter"
	}
	return "stop"
}

// stopOf reads Chat's finish_reason.
func stopOf(s []byte) llm.StopReason {
	switch string(s) {
	case "stop":
		return llm.StopEnd
	case "length":
		return llm.StopMaxTokens
	case "tool_calls", "function_call":
		return llm.StopToolCalls
	case "content_filter":
		return llm.StopRefusal
	}
	return llm.StopUnknown
}

// usageNames names the members of a usage object, which Chat and
// Responses name differently; their details have the same members.
type usageNames struct{ input, output, inputDetails, outputDetails string }

var (
	chatUsage      = usageNames{"prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"}
	responsesUsage = usageNames{"input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"}
)

// read reads a usage object; ok is false if raw is not one.
func (n *usageNames) read(raw []byte) (u llm.Usage, ok bool) {
	o, ok := wire.ObjectOf(raw)
	if !ok {
		return u, false
	}
	var g [4][]byte
	wire.Collect(&o, []string{n.input, n.output, n.inputDetails, n.outputDetails}, g[:])
	u.InputTokens, _ = wire.Int(g[0])
	u.OutputTokens, _ = wire.Int(g[1])
	if d, ok := wire.ObjectOf(g[2]); ok {
		var h [2][]byte
		wire.Collect(&d, []string{"cached_tokens", "cache_write_tokens"}, h[:])
		u.CacheReadTokens, _ = wire.Int(h[0])
		u.CacheWriteTokens, _ = wire.Int(h[1])
	}
	if d, ok := wire.ObjectOf(g[3]); ok {
		var h [1][]byte
		wire.Collect(&d, []string{"reasoning_tokens"}, h[:])
		u.ReasoningTokens, _ = wire.Int(h[0])
	}
	return u, true
}

// append writes u as a usage object; cache writes only when there are
// some, as the providers do.
func (n *usageNames) append(b []byte, u *llm.Usage) []byte {
	member := func(name string) {
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
	}
	b = append(b, '{')
	member(n.input)
	b = wire.AppendInt(b, u.InputTokens)
	b = append(b, ',')
	member(n.output)
	b = wire.AppendInt(b, u.OutputTokens)
	b = append(b, `,"total_tokens":`...)
	b = wire.AppendInt(b, u.TotalTokens())
	b = append(b, ',')
	member(n.inputDetails)
	b = append(b, `{"cached_tokens":`...)
	b = wire.AppendInt(b, u.CacheReadTokens)
	if u.CacheWriteTokens > 0 {
		b = append(b, `,"cache_write_tokens":`...)
		b = wire.AppendInt(b, u.CacheWriteTokens)
	}
	b = append(b, `},`...)
	member(n.outputDetails)
	b = append(b, `{"reasoning_tokens":`...)
	b = wire.AppendInt(b, u.ReasoningTokens)
	return append(b, `}}`...)
}

// DecodeResponse reads a chat.completion body.
func (Chat) DecodeResponse(body []byte) (*llm.Response, error) {
	var f [5][]byte
	if err := wire.Top(body, []string{"id", "model", "created", "choices", "usage"}, f[:]); err != nil {
		return nil, wire.BodyError(err)
	}
	r := &llm.Response{}
	if err := wire.DecodeReplyHead(f[0], f[1], f[2], r); err != nil {
		return nil, err
	}
	root := wire.Root
	cp := root.Key("choices")
	a, err := wire.MustArray(f[3], cp)
	if err != nil {
		return nil, err
	}
	for i := 0; ; i++ {
		v, ok := a.Next()
		if !ok {
			break
		}
		ip := cp.Index(i)
		o, err := wire.MustObject(v, ip)
		if err != nil {
			return nil, err
		}
		var g [3][]byte
		wire.Collect(&o, []string{"index", "message", "finish_reason"}, g[:])
		ch := llm.Choice{Index: i}
		if n, ok := wire.Int(g[0]); ok {
			ch.Index = int(n)
		}
		if s, ok := wire.Str(g[2], nil); ok {
			ch.Stop = stopOf(s)
		}
		mp := ip.Key("message")
		mo, err := wire.MustObject(g[1], mp)
		if err != nil {
			return nil, err
		}
		var h [3][]byte
		wire.Collect(&mo, []string{"content", "refusal", "tool_calls"}, h[:])
		if ch.Parts, err = decodeChatContent(h[0], mp.Key("content")); err != nil {
			return nil, err
		}
		var refusal string
		if err := wire.DecodeString(h[1], mp.Key("refusal"), &refusal); err != nil {
			return nil, err
		}
		if refusal != "" {
			ch.Parts = append(ch.Parts, llm.Part{Kind: llm.PartRefusal, Text: refusal})
		}
		if ch.Parts, err = decodeToolCalls(h[2], mp.Key("tool_calls"), ch.Parts); err != nil {
			return nil, err
		}
		r.Choices = append(r.Choices, ch)
	}
	if u, ok := chatUsage.read(f[4]); ok {
		r.Usage = &u
	}
	return r, nil
}

// EncodeResponse writes r as a chat.completion body.
func (c Chat) EncodeResponse(r *llm.Response, req *llm.Request) []byte {
	b := make([]byte, 0, 512)
	b = append(b, `{"id":`...)
	b = wire.AppendString(b, r.ID)
	b = append(b, `,"object":"chat.completion","created":`...)
	created := r.Created
	if created == 0 {
		created = clock(c.Now).Unix()
	}
	b = wire.AppendInt(b, created)
	b = append(b, `,"model":`...)
	b = wire.AppendString(b, wire.ReplyModel(r.Model, req))
	b = append(b, `,"choices":[`...)
	for i := range r.Choices {
		ch := &r.Choices[i]
		if i > 0 {
			b = append(b, ',')
		}
		var m chatMessage
		for j := range ch.Parts {
			switch p := &ch.Parts[j]; p.Kind {
			case llm.PartText:
				m.texts = append(m.texts, p)
			case llm.PartRefusal:
				m.refusal += p.Text
			case llm.PartToolCall:
				m.calls = append(m.calls, &p.ToolCall)
			}
		}
		b = append(b, `{"index":`...)
		b = wire.AppendInt(b, ch.Index)
		b = append(b, `,"message":{"role":"assistant","content":`...)
		if len(m.texts) == 0 {
			b = append(b, "null"...)
		} else {
			b = wire.AppendString(b, joinTexts(m.texts))
		}
		b = append(b, `,"refusal":`...)
		if m.refusal != "" {
			b = wire.AppendString(b, m.refusal)
		} else {
			b = append(b, "null"...)
		}
		b = appendToolCalls(b, m.calls)
		b = append(b, `},"logprobs":null,"finish_reason":"`...)
		b = append(b, finishReason(ch.Stop)...)
		b = append(b, `"}`...)
	}
	b = append(b, ']')
	if r.Usage != nil {
		b = append(b, `,"usage":`...)
		b = chatUsage.append(b, r.Usage)
	}
	return append(b, '}')
}

// joinTexts joins the texts of a reply; a reply's text parts are one text
// in Chat.
func joinTexts(parts []*llm.Part) string {
	if len(parts) == 1 {
		return parts[0].Text
	}
	var n int
	for _, p := range parts {
		n += len(p.Text)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p.Text...)
	}
	return string(b)
}
