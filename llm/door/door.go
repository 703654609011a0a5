// Package door is the client side of the gateway's LLM doors: which
// protocol a request's client speaks (chosen by configuration, or by the
// request path), the one neutral reading of its body that every plugin
// shares, and the renderer that answers its errors and ends its streams
// in that protocol. docs/protocols.md describes the doors.
package door

import (
	"strings"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/anthropic"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/phases"
)

// Auto is the client_protocol setting that picks the protocol by the
// request path's suffix (see ByPath).
const Auto = "auto"

// The path suffixes of the doors under Auto.
const (
	SuffixChat        = "/chat/completions"
	SuffixMessages    = "/messages"
	SuffixCountTokens = "/messages/count_tokens"
	SuffixResponses   = "/responses"
)

// Settings lists the values of client_protocol.
func Settings() []string {
	return []string{Auto, string(llm.OpenAIChat), string(llm.AnthropicMessages), string(llm.OpenAIResponses)}
}

// ValidSetting reports whether s is a client_protocol value ("" is Auto).
func ValidSetting(s string) bool {
	return s == "" || s == Auto || llm.Protocol(s).Valid()
}

// Codec returns the codec of protocol p (Chat for an unknown one).
func Codec(p llm.Protocol) llm.Codec {
	switch p {
	case llm.AnthropicMessages:
		return anthropic.Codec{}
	case llm.OpenAIResponses:
		return openai.Responses{}
	}
	return openai.Chat{}
}

// ByPath returns the protocol of a request path under Auto, and whether the
// path is Messages' count_tokens; ok is false for a path that ends with no
// door's suffix.
func ByPath(path string) (p llm.Protocol, countTokens, ok bool) {
	path = strings.TrimSuffix(path, "/")
	switch {
	case strings.HasSuffix(path, SuffixCountTokens):
		return llm.AnthropicMessages, true, true
	case strings.HasSuffix(path, SuffixChat):
		return llm.OpenAIChat, false, true
	case strings.HasSuffix(path, SuffixMessages):
		return llm.AnthropicMessages, false, true
	case strings.HasSuffix(path, SuffixResponses):
		return llm.OpenAIResponses, false, true
	}
	return "", false, false
}

// Door is the door a request came through.
type Door struct {
	// Protocol is the protocol the client speaks.
	Protocol llm.Protocol
	// CountTokens marks Messages' POST …/messages/count_tokens.
	CountTokens bool
	// Renderer is the request's renderer, also set as its
	// phases.Request.Renderer; nil for Chat, whose shape is the default.
	Renderer *Renderer
}

var doorKey = phases.NewKey[*Door]("llm.door")

// Enter records the door of r under setting (Auto, "" or a protocol) and
// sets r.Renderer to answer in its protocol. It is idempotent: a request
// already entered keeps its door. Under Auto, a path that ends with no
// door's suffix is Chat, the one protocol routes spoke before there were
// doors, so that every route configured then keeps its meaning.
func Enter(r *phases.Request, setting string) *Door {
	if d, ok := doorKey.Get(r.Values); ok && d != nil {
		return d
	}
	d := &Door{Protocol: llm.OpenAIChat}
	p, count, ok := ByPath(r.URL.Path)
	switch {
	case setting != "" && setting != Auto:
		d.Protocol = llm.Protocol(setting)
		d.CountTokens = d.Protocol == llm.AnthropicMessages && count
	case ok:
		d.Protocol, d.CountTokens = p, count
	}
	if d.Protocol != llm.OpenAIChat {
		d.Renderer = NewRenderer(d.Protocol)
		r.Renderer = d.Renderer
	}
	doorKey.Set(r.Values, d)
	return d
}

// Entered returns the protocol of the door a request entered, from its
// values (a phases.Summary's, for the log), and false when it entered none.
func Entered(v *phases.Values) (llm.Protocol, bool) {
	if d, ok := doorKey.Get(v); ok && d != nil {
		return d.Protocol, true
	}
	return "", false
}

// Of returns the door r entered, or the one its path names (Chat when it
// names none) for a request that entered none.
func Of(r *phases.Request) *Door {
	if d, ok := doorKey.Get(r.Values); ok && d != nil {
		return d
	}
	if rr, ok := r.Renderer.(*Renderer); ok {
		return &Door{Protocol: rr.codec.Protocol(), Renderer: rr}
	}
	p, count, ok := ByPath(r.URL.Path)
	if !ok {
		p = llm.OpenAIChat
	}
	return &Door{Protocol: p, CountTokens: count}
}
