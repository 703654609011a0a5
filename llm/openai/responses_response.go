package openai

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

// itemID makes the id of output item n of response id: prefix "msg" or
// "fc", then the response id without a prefix of its own ("resp_",
// "msg_", "chatcmpl-").
func itemID(prefix, id string, n int) string {
	if i := strings.IndexAny(id, "_-"); i >= 0 && i < len(id)-1 {
		id = id[i+1:]
	}
	return prefix + "_" + id + "_" + strconv.Itoa(n)
}

// responseObject is what a Responses response object holds beyond its
// output items.
type responseObject struct {
	id      string
	created int64
	model   string
	status  string // in_progress, completed, incomplete or failed
	stop    llm.StopReason
	err     *llm.Error
	output  []byte // the output items, joined by commas
	usage   *llm.Usage
	req     *llm.Request
}

// incompleteReason is the reason of an incomplete response, or "" for a
// complete one.
func incompleteReason(s llm.StopReason) string {
	switch s {
	case llm.StopMaxTokens:
		return "max_output_tokens"
	case llm.StopRefusal:
		return "content_filter"
	}
	return ""
}

// failedCode is the code of a failed response's error.
func failedCode(e *llm.Error) string {
	if e.Code != "" {
		return e.Code
	}
	if e.Status == http.StatusTooManyRequests {
		return "rate_limit_exceeded"
	}
	return "server_error"
}

func appendResponseObject(b []byte, o *responseObject) []byte {
	b = append(b, `{"id":`...)
	b = wire.AppendString(b, o.id)
	b = append(b, `,"object":"response","created_at":`...)
	b = wire.AppendInt(b, o.created)
	b = append(b, `,"status":"`...)
	b = append(b, o.status...)
	b = append(b, `","background":false,"error":`...)
	if o.err != nil {
		b = append(b, `{"code":`...)
		b = wire.AppendString(b, failedCode(o.err))
		b = append(b, `,"message":`...)
		b = wire.AppendString(b, o.err.Message)
		b = append(b, '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"incomplete_details":`...)
	if reason := incompleteReason(o.stop); o.status == "incomplete" && reason != "" {
		b = append(b, `{"reason":"`...)
		b = append(b, reason...)
		b = append(b, `"}`...)
	} else {
		b = append(b, "null"...)
	}
	req := o.req
	if req == nil {
		req = &llm.Request{}
	}
	b = append(b, `,"instructions":`...)
	if text := systemText(req.System); text != "" {
		b = wire.AppendString(b, text)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"max_output_tokens":`...)
	if req.MaxTokens > 0 {
		b = wire.AppendInt(b, req.MaxTokens)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"model":`...)
	b = wire.AppendString(b, wire.ReplyModel(o.model, req))
	b = append(b, `,"output":[`...)
	b = append(b, o.output...)
	b = append(b, `],"parallel_tool_calls":`...)
	b = wire.AppendBool(b, req.ParallelToolCalls == nil || *req.ParallelToolCalls)
	b = append(b, `,"previous_response_id":null,"reasoning":{"effort":`...)
	if req.ReasoningEffort != "" {
		b = wire.AppendString(b, req.ReasoningEffort)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"summary":null},"store":false,"temperature":`...)
	b = appendFloatOr(b, req.Temperature, 1)
	b = append(b, `,"text":{"format":{"type":"text"}},"tool_choice":`...)
	b = appendResponsesToolChoice(b, req.ToolChoice)
	b = append(b, `,"tools":[`...)
	b = appendToolItems(b, req.Tools)
	b = append(b, `],"top_p":`...)
	b = appendFloatOr(b, req.TopP, 1)
	b = append(b, `,"truncation":"disabled","usage":`...)
	if o.usage != nil {
		b = responsesUsage.append(b, o.usage)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"user":`...)
	if req.User != "" {
		b = wire.AppendString(b, req.User)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"metadata":`...)
	b = appendMetadata(b, req.Metadata)
	return append(b, '}')
}

// appendMetadata writes m as an object, keys in order.
func appendMetadata(b []byte, m map[string]string) []byte {
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendString(b, k)
		b = append(b, ':')
		b = wire.AppendString(b, m[k])
	}
	return append(b, '}')
}

func appendFloatOr(b []byte, f *float64, def float64) []byte {
	if f != nil {
		return wire.AppendFloat(b, *f)
	}
	return wire.AppendFloat(b, def)
}

// appendMessageItem writes a completed message item holding parts (text
// and refusals).
func appendMessageItem(b []byte, id, status string, parts func(b []byte) []byte) []byte {
	b = append(b, `{"id":`...)
	b = wire.AppendString(b, id)
	b = append(b, `,"type":"message","status":"`...)
	b = append(b, status...)
	b = append(b, `","content":[`...)
	b = parts(b)
	return append(b, `],"role":"assistant"}`...)
}

// appendContentPart writes an output_text or refusal content part.
func appendContentPart(b []byte, refusal bool, text []byte) []byte {
	if refusal {
		b = append(b, `{"type":"refusal","refusal":`...)
		b = wire.AppendBytes(b, text)
		return append(b, '}')
	}
	b = append(b, `{"type":"output_text","annotations":[],"logprobs":[],"text":`...)
	b = wire.AppendBytes(b, text)
	return append(b, '}')
}

func appendFunctionCallItem(b []byte, id, status, callID, name string, args []byte) []byte {
	b = append(b, `{"id":`...)
	b = wire.AppendString(b, id)
	b = append(b, `,"type":"function_call","status":"`...)
	b = append(b, status...)
	b = append(b, `","arguments":`...)
	b = wire.AppendBytes(b, args)
	b = append(b, `,"call_id":`...)
	b = wire.AppendString(b, callID)
	b = append(b, `,"name":`...)
	b = wire.AppendString(b, name)
	return append(b, '}')
}

// statusOf is the status of a finished response that stopped for s.
func statusOf(s llm.StopReason) string {
	if incompleteReason(s) != "" {
		return "incomplete"
	}
	return "completed"
}

// EncodeResponse writes the first choice of r as a Responses response
// object. Consecutive text and refusal parts make one message item, each
// tool call a function_call item.
func (c Responses) EncodeResponse(r *llm.Response, req *llm.Request) []byte {
	var ch llm.Choice
	if len(r.Choices) > 0 {
		ch = r.Choices[0]
	}
	var out []byte
	items := 0
	for j := 0; j < len(ch.Parts); j++ {
		p := &ch.Parts[j]
		switch p.Kind {
		case llm.PartText, llm.PartRefusal:
			k := j
			for k < len(ch.Parts) && (ch.Parts[k].Kind == llm.PartText || ch.Parts[k].Kind == llm.PartRefusal) {
				k++
			}
			run := ch.Parts[j:k]
			j = k - 1
			if items > 0 {
				out = append(out, ',')
			}
			out = appendMessageItem(out, itemID("msg", r.ID, items), "completed", func(b []byte) []byte {
				for n := range run {
					if n > 0 {
						b = append(b, ',')
					}
					b = appendContentPart(b, run[n].Kind == llm.PartRefusal, []byte(run[n].Text))
				}
				return b
			})
			items++
		case llm.PartToolCall:
			if items > 0 {
				out = append(out, ',')
			}
			tc := &p.ToolCall
			out = appendFunctionCallItem(out, itemID("fc", r.ID, items), "completed", tc.ID, tc.Name, []byte(tc.Arguments))
			items++
		}
	}
	created := r.Created
	if created == 0 {
		created = clock(c.Now).Unix()
	}
	return appendResponseObject(make([]byte, 0, 1024+len(out)), &responseObject{
		id: r.ID, created: created, model: r.Model, status: statusOf(ch.Stop), stop: ch.Stop,
		output: out, usage: r.Usage, req: req,
	})
}

// DecodeResponse reads a Responses response object. A failed response
// gives its error.
func (Responses) DecodeResponse(body []byte) (*llm.Response, error) {
	var f [7][]byte
	if err := wire.Top(body, []string{"id", "model", "created_at", "status", "incomplete_details", "output", "usage"}, f[:]); err != nil {
		return nil, wire.BodyError(err)
	}
	r := &llm.Response{}
	if err := wire.DecodeReplyHead(f[0], f[1], f[2], r); err != nil {
		return nil, err
	}
	root := wire.Root
	ch := llm.Choice{}
	parts, err := decodeOutput(f[5], root.Key("output"))
	if err != nil {
		return nil, err
	}
	ch.Parts = parts
	ch.Stop = finalStop(f[3], f[4], parts)
	r.Choices = []llm.Choice{ch}
	if u, ok := responsesUsage.read(f[6]); ok {
		r.Usage = &u
	}
	return r, nil
}

// finalStop reads why a finished response stopped, from its status and
// incomplete_details.
func finalStop(status, details []byte, parts []llm.Part) llm.StopReason {
	s, _ := wire.Str(status, nil)
	if string(s) == "incomplete" {
		reason, _ := wire.Str(fieldOf(details, "reason"), nil)
		switch string(reason) {
		case "max_output_tokens":
			return llm.StopMaxTokens
		case "content_filter":
			return llm.StopRefusal
		}
		return llm.StopUnknown
	}
	for i := range parts {
		if parts[i].Kind == llm.PartToolCall {
			return llm.StopToolCalls
		}
	}
	return llm.StopEnd
}

// decodeOutput reads output items: messages' text and refusals, function
// calls, and other items as PartOther.
func decodeOutput(raw []byte, p wire.Path) ([]llm.Part, error) {
	var parts []llm.Part
	err := wire.EachObject(raw, p, itemFields, func(_ int, g [][]byte, ip wire.Path) error {
		typ, _ := wire.Str(g[0], nil)
		switch string(typ) {
		case "message":
			content, err := decodeResponsesContent(g[2], ip.Key("content"))
			parts = append(parts, content...)
			return err
		case "function_call":
			tc, err := decodeFunctionCall(g, ip)
			parts = append(parts, llm.Part{Kind: llm.PartToolCall, ToolCall: tc})
			return err
		}
		parts = append(parts, llm.Part{Kind: llm.PartOther, Type: string(typ)})
		return nil
	})
	return parts, err
}
