package openai

import (
	"time"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

// Responses is the Responses codec, for the stateless use of the protocol.
// Its zero value is ready to use.
type Responses struct {
	// Now is the clock for "created_at" when the source gives no time;
	// nil means time.Now.
	Now func() time.Time
}

var _ llm.Codec = Responses{}

// Protocol returns llm.OpenAIResponses.
func (Responses) Protocol() llm.Protocol { return llm.OpenAIResponses }

// EncodeError writes e as the error envelope of both OpenAI protocols.
func (Responses) EncodeError(e *llm.Error) []byte { return encodeError(e) }

// DecodeError reads an error body of either OpenAI protocol.
func (Responses) DecodeError(status int, body []byte) *llm.Error { return decodeError(status, body) }

// stateless is the end of the message refusing what needs server state.
const stateless = "the gateway keeps no server-side state; send the whole conversation in input, with store false"

// statelessError refuses field, which needs server state, saying what.
func statelessError(field, what string) *llm.Error {
	e := llm.FieldError(field, "")
	e.Message = what + " is not supported: " + stateless
	return e
}

// stateful refuses a member that needs server state when present (or,
// with onlyTrue, when true).
func stateful(name string, onlyTrue bool) wire.RequestField {
	return wire.RequestField{Name: name, Decode: func(v []byte, p wire.Path, _ *llm.Request) error {
		switch {
		case wire.Absent(v), onlyTrue && string(v) != "true":
			return nil
		case onlyTrue:
			return statelessError(name, name+" true")
		}
		return statelessError(name, name)
	}}
}

// responsesFields decodes a Responses request body. What needs state kept
// by the server comes first and is refused.
var responsesFields = []wire.RequestField{
	stateful("previous_response_id", false),
	stateful("conversation", false),
	stateful("prompt", false),
	stateful("store", true),
	stateful("background", true),
	wire.FieldModel,
	{Name: "instructions", Decode: func(v []byte, p wire.Path, r *llm.Request) error {
		var s string
		if err := wire.DecodeString(v, p, &s); err != nil || s == "" {
			return err
		}
		r.System = []llm.Part{{Kind: llm.PartText, Text: s}}
		return nil
	}},
	{Name: "max_output_tokens", Decode: decodeMaxTokens},
	wire.FieldTemperature,
	wire.FieldTopP,
	{Name: "stream", Decode: func(v []byte, p wire.Path, r *llm.Request) error {
		err := wire.DecodeBool(v, p, &r.Stream)
		r.IncludeUsage = r.Stream // Responses always reports usage
		return err
	}},
	wire.FieldParallelToolCalls,
	wire.FieldUser,
	wire.FieldMetadata,
	{Name: "reasoning", Decode: func(v []byte, p wire.Path, r *llm.Request) error {
		v, p, err := wire.Member(v, p, "effort")
		if err != nil {
			return err
		}
		return wire.DecodeString(v, p, &r.ReasoningEffort)
	}},
	{Name: "input", Decode: decodeInput},
	{Name: "tools", Decode: decodeResponsesTools},
	{Name: "tool_choice", Decode: decodeResponsesToolChoice},
}

// DecodeRequest reads a Responses request body. What needs state kept by
// the server is refused: previous_response_id, conversation, prompt,
// background and store true, and item references in input. Fields the
// neutral model does not carry (text, include, truncation, ...) are
// ignored.
func (Responses) DecodeRequest(body []byte) (*llm.Request, error) {
	return wire.DecodeRequest(body, responsesFields)
}

var itemFields = []string{"type", "role", "content", "call_id", "name", "arguments", "output"}

// decodeInput reads input: a string (one user message) or items. Function
// calls join the assistant message before them, function call outputs the
// user message of tool results before them, so that a turn stays one
// message.
func decodeInput(raw []byte, p wire.Path, r *llm.Request) error {
	if wire.Absent(raw) {
		return nil
	}
	if wire.KindOf(raw) == wire.String {
		s, _ := wire.StringOf(raw)
		r.Messages = []llm.Message{{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartText, Text: s}}}}
		return nil
	}
	if wire.KindOf(raw) != wire.Arr {
		return wire.TypeError(p, "a string or an array of input items")
	}
	r.Messages = []llm.Message{}
	return wire.EachObject(raw, p, itemFields, func(_ int, g [][]byte, ip wire.Path) error {
		typ, err := wire.DecodeEnum(g[0], ip.Key("type"))
		if err != nil {
			return err
		}
		var role llm.Role
		var part llm.Part
		switch string(typ) {
		case "", "message":
			m, err := decodeInputMessage(g[1], g[2], ip)
			if err != nil {
				return err
			}
			if m.Role == llm.RoleAssistant {
				appendParts(r, llm.RoleAssistant, m.Parts...)
			} else {
				r.Messages = append(r.Messages, m)
			}
			return nil
		case "function_call":
			role, part.Kind = llm.RoleAssistant, llm.PartToolCall
			part.ToolCall, err = decodeFunctionCall(g, ip)
		case "function_call_output":
			role, part.Kind = llm.RoleUser, llm.PartToolResult
			tr := &part.ToolResult
			if err := wire.DecodeString(g[3], ip.Key("call_id"), &tr.ToolCallID); err != nil {
				return err
			}
			tr.Content, err = decodeResponsesContent(g[6], ip.Key("output"))
		case "item_reference":
			return statelessError(ip.String(), ip.String()+": an item reference")
		default:
			// Reasoning and the calls of built-in tools.
			role, part = llm.RoleAssistant, llm.Part{Kind: llm.PartOther, Type: string(typ)}
		}
		if err != nil {
			return err
		}
		appendParts(r, role, part)
		return nil
	})
}

// decodeFunctionCall reads a function_call item from its members
// (itemFields).
func decodeFunctionCall(g [][]byte, p wire.Path) (tc llm.ToolCall, err error) {
	if err = wire.DecodeString(g[3], p.Key("call_id"), &tc.ID); err != nil {
		return tc, err
	}
	if err = wire.DecodeString(g[4], p.Key("name"), &tc.Name); err != nil {
		return tc, err
	}
	return tc, wire.DecodeString(g[5], p.Key("arguments"), &tc.Arguments)
}

// appendParts adds parts to the last message if it has role (and, for a
// user message, holds only tool results, as do the parts added), or else
// as a new message.
func appendParts(r *llm.Request, role llm.Role, parts ...llm.Part) {
	if n := len(r.Messages); n > 0 && r.Messages[n-1].Role == role {
		last := &r.Messages[n-1]
		if role == llm.RoleAssistant || onlyResults(last.Parts) && onlyResults(parts) {
			last.Parts = append(last.Parts, parts...)
			return
		}
	}
	r.Messages = append(r.Messages, llm.Message{Role: role, Parts: parts})
}

func onlyResults(parts []llm.Part) bool {
	for i := range parts {
		if parts[i].Kind != llm.PartToolResult {
			return false
		}
	}
	return true
}

func decodeInputMessage(role, content []byte, p wire.Path) (llm.Message, error) {
	var m llm.Message
	s, err := wire.DecodeEnum(role, p.Key("role"))
	if err != nil {
		return m, err
	}
	if string(s) == "assistant" {
		m.Role = llm.RoleAssistant
	} else if m.Role = chatRoles[string(s)]; m.Role == "" {
		return m, wire.TypeError(p.Key("role"), `"user", "assistant", "system" or "developer"`)
	}
	m.Parts, err = decodeResponsesContent(content, p.Key("content"))
	return m, err
}

var contentFields = []string{"type", "text", "refusal", "image_url", "detail"}

// decodeResponsesContent reads a content string or array of content parts
// (input_text, input_image, output_text, refusal, ...).
func decodeResponsesContent(raw []byte, p wire.Path) ([]llm.Part, error) {
	return wire.Content(raw, p, contentFields, func(g [][]byte, pp wire.Path) (llm.Part, error) {
		var part llm.Part
		typ, err := wire.DecodeEnum(g[0], pp.Key("type"))
		if err != nil {
			return part, err
		}
		switch string(typ) {
		case "input_text", "output_text", "text":
			part.Kind = llm.PartText
			part.Text, err = wire.DecodeText(g[1], pp.Key("text"))
		case "refusal":
			part.Kind = llm.PartRefusal
			err = wire.DecodeString(g[2], pp.Key("refusal"), &part.Text)
		case "input_image":
			if wire.Absent(g[3]) {
				// An image given by file_id lives in OpenAI's file store.
				return llm.Part{Kind: llm.PartOther, Type: "input_image file"}, nil
			}
			var url string
			if err := wire.DecodeString(g[3], pp.Key("image_url"), &url); err != nil {
				return part, err
			}
			part = llm.Part{Kind: llm.PartImage, Image: imageFromURL(url)}
			err = wire.DecodeString(g[4], pp.Key("detail"), &part.Image.Detail)
		default:
			part = llm.Part{Kind: llm.PartOther, Type: string(typ)}
		}
		return part, err
	})
}

func decodeResponsesTools(raw []byte, p wire.Path, r *llm.Request) error {
	return wire.DecodeTools(raw, p, r, "function", "", "parameters")
}

func decodeResponsesToolChoice(raw []byte, p wire.Path, r *llm.Request) error {
	return decodeToolChoice(raw, p, r, "")
}

// EncodeRequest writes r as a stateless Responses request body (store
// false). The top-level system prompt becomes instructions. It fails for
// what Responses cannot express: stop sequences, more than one choice,
// content it has no part for and tools built into another provider.
func (Responses) EncodeRequest(r *llm.Request) ([]byte, error) {
	if len(r.StopSequences) > 0 {
		return nil, llm.FieldError("stop", "openai-responses has no stop sequences")
	}
	if r.N > 1 {
		return nil, llm.FieldError("n", "openai-responses returns one choice; n must be 1")
	}
	b := make([]byte, 0, 1024)
	b = append(b, `{"model":`...)
	b = wire.AppendString(b, r.Model)
	if text := systemText(r.System); text != "" {
		b = append(b, `,"instructions":`...)
		b = wire.AppendString(b, text)
	}
	b = append(b, `,"input":[`...)
	var err error
	if b, err = appendInput(b, r.Messages); err != nil {
		return nil, err
	}
	b = append(b, `],"store":false`...)
	if r.MaxTokens > 0 {
		b = append(b, `,"max_output_tokens":`...)
		b = wire.AppendInt(b, r.MaxTokens)
	}
	if r.Temperature != nil {
		b = append(b, `,"temperature":`...)
		b = wire.AppendFloat(b, *r.Temperature)
	}
	if r.TopP != nil {
		b = append(b, `,"top_p":`...)
		b = wire.AppendFloat(b, *r.TopP)
	}
	if r.Stream {
		b = append(b, `,"stream":true`...)
	}
	if len(r.Tools) > 0 {
		if b, err = appendResponsesTools(b, r.Tools); err != nil {
			return nil, err
		}
		if r.ToolChoice.Mode != llm.ToolChoiceUnset {
			b = append(b, `,"tool_choice":`...)
			b = appendResponsesToolChoice(b, r.ToolChoice)
		}
		if r.ParallelToolCalls != nil {
			b = append(b, `,"parallel_tool_calls":`...)
			b = wire.AppendBool(b, *r.ParallelToolCalls)
		}
	}
	if r.User != "" {
		b = append(b, `,"user":`...)
		b = wire.AppendString(b, r.User)
	}
	if len(r.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = appendMetadata(b, r.Metadata)
	}
	if r.ReasoningEffort != "" {
		b = append(b, `,"reasoning":{"effort":`...)
		b = wire.AppendString(b, r.ReasoningEffort)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// systemText joins text parts with blank lines.
func systemText(parts []llm.Part) string {
	var b []byte
	for i := range parts {
		if parts[i].Kind != llm.PartText || parts[i].Text == "" {
			continue
		}
		if len(b) > 0 {
			b = append(b, "\n\n"...)
		}
		b = append(b, parts[i].Text...)
	}
	return string(b)
}

func appendResponsesTools(b []byte, tools []llm.Tool) ([]byte, error) {
	if err := wire.FunctionTools(tools, llm.OpenAIResponses); err != nil {
		return nil, err
	}
	b = append(b, `,"tools":[`...)
	b = appendToolItems(b, tools)
	return append(b, ']'), nil
}

// appendToolItems writes the function tools among tools, comma-separated.
func appendToolItems(b []byte, tools []llm.Tool) []byte {
	n := 0
	for i := range tools {
		t := &tools[i]
		if t.Type != "" {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, `{"type":"function","name":`...)
		b = wire.AppendString(b, t.Name)
		if t.Description != "" {
			b = append(b, `,"description":`...)
			b = wire.AppendString(b, t.Description)
		}
		b = append(b, `,"parameters":`...)
		if len(t.Parameters) > 0 {
			b = append(b, t.Parameters...)
		} else {
			b = append(b, "null"...)
		}
		b = append(b, `,"strict":false}`...)
	}
	return b
}

func appendResponsesToolChoice(b []byte, tc llm.ToolChoice) []byte {
	if tc.Mode == llm.ToolChoiceTool {
		b = append(b, `{"type":"function","name":`...)
		b = wire.AppendString(b, tc.Name)
		return append(b, '}')
	}
	return appendToolChoiceMode(b, tc.Mode)
}

// appendInput writes messages as input items.
func appendInput(b []byte, msgs []llm.Message) ([]byte, error) {
	n := 0
	sep := func() {
		if n > 0 {
			b = append(b, ',')
		}
		n++
	}
	for i := range msgs {
		m := &msgs[i]
		// Text, images and refusals make message items; calls and results
		// items of their own, in order.
		var run []*llm.Part
		flush := func() {
			if len(run) == 0 {
				return
			}
			sep()
			b = append(b, `{"type":"message","role":`...)
			b = wire.AppendString(b, string(m.Role))
			b = append(b, `,"content":[`...)
			for k, p := range run {
				if k > 0 {
					b = append(b, ',')
				}
				b = appendInputContent(b, p, m.Role == llm.RoleAssistant)
			}
			b = append(b, `]}`...)
			run = run[:0]
		}
		for j := range m.Parts {
			p := &m.Parts[j]
			switch p.Kind {
			case llm.PartText, llm.PartImage, llm.PartRefusal:
				run = append(run, p)
			case llm.PartToolCall:
				flush()
				sep()
				b = append(b, `{"type":"function_call","call_id":`...)
				b = wire.AppendString(b, p.ToolCall.ID)
				b = append(b, `,"name":`...)
				b = wire.AppendString(b, p.ToolCall.Name)
				b = append(b, `,"arguments":`...)
				b = wire.AppendString(b, p.ToolCall.Arguments)
				b = append(b, '}')
			case llm.PartToolResult:
				flush()
				sep()
				b = append(b, `{"type":"function_call_output","call_id":`...)
				b = wire.AppendString(b, p.ToolResult.ToolCallID)
				b = append(b, `,"output":[`...)
				k := 0
				for c := range p.ToolResult.Content {
					cp := &p.ToolResult.Content[c]
					if cp.Kind != llm.PartText && cp.Kind != llm.PartImage && cp.Kind != llm.PartRefusal {
						continue
					}
					if k > 0 {
						b = append(b, ',')
					}
					b = appendInputContent(b, cp, false)
					k++
				}
				b = append(b, `]}`...)
			case llm.PartOther:
				if !p.IsReasoning() {
					return nil, llm.FieldError(wire.PartPath(i, j), "content of type "+p.Type+" cannot be sent to openai-responses")
				}
			}
		}
		flush()
	}
	return b, nil
}

func appendInputContent(b []byte, p *llm.Part, output bool) []byte {
	switch {
	case p.Kind == llm.PartImage:
		b = append(b, `{"type":"input_image","image_url":`...)
		b = wire.AppendString(b, imageURL(&p.Image))
		if p.Image.Detail != "" {
			b = append(b, `,"detail":`...)
			b = wire.AppendString(b, p.Image.Detail)
		}
		return append(b, '}')
	case p.Kind == llm.PartRefusal && output:
		b = append(b, `{"type":"refusal","refusal":`...)
		b = wire.AppendString(b, p.Text)
		return append(b, '}')
	case output:
		b = append(b, `{"type":"output_text","text":`...)
	default:
		b = append(b, `{"type":"input_text","text":`...)
	}
	b = wire.AppendString(b, p.Text)
	return append(b, '}')
}
