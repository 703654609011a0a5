// Package aipromptguard is phasegate's ai-prompt-guard plugin: it checks the
// messages of a chat-completions request against allow and deny patterns
// (Go regular expressions, RE2 syntax) and rejects the request before any
// upstream is contacted when they say so.
//
//	plugins:
//	  ai-prompt-guard:
//	    deny_patterns: ["(?i)ignore (all )?previous instructions"]
//	    allow_patterns: []                     # default: no allow list
//	    match_all_conversation_history: false  # default: the last message only
//	    match_all_roles: false                 # default: role "user" only
//
// In the access phase (priority 1070: after ai-proxy has validated the body,
// before ai-content-moderation) the guard reads the request body and selects
// the messages to check: those of role "user" in any case (of any role with
// match_all_roles), and of those only the last one (all of them with
// match_all_conversation_history). A message's content is its "content"
// string, or the text and refusal strings of its content parts joined with
// "\n"; its texts are its content and, each on its own, its "name", its
// "refusal" and each of its tool calls (see openai.Message). The request's
// definitions (each of "tools" and "functions", and "response_format": every
// string in one; see openai.ChatRequest) are checked on every request,
// whatever the selection: they are not messages, and reach the model all the
// same.
//
// A checked text that matches any deny pattern rejects the request. When
// allow_patterns is not empty, the content of every checked message must also
// match at least one allow pattern, else the request is rejected. A request
// with nothing to check passes. A rejection is an exit with status 400 and an
// OpenAI-shaped error of type "invalid_request_error" whose message is
// MsgRejected: the prompt itself is never echoed. A body that cannot be read
// as a chat-completions request, or that could be read in two ways (see
// openai.ParseChatRequest), gets a 400 of the same shape describing the
// problem (413 when it is over the route's size limit).
package aipromptguard

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Name is the plugin's name in routes' plugins mappings and in logs.
const Name = "ai-prompt-guard"

// priority places the guard after ai-proxy (1100), which validates the body,
// and before ai-content-moderation (1050), so that a prompt the guard
// rejects costs no moderation call.
const priority = 1070

// MsgRejected is the error message of the guard's 400 responses.
const MsgRejected = "the prompt was rejected by the prompt guard"

// RoleUser is the role whose messages are checked unless match_all_roles is
// set.
const RoleUser = "user"

// Config is ai-prompt-guard's configuration. Start from DefaultConfig.
type Config struct {
	// AllowPatterns, when not empty, are the patterns of which every checked
	// message must match at least one. Default: none.
	AllowPatterns []string `yaml:"allow_patterns"`
	// DenyPatterns reject a request when any checked message matches one
	// of them. Default: none.
	DenyPatterns []string `yaml:"deny_patterns"`
	// MatchAllConversationHistory checks every message of the selected
	// roles instead of only the last one. Default false.
	MatchAllConversationHistory bool `yaml:"match_all_conversation_history"`
	// MatchAllRoles checks messages of every role (system, developer,
	// assistant, tool…) instead of only "user" (in any case). Default
	// false.
	MatchAllRoles bool `yaml:"match_all_roles"`
}

// DefaultConfig returns ai-prompt-guard's defaults. They are not valid on
// their own: at least one pattern must be set.
func DefaultConfig() Config { return Config{} }

// Validate reports the config's problems: no pattern at all, a pattern that
// does not compile, and a deny pattern that matches the empty string (it
// would reject every request).
func (c *Config) Validate() []pluginsdk.FieldError {
	var errs []pluginsdk.FieldError
	if len(c.AllowPatterns) == 0 && len(c.DenyPatterns) == 0 {
		errs = append(errs, pluginsdk.FieldError{Msg: "allow_patterns and deny_patterns are both empty: set at least one pattern"})
	}
	_, e := compile("allow_patterns", c.AllowPatterns, false)
	errs = append(errs, e...)
	_, e = compile("deny_patterns", c.DenyPatterns, true)
	errs = append(errs, e...)
	return errs
}

// compile compiles patterns, reporting each problem at field[i]. A deny
// pattern must not match the empty string.
func compile(field string, patterns []string, deny bool) ([]*regexp.Regexp, []pluginsdk.FieldError) {
	var errs []pluginsdk.FieldError
	res := make([]*regexp.Regexp, 0, len(patterns))
	for i, s := range patterns {
		f := fmt.Sprintf("%s[%d]", field, i)
		if s == "" {
			errs = append(errs, pluginsdk.FieldError{Field: f, Msg: "empty pattern: it would match every message"})
			continue
		}
		re, err := regexp.Compile(s)
		if err != nil {
			errs = append(errs, pluginsdk.FieldError{Field: f, Msg: "invalid RE2: " + err.Error()})
			continue
		}
		if deny && re.MatchString("") {
			errs = append(errs, pluginsdk.FieldError{Field: f, Msg: fmt.Sprintf("%q matches the empty string: it would reject every request", s)})
			continue
		}
		res = append(res, re)
	}
	return res, errs
}

// Spec declares ai-prompt-guard to the gateway's registry.
var Spec = pluginsdk.Typed(pluginsdk.Spec{Name: Name}, DefaultConfig,
	func(c Config, env pluginsdk.Env) (phases.Plugin, error) { return New(c) })

// Plugin is the ai-prompt-guard plugin. It is immutable and safe for
// concurrent use.
type Plugin struct {
	allow    []*regexp.Regexp
	deny     []*regexp.Regexp
	history  bool
	allRoles bool
}

// New builds the plugin from cfg; it fails if cfg is not valid (see
// Config.Validate).
func New(cfg Config) (*Plugin, error) {
	if err := pluginsdk.ConfigError(Name, cfg.Validate()); err != nil {
		return nil, err
	}
	allow, _ := compile("allow_patterns", cfg.AllowPatterns, false)
	deny, _ := compile("deny_patterns", cfg.DenyPatterns, true)
	return &Plugin{
		allow:    allow,
		deny:     deny,
		history:  cfg.MatchAllConversationHistory,
		allRoles: cfg.MatchAllRoles,
	}, nil
}

// Name implements phases.Plugin.
func (*Plugin) Name() string { return Name }

// Priority implements phases.Prioritized.
func (*Plugin) Priority() int { return priority }

// Access implements phases.AccessHook: it answers 400 when the body is not a
// chat-completions request or when the checked messages fail the patterns.
func (p *Plugin) Access(ctx context.Context, r *phases.Request) phases.Exit {
	if door.Of(r).Protocol != llm.OpenAIChat {
		req, _, ex := door.Read(r)
		if ex.Exited() {
			return ex
		}
		if !p.allowedNeutral(req) {
			return phases.Error(http.StatusBadRequest, llm.TypeInvalidRequest, MsgRejected)
		}
		return phases.Exit{}
	}
	_, req, ex := llm.ReadRequest(r, openai.ParseChatRequest)
	if ex.Exited() {
		return ex
	}
	if !p.allowed(&req) {
		return phases.Error(http.StatusBadRequest, llm.TypeInvalidRequest, MsgRejected)
	}
	return phases.Exit{}
}

// allowedNeutral is allowed for a request of another door, read in the
// neutral model: the same selection of messages and the same texts
// (door.MessageTexts, door.Definitions).
func (p *Plugin) allowedNeutral(req *llm.Request) bool {
	for _, d := range door.Definitions(nil, req) {
		if p.denied(d) {
			return false
		}
	}
	turns := door.Turns(req)
	var texts []string
	for i := len(turns) - 1; i >= 0; i-- {
		m := &turns[i]
		if !p.allRoles && m.Role != llm.RoleUser {
			continue
		}
		texts = door.MessageTexts(texts[:0], m)
		for _, t := range texts {
			if p.denied(t) {
				return false
			}
		}
		if !p.permitted(door.MessageContent(m)) {
			return false
		}
		if !p.history {
			return true
		}
	}
	return true
}

// allowed reports whether the guard lets req through: whether none of the
// checked texts matches a deny pattern and, with allow patterns, the content
// of each checked message matches one.
func (p *Plugin) allowed(req *openai.ChatRequest) bool {
	for _, d := range req.Definitions {
		if p.denied(d) {
			return false
		}
	}
	var texts []string
	for i := len(req.Messages) - 1; i >= 0; i-- {
		m := &req.Messages[i]
		if !p.allRoles && !strings.EqualFold(m.Role, RoleUser) {
			continue
		}
		texts = m.AppendTexts(texts[:0])
		for _, t := range texts {
			if p.denied(t) {
				return false
			}
		}
		if !p.permitted(m.Content) {
			return false
		}
		if !p.history {
			return true
		}
	}
	return true
}

// denied reports whether text matches a deny pattern.
func (p *Plugin) denied(text string) bool {
	for _, re := range p.deny {
		if re.MatchString(text) {
			return true
		}
	}
	return false
}

// permitted reports whether text matches an allow pattern, or there are
// none.
func (p *Plugin) permitted(text string) bool {
	if len(p.allow) == 0 {
		return true
	}
	for _, re := range p.allow {
		if re.MatchString(text) {
			return true
		}
	}
	return false
}

// Interface guards.
var (
	_ phases.AccessHook  = (*Plugin)(nil)
	_ phases.Prioritized = (*Plugin)(nil)
)
