package anthropic

import (
	"strings"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

var requestFields = []string{
	"model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p",
	"stream", "tools", "tool_choice", "metadata",
}

const (
	fModel = iota
	fMessages
	fSystem
	fMaxTokens
	fStopSequences
	fTemperature
	fTopP
	fStream
	fTools
	fToolChoice
	fMetadata
	nRequestFields
)

// DecodeRequest reads a Messages request body. Fields the neutral model
// does not carry (top_k, thinking, cache_control, ...) are ignored.
func (Codec) DecodeRequest(body []byte) (*llm.Request, error) {
	var f [nRequestFields][]byte
	if err := wire.Top(body, requestFields, f[:]); err != nil {
		return nil, wire.BodyError(err)
	}
	r := &llm.Request{}
	root := wire.Root
	if err := wire.DecodeString(f[fModel], root.Key("model"), &r.Model); err != nil {
		return nil, err
	}
	if err := wire.DecodeInt(f[fMaxTokens], root.Key("max_tokens"), &r.MaxTokens); err != nil {
		return nil, err
	}
	if err := wire.DecodeStrings(f[fStopSequences], root.Key("stop_sequences"), false, &r.StopSequences); err != nil {
		return nil, err
	}
	if err := wire.DecodeFloat(f[fTemperature], root.Key("temperature"), &r.Temperature); err != nil {
		return nil, err
	}
	if err := wire.DecodeFloat(f[fTopP], root.Key("top_p"), &r.TopP); err != nil {
		return nil, err
	}
	if err := wire.DecodeBool(f[fStream], root.Key("stream"), &r.Stream); err != nil {
		return nil, err
	}
	r.IncludeUsage = r.Stream
	if err := decodeSystem(f[fSystem], root.Key("system"), r); err != nil {
		return nil, err
	}
	if err := decodeMessages(f[fMessages], root.Key("messages"), r); err != nil {
		return nil, err
	}
	if err := decodeTools(f[fTools], root.Key("tools"), r); err != nil {
		return nil, err
	}
	if err := decodeToolChoice(f[fToolChoice], root.Key("tool_choice"), r); err != nil {
		return nil, err
	}
	if !wire.Absent(f[fMetadata]) {
		p := root.Key("metadata")
		o, err := wire.MustObject(f[fMetadata], p)
		if err != nil {
			return nil, err
		}
		var g [1][]byte
		wire.Collect(&o, []string{"user_id"}, g[:])
		if err := wire.DecodeString(g[0], p.Key("user_id"), &r.User); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func decodeSystem(raw []byte, p wire.Path, r *llm.Request) error {
	if wire.Absent(raw) {
		return nil
	}
	if wire.KindOf(raw) == wire.String {
		s, _ := wire.StringOf(raw)
		r.System = []llm.Part{{Kind: llm.PartText, Text: s}}
		return nil
	}
	a, ok := wire.ArrayOf(raw)
	if !ok {
		return wire.TypeError(&p, "a string or an array of text blocks")
	}
	for i := 0; ; i++ {
		v, ok := a.Next()
		if !ok {
			return nil
		}
		part, err := decodeBlock(v, p.Index(i))
		if err != nil {
			return err
		}
		if part.Kind != llm.PartText {
			ip := p.Index(i)
			return wire.TypeError(&ip, "a text block")
		}
		r.System = append(r.System, part)
	}
}

func decodeMessages(raw []byte, p wire.Path, r *llm.Request) error {
	if wire.Absent(raw) {
		return nil
	}
	a, err := wire.MustArray(raw, p)
	if err != nil {
		return err
	}
	r.Messages = []llm.Message{}
	for i := 0; ; i++ {
		v, ok := a.Next()
		if !ok {
			return nil
		}
		mp := p.Index(i)
		o, err := wire.MustObject(v, mp)
		if err != nil {
			return err
		}
		var g [2][]byte
		wire.Collect(&o, []string{"role", "content"}, g[:])
		var m llm.Message
		var role string
		if err := wire.DecodeString(g[0], mp.Key("role"), &role); err != nil {
			return err
		}
		switch llm.Role(role) {
		case llm.RoleUser, llm.RoleAssistant:
			m.Role = llm.Role(role)
		default:
			rp := mp.Key("role")
			return wire.TypeError(&rp, `"user" or "assistant"`)
		}
		if m.Parts, err = decodeContent(g[1], mp.Key("content")); err != nil {
			return err
		}
		r.Messages = append(r.Messages, m)
	}
}

// decodeContent reads a content string or array of blocks.
func decodeContent(raw []byte, p wire.Path) ([]llm.Part, error) {
	if wire.Absent(raw) {
		return nil, nil
	}
	if wire.KindOf(raw) == wire.String {
		s, _ := wire.StringOf(raw)
		return []llm.Part{{Kind: llm.PartText, Text: s}}, nil
	}
	a, ok := wire.ArrayOf(raw)
	if !ok {
		return nil, wire.TypeError(&p, "a string or an array of content blocks")
	}
	parts := []llm.Part{}
	for i := 0; ; i++ {
		v, ok := a.Next()
		if !ok {
			return parts, nil
		}
		part, err := decodeBlock(v, p.Index(i))
		if err != nil {
			return nil, err
		}
		parts = append(parts, part)
	}
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
	nBlockFields
)

// decodeBlock reads one content block of a request or response.
func decodeBlock(raw []byte, p wire.Path) (llm.Part, error) {
	var part llm.Part
	o, err := wire.MustObject(raw, p)
	if err != nil {
		return part, err
	}
	var g [nBlockFields][]byte
	wire.Collect(&o, blockFields, g[:])
	var typ string
	if err := wire.DecodeString(g[bType], p.Key("type"), &typ); err != nil {
		return part, err
	}
	switch typ {
	case "text":
		part.Kind = llm.PartText
		tp := p.Key("text")
		if wire.KindOf(g[bText]) != wire.String {
			return part, wire.TypeError(&tp, "a string")
		}
		part.Text, _ = wire.StringOf(g[bText])
	case "image":
		return decodeImage(g[bSource], p.Key("source"))
	case "tool_use":
		part.Kind = llm.PartToolCall
		if err := wire.DecodeString(g[bID], p.Key("id"), &part.ToolCall.ID); err != nil {
			return part, err
		}
		if err := wire.DecodeString(g[bName], p.Key("name"), &part.ToolCall.Name); err != nil {
			return part, err
		}
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
		content, err := decodeContent(g[bContent], p.Key("content"))
		if err != nil {
			return part, err
		}
		tr.Content = content
	case "":
		tp := p.Key("type")
		return part, wire.TypeError(&tp, "a content block type")
	default:
		part.Kind, part.Type = llm.PartOther, typ
	}
	return part, nil
}

func decodeImage(raw []byte, p wire.Path) (llm.Part, error) {
	part := llm.Part{Kind: llm.PartImage}
	o, err := wire.MustObject(raw, p)
	if err != nil {
		return part, err
	}
	var g [4][]byte
	wire.Collect(&o, []string{"type", "media_type", "data", "url"}, g[:])
	var typ string
	if err := wire.DecodeString(g[0], p.Key("type"), &typ); err != nil {
		return part, err
	}
	img := &part.Image
	switch typ {
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
		return llm.Part{Kind: llm.PartOther, Type: "image source " + typ}, nil
	}
	return part, nil
}

func decodeTools(raw []byte, p wire.Path, r *llm.Request) error {
	if wire.Absent(raw) {
		return nil
	}
	a, err := wire.MustArray(raw, p)
	if err != nil {
		return err
	}
	r.Tools = []llm.Tool{}
	for i := 0; ; i++ {
		v, ok := a.Next()
		if !ok {
			return nil
		}
		tp := p.Index(i)
		o, err := wire.MustObject(v, tp)
		if err != nil {
			return err
		}
		var g [4][]byte
		wire.Collect(&o, []string{"type", "name", "description", "input_schema"}, g[:])
		var t llm.Tool
		if err := wire.DecodeString(g[0], tp.Key("type"), &t.Type); err != nil {
			return err
		}
		if t.Type == "custom" {
			t.Type = ""
		}
		if err := wire.DecodeString(g[1], tp.Key("name"), &t.Name); err != nil {
			return err
		}
		if err := wire.DecodeString(g[2], tp.Key("description"), &t.Description); err != nil {
			return err
		}
		if !wire.Absent(g[3]) {
			if _, err := wire.MustObject(g[3], tp.Key("input_schema")); err != nil {
				return err
			}
			t.Parameters = wire.Compact(g[3])
		}
		r.Tools = append(r.Tools, t)
	}
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
	var typ string
	if err := wire.DecodeString(g[0], p.Key("type"), &typ); err != nil {
		return err
	}
	switch typ {
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
		return wire.TypeError(&tp, `"auto", "any", "tool" or "none"`)
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
	if len(r.StopSequences) > 0 {
		b = append(b, `,"stop_sequences":[`...)
		for i, s := range r.StopSequences {
			if i > 0 {
				b = append(b, ',')
			}
			b = wire.AppendString(b, s)
		}
		b = append(b, ']')
	}
	if r.Temperature != nil {
		// Messages takes 0 to 1, Chat and Responses 0 to 2.
		b = append(b, `,"temperature":`...)
		b = wire.AppendFloat(b, min(*r.Temperature, 1))
	}
	if r.TopP != nil {
		b = append(b, `,"top_p":`...)
		b = wire.AppendFloat(b, *r.TopP)
	}
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
				return nil, llm.FieldError(messagePath(i, j), "a system message can only hold text for anthropic-messages")
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

func messagePath(i, j int) string {
	root := wire.Root
	mp := root.Key("messages")
	ip := mp.Index(i)
	cp := ip.Key("content")
	jp := cp.Index(j)
	return jp.String()
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
			return nil, llm.FieldError(messagePath(i, j), "tool call arguments must be a JSON object for anthropic-messages")
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
				return nil, llm.FieldError(messagePath(i, j), "a tool result can only hold text and images")
			}
			if n > 0 {
				b = append(b, ',')
			}
			b, _ = appendBlock(b, c, i, j)
			n++
		}
		return append(b, `]}`...), nil
	}
	return nil, llm.FieldError(messagePath(i, j), "content of type "+p.Type+" cannot be sent to anthropic-messages")
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
	b = append(b, `,"tools":[`...)
	for i := range r.Tools {
		t := &r.Tools[i]
		if t.Type != "" {
			return nil, llm.FieldError(toolPath(i), "the tool type "+t.Type+" cannot be sent to anthropic-messages")
		}
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

func toolPath(i int) string {
	root := wire.Root
	tp := root.Key("tools")
	ip := tp.Index(i)
	return ip.String()
}
