package anthropic

import (
	"strings"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

// requestFields decodes a Messages request body. Fields the neutral model
// does not carry (top_k, thinking, cache_control, ...) are ignored.
var requestFields = []wire.RequestField{
	wire.FieldModel,
	{Name: "max_tokens", Decode: func(v []byte, p wire.Path, r *llm.Request) error { return wire.DecodeInt(v, p, &r.MaxTokens) }},
	{Name: "stop_sequences", Decode: func(v []byte, p wire.Path, r *llm.Request) error {
		return wire.DecodeStrings(v, p, false, &r.StopSequences)
	}},
	wire.FieldTemperature,
	wire.FieldTopP,
	{Name: "stream", Decode: func(v []byte, p wire.Path, r *llm.Request) error {
		err := wire.DecodeBool(v, p, &r.Stream)
		r.IncludeUsage = r.Stream // Messages always reports usage
		return err
	}},
	{Name: "system", Decode: decodeSystem},
	{Name: "messages", Decode: decodeMessages},
	{Name: "tools", Decode: decodeTools},
	{Name: "tool_choice", Decode: decodeToolChoice},
	{Name: "metadata", Decode: func(v []byte, p wire.Path, r *llm.Request) error {
		v, p, err := wire.Member(v, p, "user_id")
		if err != nil {
			return err
		}
		return wire.DecodeString(v, p, &r.User)
	}},
}

// DecodeRequest reads a Messages request body. Fields the neutral model
// does not carry (top_k, thinking, cache_control, ...) are ignored.
func (Codec) DecodeRequest(body []byte) (*llm.Request, error) {
	return wire.DecodeRequest(body, requestFields)
}

func decodeSystem(raw []byte, p wire.Path, r *llm.Request) error {
	parts, err := decodeContent(raw, p)
	if err != nil {
		return err
	}
	for i := range parts {
		if parts[i].Kind != llm.PartText {
			ip := p.Index(i)
			return wire.TypeError(ip, "a text block")
		}
	}
	r.System = parts
	return nil
}

func decodeMessages(raw []byte, p wire.Path, r *llm.Request) error {
	if wire.Absent(raw) {
		return nil
	}
	r.Messages = []llm.Message{}
	return wire.EachObject(raw, p, []string{"role", "content"}, func(_ int, g [][]byte, mp wire.Path) error {
		var m llm.Message
		role, err := wire.DecodeEnum(g[0], mp.Key("role"))
		if err != nil {
			return err
		}
		switch string(role) {
		case "user":
			m.Role = llm.RoleUser
		case "assistant":
			m.Role = llm.RoleAssistant
		default:
			rp := mp.Key("role")
			return wire.TypeError(rp, `"user" or "assistant"`)
		}
		if m.Parts, err = decodeContent(g[1], mp.Key("content")); err != nil {
			return err
		}
		r.Messages = append(r.Messages, m)
		return nil
	})
}

// decodeContent reads a content string or array of blocks.
func decodeContent(raw []byte, p wire.Path) ([]llm.Part, error) {
	return wire.Content(raw, p, blockFields, decodeBlock)
}

var blockFields = []string{"type", "text", "source", "id", "name", "input", "tool_use_id", "content", "is_error"}

const (
	bType = iota
	bText
	bSource
	bID
	bName
	bInput
	bToolUseID
	bContent
	bIsError
)

// decodeBlock reads one content block of a request or response from its
// members (blockFields).
func decodeBlock(g [][]byte, p wire.Path) (llm.Part, error) {
	var part llm.Part
	typ, err := wire.DecodeEnum(g[bType], p.Key("type"))
	if err != nil {
		return part, err
	}
	switch string(typ) {
	case "text":
		part.Kind = llm.PartText
		part.Text, err = wire.DecodeText(g[bText], p.Key("text"))
	case "image":
		return decodeImage(g[bSource], p.Key("source"))
	case "tool_use":
		part.Kind = llm.PartToolCall
		if err := wire.DecodeString(g[bID], p.Key("id"), &part.ToolCall.ID); err != nil {
			return part, err
		}
		err = wire.DecodeString(g[bName], p.Key("name"), &part.ToolCall.Name)
		if !wire.Absent(g[bInput]) {
			part.ToolCall.Arguments = string(wire.Compact(g[bInput]))
		}
	case "tool_result":
		part.Kind = llm.PartToolResult
		tr := &part.ToolResult
		if err := wire.DecodeString(g[bToolUseID], p.Key("tool_use_id"), &tr.ToolCallID); err != nil {
			return part, err
		}
		if err := wire.DecodeBool(g[bIsError], p.Key("is_error"), &tr.IsError); err != nil {
			return part, err
		}
		tr.Content, err = decodeContent(g[bContent], p.Key("content"))
	case "":
		tp := p.Key("type")
		return part, wire.TypeError(tp, "a content block type")
	default:
		part.Kind, part.Type = llm.PartOther, string(typ)
	}
	return part, err
}

func decodeImage(raw []byte, p wire.Path) (llm.Part, error) {
	part := llm.Part{Kind: llm.PartImage}
	o, err := wire.MustObject(raw, p)
	if err != nil {
		return part, err
	}
	var g [4][]byte
	wire.Collect(&o, []string{"type", "media_type", "data", "url"}, g[:])
	typ, err := wire.DecodeEnum(g[0], p.Key("type"))
	if err != nil {
		return part, err
	}
	img := &part.Image
	switch string(typ) {
	case "base64":
		if err := wire.DecodeString(g[1], p.Key("media_type"), &img.MediaType); err != nil {
			return part, err
		}
		if err := wire.DecodeString(g[2], p.Key("data"), &img.Data); err != nil {
			return part, err
		}
	case "url":
		if err := wire.DecodeString(g[3], p.Key("url"), &img.URL); err != nil {
			return part, err
		}
	default:
		return llm.Part{Kind: llm.PartOther, Type: "image source " + string(typ)}, nil
	}
	return part, nil
}

func decodeTools(raw []byte, p wire.Path, r *llm.Request) error {
	return wire.DecodeTools(raw, p, r, "custom", "", "input_schema")
}

func decodeToolChoice(raw []byte, p wire.Path, r *llm.Request) error {
	if wire.Absent(raw) {
		return nil
	}
	o, err := wire.MustObject(raw, p)
	if err != nil {
		return err
	}
	var g [3][]byte
	wire.Collect(&o, []string{"type", "name", "disable_parallel_tool_use"}, g[:])
	typ, err := wire.DecodeEnum(g[0], p.Key("type"))
	if err != nil {
		return err
	}
	switch string(typ) {
	case "auto":
		r.ToolChoice.Mode = llm.ToolChoiceAuto
	case "any":
		r.ToolChoice.Mode = llm.ToolChoiceRequired
	case "none":
		r.ToolChoice.Mode = llm.ToolChoiceNone
	case "tool":
		r.ToolChoice.Mode = llm.ToolChoiceTool
		if err := wire.DecodeString(g[1], p.Key("name"), &r.ToolChoice.Name); err != nil {
			return err
		}
	default:
		tp := p.Key("type")
		return wire.TypeError(tp, `"auto", "any", "tool" or "none"`)
	}
	var disable bool
	if err := wire.DecodeBool(g[2], p.Key("disable_parallel_tool_use"), &disable); err != nil {
		return err
	}
	if disable {
		no := false
		r.ParallelToolCalls = &no
	}
	return nil
}

// EncodeRequest writes r as a Messages request body. System and developer
// messages join the top-level system prompt; consecutive messages of one
// role become one message; tool call ids are made to fit the pattern
// Messages requires; a temperature above 1, the highest Messages takes,
// becomes 1. It fails for what Messages cannot express: more than
// one choice, audio, files and other content it has no block for, tools
// built into another provider, and tool call arguments that are not a JSON
// object. Reasoning parts are dropped.
func (c Codec) EncodeRequest(r *llm.Request) ([]byte, error) {
	if r.N > 1 {
		return nil, llm.FieldError("n", "anthropic-messages returns one choice; n must be 1")
	}
	b := make([]byte, 0, 1024)
	b = append(b, `{"model":`...)
	b = wire.AppendString(b, r.Model)
	maxTokens := r.MaxTokens
	if maxTokens == 0 {
		maxTokens = c.MaxTokens
	}
	if maxTokens == 0 {
		maxTokens = DefaultMaxTokens
	}
	b = append(b, `,"max_tokens":`...)
	b = wire.AppendInt(b, maxTokens)
	var err error
	if b, err = appendSystem(b, r); err != nil {
		return nil, err
	}
	b = append(b, `,"messages":[`...)
	if b, err = appendMessages(b, r.Messages); err != nil {
		return nil, err
	}
	b = append(b, ']')
	b = wire.AppendStrings(b, "stop_sequences", r.StopSequences)
	if r.Temperature != nil {
		// Messages takes 0 to 1, Chat and Responses 0 to 2.
		t := min(*r.Temperature, 1)
		b = wire.AppendFloatMember(b, "temperature", &t)
	}
	b = wire.AppendFloatMember(b, "top_p", r.TopP)
	if r.Stream {
		b = append(b, `,"stream":true`...)
	}
	if b, err = appendTools(b, r); err != nil {
		return nil, err
	}
	if r.User != "" {
		b = append(b, `,"metadata":{"user_id":`...)
		b = wire.AppendString(b, r.User)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendSystem writes the top-level system prompt with the text of every
// system and developer message, in order.
func appendSystem(b []byte, r *llm.Request) ([]byte, error) {
	var texts []string
	for _, p := range r.System {
		if p.Kind == llm.PartText && p.Text != "" {
			texts = append(texts, p.Text)
		}
	}
	for i, m := range r.Messages {
		if m.Role != llm.RoleSystem && m.Role != llm.RoleDeveloper {
			continue
		}
		for j, p := range m.Parts {
			switch p.Kind {
			case llm.PartText:
				if p.Text != "" {
					texts = append(texts, p.Text)
				}
			default:
				return nil, llm.FieldError(wire.PartPath(i, j), "a system message can only hold text for anthropic-messages")
			}
		}
	}
	switch len(texts) {
	case 0:
		return b, nil
	case 1:
		b = append(b, `,"system":`...)
		return wire.AppendString(b, texts[0]), nil
	}
	b = append(b, `,"system":[`...)
	for i, t := range texts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"text","text":`...)
		b = wire.AppendString(b, t)
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// appendMessages writes the user and assistant messages, merging
// consecutive messages of one role and leaving out empty ones.
func appendMessages(b []byte, msgs []llm.Message) ([]byte, error) {
	var role llm.Role // role of the open message, "" if none
	blocks := 0       // blocks written in the open message
	for i := range msgs {
		m := &msgs[i]
		if m.Role != llm.RoleUser && m.Role != llm.RoleAssistant {
			continue
		}
		for j := range m.Parts {
			p := &m.Parts[j]
			if skipPart(p) {
				continue
			}
			if role != m.Role {
				if role != "" {
					b = append(b, `]},`...)
				}
				b = append(b, `{"role":"`...)
				b = append(b, m.Role...)
				b = append(b, `","content":[`...)
				role, blocks = m.Role, 0
			}
			if blocks > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendBlock(b, p, i, j); err != nil {
				return nil, err
			}
			blocks++
		}
	}
	if role != "" {
		b = append(b, `]}`...)
	}
	return b, nil
}

// skipPart reports parts that are left out of Messages content: empty
// text, which Messages refuses, and reasoning, which it cannot take from
// another provider.
func skipPart(p *llm.Part) bool {
	switch p.Kind {
	case llm.PartText, llm.PartRefusal:
		return p.Text == ""
	case llm.PartOther:
		return p.IsReasoning()
	}
	return false
}

func appendBlock(b []byte, p *llm.Part, i, j int) ([]byte, error) {
	switch p.Kind {
	case llm.PartText, llm.PartRefusal:
		b = append(b, `{"type":"text","text":`...)
		b = wire.AppendString(b, p.Text)
		return append(b, '}'), nil
	case llm.PartImage:
		return appendImage(b, &p.Image), nil
	case llm.PartToolCall:
		tc := &p.ToolCall
		b = append(b, `{"type":"tool_use","id":`...)
		b = wire.AppendString(b, ToolID(tc.ID))
		b = append(b, `,"name":`...)
		b = wire.AppendString(b, tc.Name)
		b = append(b, `,"input":`...)
		input, ok := toolInput(tc.Arguments)
		if !ok {
			return nil, llm.FieldError(wire.PartPath(i, j), "tool call arguments must be a JSON object for anthropic-messages")
		}
		b = append(b, input...)
		return append(b, '}'), nil
	case llm.PartToolResult:
		tr := &p.ToolResult
		b = append(b, `{"type":"tool_result","tool_use_id":`...)
		b = wire.AppendString(b, ToolID(tr.ToolCallID))
		if tr.IsError {
			b = append(b, `,"is_error":true`...)
		}
		b = append(b, `,"content":[`...)
		n := 0
		for k := range tr.Content {
			c := &tr.Content[k]
			if skipPart(c) {
				continue
			}
			switch c.Kind {
			case llm.PartText, llm.PartRefusal, llm.PartImage:
			default:
				return nil, llm.FieldError(wire.PartPath(i, j), "a tool result can only hold text and images")
			}
			if n > 0 {
				b = append(b, ',')
			}
			b, _ = appendBlock(b, c, i, j)
			n++
		}
		return append(b, `]}`...), nil
	}
	return nil, llm.FieldError(wire.PartPath(i, j), "content of type "+p.Type+" cannot be sent to anthropic-messages")
}

func appendImage(b []byte, img *llm.Image) []byte {
	b = append(b, `{"type":"image","source":`...)
	if img.URL != "" {
		b = append(b, `{"type":"url","url":`...)
		b = wire.AppendString(b, img.URL)
	} else {
		b = append(b, `{"type":"base64","media_type":`...)
		b = wire.AppendString(b, img.MediaType)
		b = append(b, `,"data":`...)
		b = wire.AppendString(b, img.Data)
	}
	return append(b, `}}`...)
}

// toolInput returns the arguments of a tool call as the JSON object
// Messages wants: compact, {} for none, and ok false if they are not an
// object.
func toolInput(args string) ([]byte, bool) {
	if strings.TrimSpace(args) == "" {
		return []byte("{}"), true
	}
	if !wire.Valid([]byte(args)) {
		return nil, false
	}
	raw := []byte(strings.TrimSpace(args))
	if wire.KindOf(raw) != wire.Obj {
		return nil, false
	}
	return wire.AppendCompact(nil, raw), true
}

// ToolID returns id with every character Messages refuses in a tool use
// id (it wants [a-zA-Z0-9_-]+) replaced by "_": ids of other providers,
// such as "functions.get_weather:0", then pass. The same id always maps to
// the same result, so calls and their results still match.
func ToolID(id string) string {
	ok := id != ""
	for i := 0; i < len(id) && ok; i++ {
		ok = idByte(id[i])
	}
	if ok {
		return id
	}
	if id == "" {
		return "toolu_"
	}
	b := []byte(id)
	for i, c := range b {
		if !idByte(c) {
			b[i] = '_'
		}
	}
	return string(b)
}

func idByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func appendTools(b []byte, r *llm.Request) ([]byte, error) {
	if len(r.Tools) == 0 {
		return b, nil
	}
	if err := wire.FunctionTools(r.Tools, llm.AnthropicMessages); err != nil {
		return nil, err
	}
	b = append(b, `,"tools":[`...)
	for i := range r.Tools {
		t := &r.Tools[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = wire.AppendString(b, t.Name)
		if t.Description != "" {
			b = append(b, `,"description":`...)
			b = wire.AppendString(b, t.Description)
		}
		b = append(b, `,"input_schema":`...)
		if len(t.Parameters) > 0 {
			b = append(b, t.Parameters...)
		} else {
			b = append(b, `{"type":"object","properties":{}}`...)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	tc := r.ToolChoice
	disable := r.ParallelToolCalls != nil && !*r.ParallelToolCalls
	if tc.Mode == llm.ToolChoiceUnset && !disable {
		return b, nil
	}
	b = append(b, `,"tool_choice":{"type":`...)
	switch tc.Mode {
	case llm.ToolChoiceNone:
		b = append(b, `"none"`...)
	case llm.ToolChoiceRequired:
		b = append(b, `"any"`...)
	case llm.ToolChoiceTool:
		b = append(b, `"tool","name":`...)
		b = wire.AppendString(b, tc.Name)
	default:
		b = append(b, `"auto"`...)
	}
	if disable && tc.Mode != llm.ToolChoiceNone {
		b = append(b, `,"disable_parallel_tool_use":true`...)
	}
	return append(b, '}'), nil
}

// RequestFields lists the top-level fields a Messages request body is read
// by, for a check that the body has a single reading
// (openai.CheckSingleReading).
func RequestFields() []string {
	names := make([]string, len(requestFields))
	for i := range requestFields {
		names[i] = requestFields[i].Name
	}
	return names
}
