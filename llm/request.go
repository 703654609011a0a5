package llm

import (
	"encoding/json"
	"iter"
)

// Request is a request for a model's reply.
type Request struct {
	// Model is the model asked for.
	Model string `json:",omitzero"`
	// System is the top-level instructions: Anthropic's "system" or
	// Responses' "instructions", as text parts. System and developer
	// messages of Chat and Responses stay in Messages, in place.
	System []Part `json:",omitzero"`
	// Messages is the conversation, oldest first.
	Messages []Message `json:",omitzero"`
	// Tools is the tools the model may call.
	Tools []Tool `json:",omitzero"`
	// ToolChoice says whether and which tool the model must call.
	ToolChoice ToolChoice `json:",omitzero"`
	// ParallelToolCalls, when set, allows or forbids several tool calls in
	// one reply.
	ParallelToolCalls *bool `json:",omitzero"`
	// MaxTokens caps the reply's tokens; 0 leaves it to the protocol.
	MaxTokens int64 `json:",omitzero"`
	// StopSequences end generation when produced.
	StopSequences []string `json:",omitzero"`
	// Temperature and TopP are the sampling parameters, when set.
	Temperature *float64 `json:",omitzero"`
	TopP        *float64 `json:",omitzero"`
	// N is the number of choices asked for (Chat's "n"); 0 means one.
	N int64 `json:",omitzero"`
	// Stream asks for a streamed response.
	Stream bool `json:",omitzero"`
	// IncludeUsage asks for token usage at the end of a stream (Chat's
	// stream_options.include_usage; the other protocols always send it).
	IncludeUsage bool `json:",omitzero"`
	// User identifies the end user to the provider (Chat and Responses
	// "user", Anthropic metadata.user_id).
	User string `json:",omitzero"`
	// Metadata is the request's key-value metadata (Chat and Responses).
	Metadata map[string]string `json:",omitzero"`
	// ReasoningEffort is Chat's reasoning_effort or Responses'
	// reasoning.effort ("low", "medium", "high", ...).
	ReasoningEffort string `json:",omitzero"`
}

// Role is the author of a message.
type Role string

// The roles of messages. Tool results are parts of a user message.
const (
	RoleSystem    Role = "system"
	RoleDeveloper Role = "developer"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one turn of the conversation.
type Message struct {
	Role  Role   `json:",omitzero"`
	Parts []Part `json:",omitzero"`
	// Name is the optional participant name of Chat messages.
	Name string `json:",omitzero"`
}

// PartKind is the kind of a [Part].
type PartKind uint8

// The kinds of parts.
const (
	// PartText is text (Part.Text).
	PartText PartKind = iota + 1
	// PartImage is an image (Part.Image).
	PartImage
	// PartToolCall is the model's call of a tool (Part.ToolCall).
	PartToolCall
	// PartToolResult is a tool's result sent back (Part.ToolResult).
	PartToolResult
	// PartRefusal is the model's refusal to answer (Part.Text).
	PartRefusal
	// PartOther is content this model does not carry, such as audio,
	// documents or reasoning; Part.Type holds its wire type. Encoding it
	// for another protocol fails, except for reasoning, which is dropped
	// (see docs/protocols.md).
	PartOther
)

// Part is one piece of a message's content. Which fields are set depends
// on Kind.
type Part struct {
	Kind       PartKind   `json:",omitzero"`
	Text       string     `json:",omitzero"`
	Image      Image      `json:",omitzero"`
	ToolCall   ToolCall   `json:",omitzero"`
	ToolResult ToolResult `json:",omitzero"`
	// Type is the wire type of a PartOther.
	Type string `json:",omitzero"`
}

// Image is an image given by URL or inline as base64 data.
type Image struct {
	// URL is the image's http(s) URL; empty for inline data.
	URL string `json:",omitzero"`
	// MediaType ("image/png", ...) and Data (base64, no "data:" prefix)
	// hold an inline image.
	MediaType string `json:",omitzero"`
	Data      string `json:",omitzero"`
	// Detail is OpenAI's detail hint ("low", "high", "auto"), if any.
	Detail string `json:",omitzero"`
}

// ToolCall is a call of a tool by the model.
type ToolCall struct {
	// ID links the call to its result.
	ID string `json:",omitzero"`
	// Name is the tool called.
	Name string `json:",omitzero"`
	// Arguments is the call's arguments as JSON text (an object, when the
	// model produced valid JSON).
	Arguments string `json:",omitzero"`
}

// ToolResult is the result of a tool call, sent back to the model.
type ToolResult struct {
	// ToolCallID is the ToolCall.ID it answers.
	ToolCallID string `json:",omitzero"`
	// Content is the result: text and image parts.
	Content []Part `json:",omitzero"`
	// IsError marks a failed call (Anthropic's is_error).
	IsError bool `json:",omitzero"`
}

// Tool is a function the model may call.
type Tool struct {
	// Type is empty for a function tool; otherwise it is the wire type of
	// a tool built into one provider (web search, code execution, ...),
	// which cannot be translated.
	Type        string `json:",omitzero"`
	Name        string `json:",omitzero"`
	Description string `json:",omitzero"`
	// Parameters is the JSON Schema of the arguments; nil if not given.
	Parameters json.RawMessage `json:",omitzero"`
}

// ToolChoiceMode says how the model must use tools.
type ToolChoiceMode uint8

// The tool choice modes.
const (
	// ToolChoiceUnset leaves it to the provider (in effect auto).
	ToolChoiceUnset ToolChoiceMode = iota
	ToolChoiceAuto
	ToolChoiceNone
	// ToolChoiceRequired: some tool must be called (Anthropic "any").
	ToolChoiceRequired
	// ToolChoiceTool: the tool named by ToolChoice.Name must be called.
	ToolChoiceTool
)

// ToolChoice says whether and which tool the model must call.
type ToolChoice struct {
	Mode ToolChoiceMode `json:",omitzero"`
	Name string         `json:",omitzero"`
}

// TextSource says where a text handed out by Texts comes from.
type TextSource uint8

// The sources of text.
const (
	SourceSystem         TextSource = iota + 1 // Request.System, system and developer messages
	SourceUser                                 // user messages
	SourceAssistant                            // assistant messages and replies
	SourceToolResult                           // tool results
	SourceToolDefinition                       // tool names and descriptions
	SourceToolArguments                        // tool call arguments
	SourceRefusal                              // refusals
)

// Texts visits every text a model reads in r, in order: the system
// prompt, each message's text, refusals, tool call arguments and tool
// results, then the tools' names and descriptions. It is what a prompt
// guard or moderation checks.
func (r *Request) Texts() iter.Seq2[TextSource, string] {
	return func(yield func(TextSource, string) bool) {
		if !partTexts(r.System, SourceSystem, yield) {
			return
		}
		for i := range r.Messages {
			m := &r.Messages[i]
			src := SourceUser
			switch m.Role {
			case RoleSystem, RoleDeveloper:
				src = SourceSystem
			case RoleAssistant:
				src = SourceAssistant
			}
			if !partTexts(m.Parts, src, yield) {
				return
			}
		}
		for i := range r.Tools {
			t := &r.Tools[i]
			if !yield(SourceToolDefinition, t.Name) {
				return
			}
			if t.Description != "" && !yield(SourceToolDefinition, t.Description) {
				return
			}
		}
	}
}

// partTexts yields the texts of parts; false means the visit was stopped.
func partTexts(parts []Part, src TextSource, yield func(TextSource, string) bool) bool {
	for i := range parts {
		p := &parts[i]
		switch p.Kind {
		case PartText:
			if !yield(src, p.Text) {
				return false
			}
		case PartRefusal:
			if !yield(SourceRefusal, p.Text) {
				return false
			}
		case PartToolCall:
			if !yield(SourceToolArguments, p.ToolCall.Arguments) {
				return false
			}
		case PartToolResult:
			if !partTexts(p.ToolResult.Content, SourceToolResult, yield) {
				return false
			}
		}
	}
	return true
}

// IsReasoning reports whether p is a model's reasoning (Anthropic thinking,
// Responses reasoning items), which only the provider that made it can
// read back: translation to another protocol drops it.
func (p *Part) IsReasoning() bool {
	if p.Kind != PartOther {
		return false
	}
	switch p.Type {
	case "thinking", "redacted_thinking", "reasoning":
		return true
	}
	return false
}

var partNames = [...]string{"?", "text", "image", "tool_call", "tool_result", "refusal", "other"}

func (k PartKind) String() string {
	if int(k) < len(partNames) {
		return partNames[k]
	}
	return "?"
}

// MarshalText writes the kind's name, for readable JSON dumps.
func (k PartKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

var toolChoiceNames = [...]string{"unset", "auto", "none", "required", "tool"}

func (m ToolChoiceMode) String() string {
	if int(m) < len(toolChoiceNames) {
		return toolChoiceNames[m]
	}
	return "?"
}

// MarshalText writes the mode's name, for readable JSON dumps.
func (m ToolChoiceMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

var sourceNames = [...]string{"?", "system", "user", "assistant", "tool_result", "tool_definition", "tool_arguments", "refusal"}

func (s TextSource) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return "?"
}
