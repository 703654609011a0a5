package provider

import (
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/httpx"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Messages of the access phase's 400s and 413s.
const (
	MsgContentType = "Content-Type must be application/json"
	MsgNoModel     = "you must provide a model parameter"
	MsgTooLarge    = llm.MsgTooLarge
	MsgUnreadable  = llm.MsgUnreadable
)

// ErrorTypeInvalidRequest is the error type of the access phase's errors.
const ErrorTypeInvalidRequest = llm.TypeInvalidRequest

// Proxy is a route's AI upstream front, shared by its requests: it
// validates requests (Access), runs the upstream phase over instances its
// caller picks (Serve) and records the LLM metrics (Log). Set its fields
// before use and do not change them afterwards; it is then safe for
// concurrent use. Per-request state lives in the request's values.
type Proxy struct {
	// Route is the route label of the LLM metrics; "" means the request's
	// route.
	Route string
	// Metrics is the gateway's metric set; nil records nothing.
	Metrics *metrics.Set
	// Logger logs fallbacks (the request context's zerolog logger is
	// preferred when it has one).
	Logger zerolog.Logger
	// Model returns the model that will be sent for a client that asked
	// for client, as recorded in LLMInfo during access, or "" if there is
	// none (the request is then answered 400). Required.
	Model func(client string) string
	// Instance is LLMInfo.Instance during access, until an attempt sets it.
	// ClientProtocol is the route's client_protocol: door.Auto (or "")
	// picks the protocol by the request path, a protocol name fixes it.
	ClientProtocol string
	Instance       string
}

// call is one request's state, kept in its values.
type call struct {
	info        *llm.Info
	door        *door.Door
	req         *llm.Request // the neutral reading, for a door other than Chat or a translation
	body        []byte       // the body access parsed
	clientModel string
	stream      bool
	final       *attempt // the attempt whose response the client gets
	recorded    bool
}

var callKey = phases.NewKey[*call]("provider")

func (c *call) requestType() string {
	if c.stream {
		return metrics.RequestTypeStream
	}
	return metrics.RequestTypeChat
}

// setNeutralUsage records the usage of a neutral reply.
func (c *call) setNeutralUsage(u llm.Usage) {
	c.setUsage(openai.Usage{Known: true, PromptTokens: int(u.InputTokens), CompletionTokens: int(u.OutputTokens),
		CachedTokens: int(u.CacheReadTokens), ReasoningTokens: int(u.ReasoningTokens)})
}

func (c *call) setUsage(u openai.Usage) {
	c.info.UsageKnown = true
	c.info.PromptTokens = u.PromptTokens
	c.info.CompletionTokens = u.CompletionTokens
	c.info.CachedTokens = u.CachedTokens
	c.info.ReasoningTokens = u.ReasoningTokens
}

func (p *Proxy) route(r *phases.Request) string {
	if p.Route != "" {
		return p.Route
	}
	return r.Route
}

// Access enters the request's door (door.Enter under ClientProtocol: its
// errors are answered in the door's protocol from then on), validates the
// client's request and records its *llm.Info under llm.InfoKey: Content-Type
// application/json
// (parameters allowed), a body within the route's limit
// (Request.MaxBodyBytes, which the plugins set from their
// max_request_body_bytes; 413 beyond), a valid JSON object whose known
// fields have the right types, and a model (the client's or one set by
// options). Problems are answered with 400s and 413s in the door's shape.
//
// The body must also have a single reading: no duplicate keys, and no key
// that differs from a field the gateway reads only in case, dashes or
// underscores (see openai.ParseChatRequest and door.Read). Every AI route runs this,
// whatever its other plugins, so none of them can inspect one reading of a
// body while the upstream acts on another.
func (p *Proxy) Access(r *phases.Request) phases.Exit {
	d := door.Enter(r, p.ClientProtocol)
	if !httpx.IsMediaType(r.Header.Get("Content-Type"), "application/json") {
		return llm.Refuse(http.StatusBadRequest, MsgContentType)
	}
	c := &call{door: d}
	if d.Protocol == llm.OpenAIChat {
		body, req, ex := llm.ReadRequest(r, openai.ParseChatRequest)
		if ex.Exited() {
			return ex
		}
		c.body, c.clientModel, c.stream = body, req.Model, req.Stream
	} else {
		req, _, ex := door.Read(r)
		if ex.Exited() {
			return ex
		}
		c.body, _ = r.Body()
		c.req, c.clientModel, c.stream = req, req.Model, req.Stream && !d.CountTokens
	}
	model := p.Model(c.clientModel)
	if model == "" {
		return llm.Refuse(http.StatusBadRequest, MsgNoModel)
	}
	c.info = &llm.Info{Model: model, Instance: p.Instance, Stream: c.stream, ClientProtocol: d.Protocol}
	v := r.Values
	llm.InfoKey.Set(v, c.info)
	callKey.Set(v, c)
	return phases.Exit{}
}

func (p *Proxy) logFallback(r *phases.Request, f Failure) {
	ev := p.Logger.Warn().Str("request_id", pluginsdk.Get(r.Values, pluginsdk.RequestID)).Str("instance", f.Instance.name)
	if f.Status != 0 {
		ev = ev.Int("status", f.Status)
	} else {
		ev = ev.Bool("timeout", f.Timeout).Str("error", fmt.Sprint(f.Err))
	}
	ev.Msg("llm upstream attempt failed, falling back")
}

func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}

// Log records the request's LLM metrics from its final state, once: the
// token counters when usage is known, the duration when the final
// attempt's status is below 400, the time to first token for a stream that
// produced one. A request that made no attempt records nothing.
func (p *Proxy) Log(s *phases.Summary) {
	c, ok := callKey.Get(s.Values)
	if !ok || c == nil || c.recorded {
		return
	}
	c.recorded = true
	a := c.final
	if p.Metrics == nil || a == nil || a.sent.IsZero() {
		return
	}
	route := p.Route
	if route == "" {
		route = s.Route
	}
	m := p.Metrics
	model := a.label
	labels := []string{route, a.in.name, model, c.requestType()}
	m.LLMRequests.WithLabelValues(route, a.in.name, string(c.door.Protocol), string(a.in.protocol)).Inc()
	if c.info.UsageKnown {
		m.LLMPromptTokens.WithLabelValues(labels...).Add(float64(max(c.info.PromptTokens, 0)))
		m.LLMCompletionTokens.WithLabelValues(labels...).Add(float64(max(c.info.CompletionTokens, 0)))
	}
	if a.status > 0 && a.status < http.StatusBadRequest {
		end := a.end
		if end.IsZero() {
			end = time.Now()
		}
		a.observe(m.LLMDuration.WithLabelValues(labels...), end.Sub(a.sent).Seconds())
	}
	if a.sse && a.firstToken {
		m.LLMTimeToFirstToken.WithLabelValues(route, a.in.name, model).Observe(a.ttft.Seconds())
	}
}
