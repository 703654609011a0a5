package anthropic

import (
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

// The stop reasons of Messages, by neutral reason.
var stopReasons = [...]string{
	llm.StopUnknown:   "end_turn",
	llm.StopEnd:       "end_turn",
	llm.StopSequence:  "stop_sequence",
	llm.StopMaxTokens: "max_tokens",
	llm.StopToolCalls: "tool_use",
	llm.StopRefusal:   "refusal",
	llm.StopPause:     "pause_turn",
}

func stopReasonName(s llm.StopReason) string {
	if int(s) < len(stopReasons) {
		return stopReasons[s]
	}
	return "end_turn"
}

// stopReason reads a Messages stop reason.
func stopReason(s []byte) llm.StopReason {
	switch string(s) {
	case "end_turn":
		return llm.StopEnd
	case "stop_sequence":
		return llm.StopSequence
	case "max_tokens", "model_context_window_exceeded":
		return llm.StopMaxTokens
	case "tool_use":
		return llm.StopToolCalls
	case "refusal":
		return llm.StopRefusal
	case "pause_turn":
		return llm.StopPause
	}
	return llm.StopUnknown
}

var usageFields = []string{"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}

// usageCounts holds the raw counts of a Messages usage object; a count is
// nil when absent. Messages' input_tokens leaves out the cache counts.
type usageCounts [4][]byte

func (c *usageCounts) read(raw []byte) bool {
	o, ok := wire.ObjectOf(raw)
	if !ok {
		return false
	}
	*c = usageCounts{}
	return wire.Collect(&o, usageFields, c[:])
}

// apply assigns the counts present to u, which holds neutral counts.
func (c *usageCounts) apply(u *llm.Usage) {
	in := u.InputTokens - u.CacheReadTokens - u.CacheWriteTokens
	if n, ok := wire.Int(c[0]); ok {
		in = n
	}
	if n, ok := wire.Int(c[1]); ok {
		u.OutputTokens = n
	}
	if n, ok := wire.Int(c[2]); ok {
		u.CacheReadTokens = n
	}
	if n, ok := wire.Int(c[3]); ok {
		u.CacheWriteTokens = n
	}
	u.InputTokens = max(in, 0) + u.CacheReadTokens + u.CacheWriteTokens
}

func appendUsage(b []byte, u *llm.Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = wire.AppendInt(b, max(u.InputTokens-u.CacheReadTokens-u.CacheWriteTokens, 0))
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = wire.AppendInt(b, u.CacheWriteTokens)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = wire.AppendInt(b, u.CacheReadTokens)
	b = append(b, `,"output_tokens":`...)
	b = wire.AppendInt(b, u.OutputTokens)
	return append(b, '}')
}

// DecodeResponse reads a Messages response body.
func (Codec) DecodeResponse(body []byte) (*llm.Response, error) {
	var f [6][]byte
	if err := wire.Top(body, []string{"id", "model", "content", "stop_reason", "stop_sequence", "usage"}, f[:]); err != nil {
		return nil, wire.BodyError(err)
	}
	r := &llm.Response{}
	if err := wire.DecodeReplyHead(f[0], f[1], nil, r); err != nil {
		return nil, err
	}
	root := wire.Root
	ch := llm.Choice{}
	parts, err := decodeContent(f[2], root.Key("content"))
	if err != nil {
		return nil, err
	}
	ch.Parts = parts
	if s, ok := wire.Str(f[3], nil); ok {
		ch.Stop = stopReason(s)
	}
	if err := wire.DecodeString(f[4], root.Key("stop_sequence"), &ch.StopSequence); err != nil {
		return nil, err
	}
	r.Choices = []llm.Choice{ch}
	var c usageCounts
	if c.read(f[5]) {
		r.Usage = &llm.Usage{}
		c.apply(r.Usage)
	}
	return r, nil
}

// EncodeResponse writes the first choice of r as a Messages response body.
// Tool call arguments that are not a JSON object (a reply cut short) are
// written as {}; refusals become text.
func (Codec) EncodeResponse(r *llm.Response, req *llm.Request) []byte {
	b := make([]byte, 0, 512)
	b = append(b, `{"id":`...)
	b = wire.AppendString(b, r.ID)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = wire.AppendString(b, wire.ReplyModel(r.Model, req))
	b = append(b, `,"content":[`...)
	var ch llm.Choice
	if len(r.Choices) > 0 {
		ch = r.Choices[0]
	}
	n := 0
	for i := range ch.Parts {
		p := &ch.Parts[i]
		if skipPart(p) {
			continue
		}
		switch p.Kind {
		case llm.PartText, llm.PartRefusal:
		case llm.PartToolCall:
			if _, ok := toolInput(p.ToolCall.Arguments); !ok {
				tc := *p
				tc.ToolCall.Arguments = ""
				p = &tc
			}
		default:
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b, _ = appendBlock(b, p, 0, i)
		n++
	}
	b = append(b, `],"stop_reason":"`...)
	b = append(b, stopReasonName(ch.Stop)...)
	b = append(b, `","stop_sequence":`...)
	if ch.Stop == llm.StopSequence && ch.StopSequence != "" {
		b = wire.AppendString(b, ch.StopSequence)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"usage":`...)
	var u llm.Usage
	if r.Usage != nil {
		u = *r.Usage
	}
	b = appendUsage(b, &u)
	return append(b, '}')
}

// DecodeCountTokensRequest reads a POST /v1/messages/count_tokens body,
// which has the fields of a Messages request that make up its input.
func (c Codec) DecodeCountTokensRequest(body []byte) (*llm.Request, error) {
	return c.DecodeRequest(body)
}

// EncodeCountTokensResponse writes the answer to count_tokens.
func EncodeCountTokensResponse(inputTokens int64) []byte {
	b := append([]byte(nil), `{"input_tokens":`...)
	b = wire.AppendInt(b, inputTokens)
	return append(b, '}')
}
