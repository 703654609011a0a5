package door

import (
	"strings"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/openai"
)

// Turns returns the conversation of req as guards select from it: the
// top-level system prompt (Messages' system, Responses' instructions) as
// a first system message, then req.Messages.
func Turns(req *llm.Request) []llm.Message {
	if len(req.System) == 0 {
		return req.Messages
	}
	return append([]llm.Message{{Role: llm.RoleSystem, Parts: req.System}}, req.Messages...)
}

// MessageTexts appends to dst every text of m a model reads, each on its
// own: its name, text parts, refusals, tool call arguments and tool
// results (see llm.Request.Texts).
func MessageTexts(dst []string, m *llm.Message) []string {
	if m.Name != "" {
		dst = append(dst, m.Name)
	}
	one := llm.Request{Messages: []llm.Message{*m}}
	for _, t := range one.Texts() {
		if t != "" {
			dst = append(dst, t)
		}
	}
	return dst
}

// MessageContent returns m's text parts joined with "\n": what allow
// patterns match, as Chat's content.
func MessageContent(m *llm.Message) string {
	var b strings.Builder
	n := 0
	for i := range m.Parts {
		p := &m.Parts[i]
		if p.Kind != llm.PartText && p.Kind != llm.PartRefusal {
			continue
		}
		if n > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Text)
		n++
	}
	return b.String()
}

// Definitions appends to dst the texts of req's tool definitions: each
// tool's name and description, and every string of its parameters schema
// (keys and values), which reach the model as much as the messages do.
func Definitions(dst []string, req *llm.Request) []string {
	for i := range req.Tools {
		t := &req.Tools[i]
		if t.Name != "" {
			dst = append(dst, t.Name)
		}
		if t.Description != "" {
			dst = append(dst, t.Description)
		}
		if len(t.Parameters) > 0 {
			dst = append(dst, openai.SchemaText(t.Parameters))
		}
	}
	return dst
}
