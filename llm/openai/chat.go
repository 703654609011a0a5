package openai

import (
	"strings"
	"time"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

// Chat is the Chat Completions codec. Its zero value is ready to use.
type Chat struct {
	// MaxCompletionTokens makes encoded requests carry their token limit
	// as max_completion_tokens, which OpenAI's reasoning models require,
	// instead of max_tokens, which every OpenAI-compatible server knows.
	MaxCompletionTokens bool
	// Now is the clock for "created" when the source gives no time; nil
	// means time.Now.
	Now func() time.Time
}

var _ llm.Codec = Chat{}

// Protocol returns llm.OpenAIChat.
func (Chat) Protocol() llm.Protocol { return llm.OpenAIChat }

// EncodeError writes e as the error envelope of both OpenAI protocols.
func (Chat) EncodeError(e *llm.Error) []byte { return encodeError(e) }

// DecodeError reads an error body of either OpenAI protocol.
func (Chat) DecodeError(status int, body []byte) *llm.Error { return decodeError(status, body) }

// chatFields decodes a Chat Completions request body.
var chatFields = []wire.RequestField{
	wire.FieldModel,
	{Name: "max_tokens", Decode: decodeMaxTokens},
	// max_completion_tokens, which replaces max_tokens, wins.
	{Name: "max_completion_tokens", Decode: decodeMaxTokens},
	{Name: "stop", Decode: func(v []byte, p wire.Path, r *llm.Request) error {
		return wire.DecodeStrings(v, p, true, &r.StopSequences)
	}},
	wire.FieldTemperature,
	wire.FieldTopP,
	{Name: "n", Decode: func(v []byte, p wire.Path, r *llm.Request) error { return wire.DecodeInt(v, p, &r.N) }},
	wire.FieldStream,
	{Name: "stream_options", Decode: func(v []byte, p wire.Path, r *llm.Request) error {
		v, p, err := wire.Member(v, p, "include_usage")
		if err != nil {
			return err
		}
		return wire.DecodeBool(v, p, &r.IncludeUsage)
	}},
	wire.FieldParallelToolCalls,
	wire.FieldUser,
	wire.FieldMetadata,
	{Name: "reasoning_effort", Decode: func(v []byte, p wire.Path, r *llm.Request) error {
		return wire.DecodeString(v, p, &r.ReasoningEffort)
	}},
	{Name: "messages", Decode: decodeChatMessages},
	{Name: "tools", Decode: decodeChatTools},
	{Name: "tool_choice", Decode: decodeChatToolChoice},
}

func decodeMaxTokens(v []byte, p wire.Path, r *llm.Request) error {
	return wire.DecodeInt(v, p, &r.MaxTokens)
}

// DecodeRequest reads a Chat Completions request body. Fields the neutral
// model does not carry (seed, response_format, logprobs, penalties, ...)
// are ignored.
func (Chat) DecodeRequest(body []byte) (*llm.Request, error) {
	return wire.DecodeRequest(body, chatFields)
}

var chatRoles = map[string]llm.Role{"system": llm.RoleSystem, "developer": llm.RoleDeveloper, "user": llm.RoleUser}

var chatMessageFields = []string{"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "function_call"}

// decodeChatMessages reads the messages. A tool message becomes a user
// message holding one tool result.
func decodeChatMessages(raw []byte, p wire.Path, r *llm.Request) error {
	if wire.Absent(raw) {
		return nil
	}
	r.Messages = []llm.Message{}
	return wire.EachObject(raw, p, chatMessageFields, func(_ int, g [][]byte, mp wire.Path) error {
		role, err := wire.DecodeEnum(g[0], mp.Key("role"))
		if err != nil {
			return err
		}
		var m llm.Message
		if err := wire.DecodeString(g[2], mp.Key("name"), &m.Name); err != nil {
			return err
		}
		cp := mp.Key("content")
		switch string(role) {
		case "system", "developer", "user":
			m.Role = chatRoles[string(role)]
			m.Parts, err = decodeChatContent(g[1], cp)
		case "assistant":
			m.Role = llm.RoleAssistant
			if m.Parts, err = decodeChatContent(g[1], cp); err != nil {
				return err
			}
			var refusal string
			if err := wire.DecodeString(g[5], mp.Key("refusal"), &refusal); err != nil {
				return err
			}
			if refusal != "" {
				m.Parts = append(m.Parts, llm.Part{Kind: llm.PartRefusal, Text: refusal})
			}
			m.Parts, err = decodeToolCalls(g[3], mp.Key("tool_calls"), m.Parts)
			if !wire.Absent(g[6]) {
				m.Parts = append(m.Parts, llm.Part{Kind: llm.PartOther, Type: "function_call"})
			}
		case "tool":
			tr := llm.ToolResult{}
			if err := wire.DecodeString(g[4], mp.Key("tool_call_id"), &tr.ToolCallID); err != nil {
				return err
			}
			tr.Content, err = decodeChatContent(g[1], cp)
			m = llm.Message{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartToolResult, ToolResult: tr}}}
		case "function":
			m = llm.Message{Role: llm.RoleUser, Parts: []llm.Part{{Kind: llm.PartOther, Type: "function message"}}}
		default:
			rp := mp.Key("role")
			return wire.TypeError(rp, `"system", "developer", "user", "assistant" or "tool"`)
		}
		if err != nil {
			return err
		}
		r.Messages = append(r.Messages, m)
		return nil
	})
}

// decodeChatContent reads a content string or array of content parts.
func decodeChatContent(raw []byte, p wire.Path) ([]llm.Part, error) {
	return wire.Content(raw, p, []string{"type", "text", "image_url", "refusal"}, func(g [][]byte, pp wire.Path) (llm.Part, error) {
		var part llm.Part
		typ, err := wire.DecodeEnum(g[0], pp.Key("type"))
		if err != nil {
			return part, err
		}
		switch string(typ) {
		case "text":
			part.Kind = llm.PartText
			part.Text, err = wire.DecodeText(g[1], pp.Key("text"))
		case "refusal":
			part.Kind = llm.PartRefusal
			err = wire.DecodeString(g[3], pp.Key("refusal"), &part.Text)
		case "image_url":
			ip := pp.Key("image_url")
			io, err := wire.MustObject(g[2], ip)
			if err != nil {
				return part, err
			}
			var h [2][]byte
			wire.Collect(&io, []string{"url", "detail"}, h[:])
			var url string
			if err := wire.DecodeString(h[0], ip.Key("url"), &url); err != nil {
				return part, err
			}
			part = llm.Part{Kind: llm.PartImage, Image: imageFromURL(url)}
			return part, wire.DecodeString(h[1], ip.Key("detail"), &part.Image.Detail)
		default:
			part = llm.Part{Kind: llm.PartOther, Type: string(typ)}
		}
		return part, err
	})
}

// imageFromURL reads an image URL; a base64 data URL becomes inline data.
func imageFromURL(url string) llm.Image {
	if rest, ok := strings.CutPrefix(url, "data:"); ok {
		if media, data, ok := strings.Cut(rest, ";base64,"); ok {
			return llm.Image{MediaType: media, Data: data}
		}
	}
	return llm.Image{URL: url}
}

// imageURL writes an image as the URL Chat and Responses take.
func imageURL(img *llm.Image) string {
	if img.URL != "" {
		return img.URL
	}
	return "data:" + img.MediaType + ";base64," + img.Data
}

func decodeToolCalls(raw []byte, p wire.Path, parts []llm.Part) ([]llm.Part, error) {
	err := wire.EachObject(raw, p, []string{"id", "type", "function"}, func(_ int, g [][]byte, tp wire.Path) error {
		typ, err := wire.DecodeEnum(g[1], tp.Key("type"))
		if err != nil {
			return err
		}
		if t := string(typ); t != "" && t != "function" {
			parts = append(parts, llm.Part{Kind: llm.PartOther, Type: string(typ) + " tool call"})
			return nil
		}
		tc := llm.ToolCall{}
		if err := wire.DecodeString(g[0], tp.Key("id"), &tc.ID); err != nil {
			return err
		}
		fp := tp.Key("function")
		fo, err := wire.MustObject(g[2], fp)
		if err != nil {
			return err
		}
		var h [2][]byte
		wire.Collect(&fo, []string{"name", "arguments"}, h[:])
		if err := wire.DecodeString(h[0], fp.Key("name"), &tc.Name); err != nil {
			return err
		}
		if err := wire.DecodeString(h[1], fp.Key("arguments"), &tc.Arguments); err != nil {
			return err
		}
		parts = append(parts, llm.Part{Kind: llm.PartToolCall, ToolCall: tc})
		return nil
	})
	return parts, err
}

func decodeChatTools(raw []byte, p wire.Path, r *llm.Request) error {
	return wire.DecodeTools(raw, p, r, "function", "function", "parameters")
}

func decodeChatToolChoice(raw []byte, p wire.Path, r *llm.Request) error {
	return decodeToolChoice(raw, p, r, "function")
}

// decodeToolChoice reads tool_choice: a mode, or an object naming a
// function, in its member nested (Chat's "function") or in itself.
func decodeToolChoice(raw []byte, p wire.Path, r *llm.Request, nested string) error {
	if wire.Absent(raw) {
		return nil
	}
	if wire.KindOf(raw) == wire.String {
		return toolChoiceMode(raw, p, r)
	}
	o, err := wire.MustObject(raw, p)
	if err != nil {
		return err
	}
	names := []string{"type", "name"}
	if nested != "" {
		names[1] = nested
	}
	var g [2][]byte
	wire.Collect(&o, names, g[:])
	if s, _ := wire.Str(g[0], nil); string(s) != "function" {
		// allowed_tools and the built-in tools are left to the provider.
		return nil
	}
	name, np := g[1], p
	if nested != "" {
		np = p.Key(nested)
		fo, err := wire.MustObject(g[1], np)
		if err != nil {
			return err
		}
		var h [1][]byte
		wire.Collect(&fo, []string{"name"}, h[:])
		name = h[0]
	}
	r.ToolChoice.Mode = llm.ToolChoiceTool
	return wire.DecodeString(name, np.Key("name"), &r.ToolChoice.Name)
}

// toolChoiceMode reads the string form of tool_choice.
func toolChoiceMode(raw []byte, p wire.Path, r *llm.Request) error {
	s, _ := wire.Str(raw, nil)
	switch string(s) {
	case "auto":
		r.ToolChoice.Mode = llm.ToolChoiceAuto
	case "none":
		r.ToolChoice.Mode = llm.ToolChoiceNone
	case "required":
		r.ToolChoice.Mode = llm.ToolChoiceRequired
	default:
		return wire.TypeError(p, `"auto", "none", "required" or an object`)
	}
	return nil
}

// EncodeRequest writes r as a Chat Completions request body. The
// top-level system prompt becomes a first system message, its parts
// joined by blank lines; a user
// message's tool results become tool messages ahead of it; consecutive
// assistant messages become one. A streamed request always asks for usage
// (stream_options.include_usage), which the other protocols report. It
// fails for what Chat cannot express: content it has no part for, images
// in tool results and tools built into another provider. Reasoning parts
// are dropped.
func (c Chat) EncodeRequest(r *llm.Request) ([]byte, error) {
	b := make([]byte, 0, 1024)
	b = append(b, `{"model":`...)
	b = wire.AppendString(b, r.Model)
	b = append(b, `,"messages":[`...)
	var err error
	if b, err = appendChatMessages(b, r); err != nil {
		return nil, err
	}
	b = append(b, ']')
	if r.MaxTokens > 0 {
		if c.MaxCompletionTokens {
			b = append(b, `,"max_completion_tokens":`...)
		} else {
			b = append(b, `,"max_tokens":`...)
		}
		b = wire.AppendInt(b, r.MaxTokens)
	}
	b = wire.AppendStrings(b, "stop", r.StopSequences)
	b = wire.AppendFloatMember(b, "temperature", r.Temperature)
	b = wire.AppendFloatMember(b, "top_p", r.TopP)
	if r.N > 1 {
		b = append(b, `,"n":`...)
		b = wire.AppendInt(b, r.N)
	}
	if r.Stream {
		b = append(b, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	if len(r.Tools) > 0 {
		if err := wire.FunctionTools(r.Tools, llm.OpenAIChat); err != nil {
			return nil, err
		}
		b = append(b, `,"tools":[`...)
		for i := range r.Tools {
			t := &r.Tools[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":"function","function":`...)
			b = appendFunction(b, t)
			b = append(b, '}')
		}
		b = append(b, ']')
		if r.ToolChoice.Mode != llm.ToolChoiceUnset {
			b = append(b, `,"tool_choice":`...)
			if r.ToolChoice.Mode == llm.ToolChoiceTool {
				b = append(b, `{"type":"function","function":{"name":`...)
				b = wire.AppendString(b, r.ToolChoice.Name)
				b = append(b, `}}`...)
			} else {
				b = appendToolChoiceMode(b, r.ToolChoice.Mode)
			}
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
	if r.ReasoningEffort != "" {
		b = append(b, `,"reasoning_effort":`...)
		b = wire.AppendString(b, r.ReasoningEffort)
	}
	return append(b, '}'), nil
}

func appendToolChoiceMode(b []byte, m llm.ToolChoiceMode) []byte {
	switch m {
	case llm.ToolChoiceNone:
		return append(b, `"none"`...)
	case llm.ToolChoiceRequired:
		return append(b, `"required"`...)
	}
	return append(b, `"auto"`...)
}

// appendFunction writes {"name","description","parameters"}.
func appendFunction(b []byte, t *llm.Tool) []byte {
	b = append(b, `{"name":`...)
	b = wire.AppendString(b, t.Name)
	if t.Description != "" {
		b = append(b, `,"description":`...)
		b = wire.AppendString(b, t.Description)
	}
	if len(t.Parameters) > 0 {
		b = append(b, `,"parameters":`...)
		b = append(b, t.Parameters...)
	}
	return append(b, '}')
}

// chatMessage collects what one Chat message gets from neutral parts.
type chatMessage struct {
	texts    []*llm.Part // text and images, in order
	refusal  string
	calls    []*llm.ToolCall
	results  []*llm.Part
	hasImage bool
}

func (m *chatMessage) empty() bool {
	return len(m.texts) == 0 && m.refusal == "" && len(m.calls) == 0 && len(m.results) == 0
}

// collect sorts the parts of message i into m.
func (m *chatMessage) collect(msg *llm.Message, i int, assistant bool) error {
	for j := range msg.Parts {
		p := &msg.Parts[j]
		switch p.Kind {
		case llm.PartText:
			m.texts = append(m.texts, p)
		case llm.PartImage:
			if assistant {
				return llm.FieldError(wire.PartPath(i, j), "an assistant message cannot hold an image for openai-chat")
			}
			m.texts = append(m.texts, p)
			m.hasImage = true
		case llm.PartRefusal:
			m.refusal += p.Text
		case llm.PartToolCall:
			m.calls = append(m.calls, &p.ToolCall)
		case llm.PartToolResult:
			for k := range p.ToolResult.Content {
				c := &p.ToolResult.Content[k]
				if c.Kind != llm.PartText && c.Kind != llm.PartRefusal && !c.IsReasoning() {
					return llm.FieldError(wire.PartPath(i, j), "a tool result can only hold text for openai-chat")
				}
			}
			m.results = append(m.results, p)
		case llm.PartOther:
			if !p.IsReasoning() {
				return llm.FieldError(wire.PartPath(i, j), "content of type "+p.Type+" cannot be sent to openai-chat")
			}
		}
	}
	return nil
}

func appendChatMessages(b []byte, r *llm.Request) ([]byte, error) {
	n := 0 // messages written
	sep := func() {
		if n > 0 {
			b = append(b, ',')
		}
		n++
	}
	if text := systemText(r.System); text != "" {
		// One string: some OpenAI-compatible servers take no content
		// parts in a system message.
		sep()
		b = append(b, `{"role":"system","content":`...)
		b = wire.AppendString(b, text)
		b = append(b, '}')
	}
	for i := 0; i < len(r.Messages); i++ {
		msg := &r.Messages[i]
		var m chatMessage
		if msg.Role == llm.RoleAssistant {
			// Consecutive assistant messages make one Chat message, so
			// that tool calls stay with the text before them.
			for ; i < len(r.Messages) && r.Messages[i].Role == llm.RoleAssistant; i++ {
				if err := m.collect(&r.Messages[i], i, true); err != nil {
					return nil, err
				}
			}
			i--
			if m.empty() {
				continue
			}
			sep()
			b = appendAssistant(b, &m, msg.Name)
			continue
		}
		if err := m.collect(msg, i, false); err != nil {
			return nil, err
		}
		for _, p := range m.results {
			sep()
			b = append(b, `{"role":"tool","tool_call_id":`...)
			b = wire.AppendString(b, p.ToolResult.ToolCallID)
			b = append(b, `,"content":`...)
			var texts []*llm.Part
			for k := range p.ToolResult.Content {
				if c := &p.ToolResult.Content[k]; c.Kind == llm.PartText || c.Kind == llm.PartRefusal {
					texts = append(texts, c)
				}
			}
			b = appendChatContent(b, texts, false)
			b = append(b, '}')
		}
		if len(m.texts) == 0 && (len(m.results) > 0 || msg.Role == llm.RoleSystem || msg.Role == llm.RoleDeveloper) {
			continue
		}
		sep()
		b = append(b, `{"role":`...)
		b = wire.AppendString(b, string(msg.Role))
		if msg.Name != "" {
			b = append(b, `,"name":`...)
			b = wire.AppendString(b, msg.Name)
		}
		b = append(b, `,"content":`...)
		b = appendChatContent(b, m.texts, m.hasImage)
		b = append(b, '}')
	}
	return b, nil
}

// appendChatContent writes text and image parts as a content string when
// they are one text, else as an array of content parts.
func appendChatContent(b []byte, parts []*llm.Part, images bool) []byte {
	if !images && len(parts) == 1 {
		return wire.AppendString(b, parts[0].Text)
	}
	if !images && len(parts) == 0 {
		return append(b, `""`...)
	}
	b = append(b, '[')
	for k, p := range parts {
		if k > 0 {
			b = append(b, ',')
		}
		if p.Kind == llm.PartImage {
			b = append(b, `{"type":"image_url","image_url":{"url":`...)
			b = wire.AppendString(b, imageURL(&p.Image))
			if p.Image.Detail != "" {
				b = append(b, `,"detail":`...)
				b = wire.AppendString(b, p.Image.Detail)
			}
			b = append(b, `}}`...)
			continue
		}
		b = append(b, `{"type":"text","text":`...)
		b = wire.AppendString(b, p.Text)
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendAssistant(b []byte, m *chatMessage, name string) []byte {
	b = append(b, `{"role":"assistant"`...)
	if name != "" {
		b = append(b, `,"name":`...)
		b = wire.AppendString(b, name)
	}
	b = append(b, `,"content":`...)
	if len(m.texts) == 0 {
		b = append(b, "null"...)
	} else {
		b = appendChatContent(b, m.texts, false)
	}
	if m.refusal != "" {
		b = append(b, `,"refusal":`...)
		b = wire.AppendString(b, m.refusal)
	}
	b = appendToolCalls(b, m.calls)
	return append(b, '}')
}

// appendToolCalls writes the member "tool_calls", or nothing without
// calls.
func appendToolCalls(b []byte, calls []*llm.ToolCall) []byte {
	if len(calls) == 0 {
		return b
	}
	b = append(b, `,"tool_calls":[`...)
	for k, tc := range calls {
		if k > 0 {
			b = append(b, ',')
		}
		b = appendToolCall(b, tc)
	}
	return append(b, ']')
}

func appendToolCall(b []byte, tc *llm.ToolCall) []byte {
	b = append(b, `{"id":`...)
	b = wire.AppendString(b, tc.ID)
	b = append(b, `,"type":"function","function":{"name":`...)
	b = wire.AppendString(b, tc.Name)
	b = append(b, `,"arguments":`...)
	args := tc.Arguments
	if args == "" {
		args = "{}"
	}
	b = wire.AppendString(b, args)
	return append(b, `}}`...)
}
