// Package aimoderation is phasegate's ai-content-moderation plugin: it
// checks the prompt of a chat-completions request and, optionally, the text
// the model generates, against deny patterns (Go regular expressions, RE2
// syntax) and/or an OpenAI-compatible moderation endpoint, and answers a
// refusal instead of what they flag.
//
//	plugins:
//	  ai-content-moderation:
//	    deny_patterns: ["(?i)\\bkill\\b"]    # RE2; and/or moderation.endpoint
//	    moderation:                          # optional
//	      endpoint: https://api.openai.com/v1/moderations
//	      model: omni-moderation-latest      # optional, sent when set
//	      auth: { header: { Authorization: "Bearer ${OPENAI_API_KEY}" } }
//	      timeout: 5s                        # default
//	      fail_mode: skip                    # skip (default) | error
//	    check_request: true                  # default
//	    request_messages: last               # last (default) | all
//	    request_roles: [user]                # default; "*" is every role
//	    check_response: false                # default
//	    stream_check_mode: realtime          # realtime (default) | final_packet
//	    stream_check_cache_size: 128         # default, characters
//	    deny_code: 400                       # default
//	    deny_message: "Your request was rejected by the content policy."
//
// A text is flagged when it matches a deny pattern or, failing that, when the
// endpoint flags it. The patterns are applied to each text separately; the
// endpoint gets one input per text.
// When the endpoint cannot answer, fail_mode skip lets the text through and
// logs a warning, and fail_mode error answers 502 with an OpenAI-shaped
// error of type "moderation_error" (in the access phase, or before a
// response started; once a stream has started, that error is its final
// event).
//
// # Request
//
// In the access phase (priority 1050: after ai-proxy at 1100, which
// validates the body and records the model, and after ai-prompt-guard at
// 1070), with check_request, the plugin checks the texts of the request: its
// definitions (each of "tools" and "functions", and "response_format": every
// string in one), on every request, and the texts of the selected messages:
// those whose role is one of request_roles (in any case), and of those the
// last one or all of them. A message's texts are its content (the "content"
// string, or the text and refusal strings of its parts joined with "\n"),
// its "name", its "refusal" and each of its tool calls (see
// openai.ChatRequest). A flagged prompt is refused with status deny_code and
// a complete OpenAI-shaped response whose assistant content is deny_message
// (docs/configuration.md): a chat.completion (application/json) or, when the client
// asked to stream, a text/event-stream of one chat.completion.chunk and
// "data: [DONE]". With check_request, a body that cannot be read as a
// chat-completions request, or that could be read in two ways (see
// openai.ParseChatRequest), is answered 400 (413 over the route's size
// limit).
//
// # Response
//
// With check_response, the body filter checks responses with a 2xx status
// (error responses and exit responses pass unchanged). It checks each text
// the client gets on its own: per choice (by its "index"), the content, the
// refusal, the reasoning ("reasoning_content" or "reasoning"), and the
// arguments of each tool call (by its "index", assembled from a stream's
// fragments) and of a function call (see openai.EachText). Text from two
// choices or two fields is never joined, so it cannot make or break a match
// across them. Keys are read loosely ("Content" is read as "content", as
// some client decoders do), and a response whose object names one of these
// fields twice ("content" and "Content"), which clients may read
// differently, or which has more than 1024 such texts, is flagged without a
// check (with a warning).
//
//   - A non-streamed response is checked whole before anything is sent; when
//     flagged, the client gets the refusal chat.completion instead, with
//     status deny_code and the real token usage when it is known. ai-proxy
//     delivers such a body in one piece; one that arrives in several (from
//     a plain upstream) is held back until complete, up to 8 MiB, beyond
//     which it passes unchecked with a warning.
//   - A stream in realtime mode is checked as it passes, before each event
//     is sent, and once more at its end (on "data: [DONE]", or the end of
//     the body); no event is held back. When flagged before anything was
//     sent, the client gets the refusal stream with status deny_code;
//     afterwards, the flagged event and the rest of the stream are replaced
//     by a refusal chunk and "data: [DONE]", and the status stays 200.
//   - A stream in final_packet mode passes unchanged and each of its texts
//     is checked whole at its end; the verdict is recorded, not acted on.
//
// In realtime mode each pattern has a reach: the longest match it can make
// (4 characters for \bkill\b), or stream_check_cache_size when that has no
// bound (with *, + or {n,}, or over 65536 characters). Before an event is
// sent, a pattern is matched against each text that grew if sending the
// event would leave more than stream_check_cache_size - reach characters of
// the text unchecked by it (so at every event when its reach is the cache
// size or more). It sees a window: the text since its previous check,
// preceded by reach characters already checked. One character beyond each
// edge of the window is context a match may not take in: it makes \b, ^ and
// $ at the edges mean what they mean in the whole text, and it makes a
// check wait for the character after a match ("kill" followed by "er" in
// the next event is "killer", not "kill"). So:
//
//   - a match of at most reach + 1 characters (any match of a bounded
//     pattern) is always found;
//   - of the text past the start of a match found, at most
//     stream_check_cache_size characters reach the client (at most the
//     match itself if it is longer), whether or not the text has word
//     breaks;
//   - a longer match of an unbounded pattern is found only if it lies in one
//     window: bound the pattern ({0,200} rather than *) or raise
//     stream_check_cache_size;
//   - the work is linear in the length of the response: a check costs the
//     text since the previous one plus the reach and two characters, at
//     most once per event, and a text keeps only that tail.
//
// The endpoint, in realtime mode, is asked when a text has
// stream_check_cache_size new characters since it last saw it, and at the
// end about any rest; each call has one input per such text: its new
// characters, preceded by up to 64 characters it has already seen (so a
// word cut by a call boundary is seen whole). The text of a call (up to
// about stream_check_cache_size characters) reaches the client before the
// call that flags it.
//
// # Verdicts
//
// The plugin records its verdict under Verdict (read it with VerdictFrom)
// and, when ai-proxy has recorded the request's *llm.Info, in its
// Moderation field, which the access log prints: "refused" when it refused
// the prompt or the response, "flagged" or "passed" after a final_packet
// check, and "error" when the endpoint failed where that decided the outcome
// (fail_mode error) or in final_packet mode.
//
// The model of a refusal is the one ai-proxy sends upstream (LLMInfo.Model),
// else the request body's; whether the client streams is LLMInfo.Stream,
// else the body's "stream". Without ai-proxy the plugin reads them from the
// body itself. Per-request state lives in the request's values: a Plugin is
// shared by concurrent requests and never changes.
package aimoderation

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Name is the plugin's name in routes' plugins mappings and in logs.
const Name = "ai-content-moderation"

// priority places moderation after ai-proxy (1100), which validates the
// body and records the model, and after ai-prompt-guard (1070), whose
// rejections are cheaper than a moderation call.
const priority = 1050

// Verdicts, as recorded under Verdict and in llm.Info.Moderation.
const (
	VerdictRefused = "refused"
	VerdictFlagged = "flagged"
	VerdictPassed  = "passed"
	VerdictError   = "error"
)

// ErrorType is the error type of the 502 answered when the moderation
// endpoint fails and fail_mode is error.
const ErrorType = "moderation_error"

// MsgUnavailable is the message of that 502.
const MsgUnavailable = "content moderation is unavailable"

// Verdict is the request value holding the plugin's verdict (see the
// Verdict* constants); it is absent while there is none.
var Verdict = phases.NewKey[string]("moderation-verdict")

// VerdictFrom returns the verdict stored in v, or "".
func VerdictFrom(v *phases.Values) string {
	s, _ := Verdict.Get(v)
	return s
}

// maxBufferedBody bounds how much of a non-streamed response that arrives in
// several chunks is held back to be checked as a whole; a larger body is
// passed on unchecked, with a warning.
const maxBufferedBody = 8 << 20

// endpointOverlap is how many characters of already checked text precede
// the new text sent to the endpoint during a stream, so that a word cut by a
// check boundary is seen whole.
const endpointOverlap = 64

// Spec declares ai-content-moderation to the gateway's registry.
var Spec = pluginsdk.Typed(pluginsdk.Spec{Name: Name}, DefaultConfig,
	func(c Config, env pluginsdk.Env) (phases.Plugin, error) { return New(c, env) })

// Plugin is the ai-content-moderation plugin. It is immutable and safe for
// concurrent use.
type Plugin struct {
	patterns      []pattern
	api           *endpoint // nil without an endpoint
	failError     bool
	checkRequest  bool
	allMessages   bool
	anyRole       bool
	roles         []string
	checkResponse bool
	finalPacket   bool
	cacheSize     int
	denyCode      int
	denyMessage   string
	log           zerolog.Logger
}

// New builds the plugin from cfg, which must be valid (see
// Config.Validate). It calls the moderation endpoint through env.Transport
// (http.DefaultTransport when nil) and logs to env.Logger unless the
// request's context carries a logger (zerolog.Ctx).
func New(cfg Config, env pluginsdk.Env) (*Plugin, error) {
	if err := pluginsdk.ConfigError(Name, cfg.Validate()); err != nil {
		return nil, err
	}
	deny, _ := compile(cfg.DenyPatterns)
	p := &Plugin{
		failError:     cfg.Moderation.FailMode == FailError,
		checkRequest:  cfg.CheckRequest,
		allMessages:   cfg.RequestMessages == MessagesAll,
		checkResponse: cfg.CheckResponse,
		finalPacket:   cfg.StreamCheckMode == ModeFinalPacket,
		cacheSize:     cfg.StreamCheckCacheSize,
		denyCode:      cfg.DenyCode,
		denyMessage:   cfg.DenyMessage,
		log:           env.Logger,
	}
	for _, re := range deny {
		p.patterns = append(p.patterns, newPattern(re, p.cacheSize))
	}
	p.roles = slices.Clone(cfg.RequestRoles)
	p.anyRole = slices.Contains(p.roles, AnyRole)
	if cfg.Moderation.Endpoint != "" {
		p.api = newEndpoint(cfg.Moderation, env.Transport)
	}
	return p, nil
}

// Name implements phases.Plugin.
func (*Plugin) Name() string { return Name }

// Priority implements phases.Prioritized.
func (*Plugin) Priority() int { return priority }

// state is one request's moderation state, kept in its values.
type state struct {
	// model and stream are the request body's, read when there is no
	// LLMInfo.
	model  string
	stream bool

	done    bool              // the response needs no more checking
	texts   []*text           // the response's texts, in order of appearance
	index   map[textKey]*text // texts by key, once there are many
	flagged string            // why the response is flagged without a check
	scratch []byte            // working space of openai.EachText
	usage   openai.Usage      // the usage seen in the stream, without LLMInfo
	buf     []byte            // a non-streamed body held back so far

	// The door of a client that does not speak Chat, and what reads its
	// responses (doors.go).
	proto   llm.Protocol
	dec     llm.StreamDecoder
	events  []llm.Event
	blocks  []openai.TextKind // the kind of each open block, by index
	stopped bool              // the stream said why it stopped, or ended
	scanned int               // bytes given to the patterns and the endpoint
}

var stateKey = phases.NewKey[*state](Name)

// getState returns the request's state, creating it if the access hook did
// not run.
func getState(v *phases.Values) *state {
	st, ok := stateKey.Get(v)
	if !ok || st == nil {
		st = &state{}
		stateKey.Set(v, st)
	}
	return st
}

// Access implements phases.AccessHook: with check_request it refuses a
// flagged prompt. It also notes the body's model and stream flag for the
// body filter when ai-proxy has not recorded them.
func (p *Plugin) Access(ctx context.Context, r *phases.Request) phases.Exit {
	v := r.Values
	st := getState(v)
	st.proto = door.Of(r).Protocol
	info, _ := llm.InfoKey.Get(v)
	if !p.checkRequest && (info != nil || !p.checkResponse) {
		return phases.Exit{}
	}
	read := p.readChat
	if st.proto != llm.OpenAIChat {
		read = p.readNeutral
	}
	model, stream, texts, ex := read(r, p.checkRequest)
	if ex.Exited() {
		if !p.checkRequest {
			return phases.Exit{}
		}
		return ex
	}
	st.model, st.stream = model, stream
	if !p.checkRequest {
		return phases.Exit{}
	}
	return p.checkPrompt(ctx, v, st, info, texts)
}

// readChat reads a Chat request: its model, its stream flag and, when
// withTexts, the texts of its prompt that request_roles selects; or the
// exit that refuses it.
func (p *Plugin) readChat(r *phases.Request, withTexts bool) (string, bool, []string, phases.Exit) {
	_, req, ex := llm.ReadRequest(r, openai.ParseChatRequest)
	if ex.Exited() || !withTexts {
		return req.Model, req.Stream, nil, ex
	}
	return req.Model, req.Stream, p.requestTexts(&req), ex
}

// checkPrompt checks the texts of a prompt, and refuses it if flagged.
func (p *Plugin) checkPrompt(ctx context.Context, v *phases.Values, st *state, info *llm.Info, texts []string) phases.Exit {
	hit := p.matchStrings(texts)
	if !hit && p.api != nil && len(texts) > 0 {
		var err error
		hit, err = p.api.flagged(ctx, texts)
		if err != nil {
			if ctx.Err() != nil {
				return phases.Exit{} // the client is gone: the runner aborts
			}
			if ex, failed := p.endpointFailed(ctx, v, "request", err); failed {
				return ex
			}
		}
	}
	if !hit {
		return phases.Exit{}
	}
	setVerdict(v, VerdictRefused)
	model, stream := st.modelStream(info)
	return p.refusal(st, p.denyCode, model, stream, openai.Usage{})
}

// requestTexts returns the texts to check of a request: the definitions,
// then the texts of the selected messages in conversation order.
func (p *Plugin) requestTexts(req *openai.ChatRequest) []string {
	var texts []string
	for _, d := range req.Definitions {
		if d != "" {
			texts = append(texts, d)
		}
	}
	msgs := req.Messages
	from := 0
	if !p.allMessages {
		from = len(msgs)
		for i := len(msgs) - 1; i >= 0; i-- {
			if p.selected(&msgs[i]) {
				from = i
				break
			}
		}
	}
	for i := from; i < len(msgs); i++ {
		if p.selected(&msgs[i]) {
			texts = msgs[i].AppendTexts(texts)
		}
	}
	return texts
}

// selected reports whether m's role is one of request_roles, in any case.
func (p *Plugin) selected(m *openai.Message) bool { return p.selectedRole(m.Role) }

// selectedRole reports whether role is one of request_roles, in any case.
func (p *Plugin) selectedRole(role string) bool {
	return p.anyRole || slices.ContainsFunc(p.roles, func(r string) bool { return strings.EqualFold(r, role) })
}

func (p *Plugin) matchStrings(texts []string) bool {
	for _, t := range texts {
		if p.matchString(t) {
			return true
		}
	}
	return false
}

func (p *Plugin) matchString(text string) bool {
	for _, pat := range p.patterns {
		if mayMatch(&pat.pre, text) && pat.whole.MatchString(text) {
			return true
		}
	}
	return false
}

// BodyFilter implements phases.BodyFilter: with check_response it checks a
// 2xx response's text and refuses it, or records the verdict, as the
// package documentation describes.
func (p *Plugin) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	if !p.checkResponse || c.Exit || c.Status < 200 || c.Status > 299 {
		return phases.BodyResult{}
	}
	st := getState(c.Values)
	if st.done {
		return phases.BodyResult{}
	}
	if c.SSE {
		return p.streamEvent(ctx, c, st)
	}
	return p.wholeBody(ctx, c, st)
}

// wholeBody checks a non-streamed response. ai-proxy delivers it as one
// chunk with the end of the body; a body in several chunks is held back and
// checked once complete.
func (p *Plugin) wholeBody(ctx context.Context, c *phases.BodyChunk, st *state) phases.BodyResult {
	if !c.EOS {
		if len(st.buf)+len(c.Data) > maxBufferedBody {
			out := append(st.buf, c.Data...)
			st.buf, st.done = nil, true
			p.logger(ctx).Warn().Str("plugin", Name).Int("limit_bytes", maxBufferedBody).
				Msg("response too large to be held back: passed on without moderation")
			return phases.Replace(out)
		}
		st.buf = append(st.buf, c.Data...)
		return phases.Replace(nil)
	}
	st.done = true
	body, held := c.Data, len(st.buf) > 0
	if held {
		body = append(st.buf, c.Data...)
		st.buf = nil
	}
	pass := phases.BodyResult{}
	if held {
		pass = phases.Replace(body)
	}
	p.collect(st, body, false)
	hit, err := p.checkWhole(ctx, st)
	if err != nil {
		if ctx.Err() != nil {
			return pass // the client is gone: the runner aborts
		}
		if ex, failed := p.endpointFailed(ctx, c.Values, "response", err); failed {
			return phases.End(ex)
		}
	}
	p.warnFlagged(ctx, st)
	if !hit {
		return pass
	}
	v := c.Values
	setVerdict(v, VerdictRefused)
	info, _ := llm.InfoKey.Get(v)
	model, _ := st.modelStream(info)
	usage := usageOf(info)
	if !usage.Known {
		usage, _ = openai.ParseUsage(body)
	}
	return phases.End(p.refusal(st, p.denyCode, model, false, usage))
}

var doneEvent = []byte("[DONE]")

// streamEvent checks a stream, one event per call.
func (p *Plugin) streamEvent(ctx context.Context, c *phases.BodyChunk, st *state) phases.BodyResult {
	v := c.Values
	info, _ := llm.InfoKey.Get(v)
	ev := bytes.TrimSpace(c.Event)
	isDone := bytes.Equal(ev, doneEvent)
	if len(ev) > 0 && !isDone {
		p.collect(st, ev, true)
		if info == nil && bytes.Contains(ev, []byte(`"usage"`)) {
			if u, ok := openai.ParseUsage(ev); ok {
				st.usage = u
			}
		}
	}

	// The reply is complete at [DONE], or at the event that says why it
	// stopped on the other doors: checked before that event goes out.
	final := c.EOS || isDone || st.stopped
	if p.finalPacket {
		if final {
			st.done = true
			setVerdict(v, p.finalVerdict(ctx, st))
		}
		return phases.BodyResult{}
	}

	if final {
		st.done = true
	}
	hit, err := p.checkRealtime(ctx, st, final)
	if err != nil {
		if ctx.Err() != nil {
			return phases.BodyResult{} // the client is gone: the runner aborts
		}
		if ex, failed := p.endpointFailed(ctx, v, "response", err); failed {
			st.done = true
			return phases.End(ex)
		}
	}
	if !hit {
		return phases.BodyResult{}
	}
	p.warnFlagged(ctx, st)
	st.done = true
	setVerdict(v, VerdictRefused)
	model, _ := st.modelStream(info)
	usage := usageOf(info)
	if !usage.Known {
		usage = st.usage
	}
	if !c.HeadersSent {
		return phases.End(p.refusal(st, p.denyCode, model, true, usage))
	}
	if st.proto != llm.OpenAIChat {
		// The request's renderer ends the stream in its protocol, with
		// stop reason refusal and the message as the last text.
		return phases.End(phases.Error(http.StatusOK, door.TypeRefusal, p.denyMessage))
	}
	// The runner frames the body as the stream's last event and adds
	// "data: [DONE]"; the status is already sent.
	return phases.End(phases.Reply(http.StatusOK, sseHeader(), openai.RefusalChunk(model, p.denyMessage, usage)))
}

// finalVerdict checks a stream's whole texts once, in final_packet mode.
func (p *Plugin) finalVerdict(ctx context.Context, st *state) string {
	hit, err := p.checkWhole(ctx, st)
	p.warnFlagged(ctx, st)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			p.logger(ctx).Warn().Str("plugin", Name).Str("checking", "response").Err(err).
				Msg("moderation endpoint failed: the final_packet verdict is unknown")
		}
		return VerdictError
	case hit:
		return VerdictFlagged
	}
	return VerdictPassed
}

// warnFlagged logs why a response was flagged without a check.
func (p *Plugin) warnFlagged(ctx context.Context, st *state) {
	if st.flagged != "" {
		p.logger(ctx).Warn().Str("plugin", Name).Msg(st.flagged + ": flagged")
	}
}

// endpointFailed handles a failed endpoint call: with fail_mode skip it logs
// a warning and returns false (go on); with fail_mode error it records the
// verdict and returns the 502 exit.
func (p *Plugin) endpointFailed(ctx context.Context, v *phases.Values, side string, err error) (phases.Exit, bool) {
	if !p.failError {
		p.logger(ctx).Warn().Str("plugin", Name).Str("checking", side).Err(err).
			Msg("moderation endpoint failed: not checked by it (fail_mode skip)")
		return phases.Exit{}, false
	}
	p.logger(ctx).Error().Str("plugin", Name).Str("checking", side).Err(err).
		Msg("moderation endpoint failed: answering 502 (fail_mode error)")
	setVerdict(v, VerdictError)
	return phases.Error(http.StatusBadGateway, ErrorType, MsgUnavailable), true
}

// refusal is the complete refusal response: a chat.completion, or a stream
// of one chunk and [DONE].
func (p *Plugin) refusal(st *state, status int, model string, stream bool, usage openai.Usage) phases.Exit {
	if st.proto != llm.OpenAIChat {
		h, body := door.Refusal(st.proto, model, p.denyMessage, stream, neutralUsage(usage))
		return phases.Reply(status, h, body)
	}
	if stream {
		return phases.Reply(status, sseHeader(), openai.RefusalStream(model, p.denyMessage, usage))
	}
	return phases.Reply(status, http.Header{"Content-Type": {"application/json"}}, openai.RefusalCompletion(model, p.denyMessage, usage))
}

func sseHeader() http.Header {
	return http.Header{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
}

// modelStream returns the request's model and whether the client streams:
// ai-proxy's record, else the body's.
func (st *state) modelStream(info *llm.Info) (string, bool) {
	if info != nil {
		model := info.Model
		if model == "" {
			model = st.model
		}
		return model, info.Stream
	}
	return st.model, st.stream
}

// usageOf returns the usage ai-proxy recorded, if any.
func usageOf(info *llm.Info) openai.Usage {
	if info == nil || !info.UsageKnown {
		return openai.Usage{}
	}
	return openai.Usage{
		Known:            true,
		PromptTokens:     info.PromptTokens,
		CompletionTokens: info.CompletionTokens,
		TotalTokens:      info.PromptTokens + info.CompletionTokens,
		CachedTokens:     info.CachedTokens,
		ReasoningTokens:  info.ReasoningTokens,
	}
}

// setVerdict records verdict for the log.
func setVerdict(v *phases.Values, verdict string) { Verdict.Set(v, verdict) }

// LogFields adds the verdict to the access log as "moderation", on
// requests an AI upstream served (docs/metrics.md).
func (p *Plugin) LogFields(s *phases.Summary, ev *zerolog.Event) {
	if info, ok := llm.InfoKey.Get(s.Values); !ok || info == nil {
		return
	}
	if verdict, _ := Verdict.Get(s.Values); verdict != "" {
		ev.Str("moderation", verdict)
	}
}

// logger is the request's logger when its context has one, else the
// gateway's.
func (p *Plugin) logger(ctx context.Context) *zerolog.Logger {
	if l := zerolog.Ctx(ctx); l.GetLevel() != zerolog.Disabled {
		return l
	}
	return &p.log
}

// Interface guards.
var (
	_ phases.AccessHook  = (*Plugin)(nil)
	_ phases.BodyFilter  = (*Plugin)(nil)
	_ phases.Prioritized = (*Plugin)(nil)
)
