package llmproxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/internal/httpx"
	"github.com/phasegate/phasegate/internal/openai"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/requestid"
)

// Messages of the access phase's 400s and 413s.
const (
	MsgContentType = "Content-Type must be application/json"
	MsgNoModel     = "you must provide a model parameter"
	MsgTooLarge    = "request body too large"
	MsgUnreadable  = "could not read the request body"
)

// ErrorTypeInvalidRequest is the error type of the access phase's errors.
const ErrorTypeInvalidRequest = "invalid_request_error"

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
	Instance string
}

// call is one request's state, kept in its values.
type call struct {
	info        *phases.LLMInfo
	body        []byte // the body access parsed
	clientModel string
	stream      bool
	final       *attempt // the attempt whose response the client gets
	recorded    bool
}

var callKey = phases.NewKey[*call]("llmproxy")

func (c *call) requestType() string {
	if c.stream {
		return metrics.RequestTypeStream
	}
	return metrics.RequestTypeChat
}

// begin makes a the request's current attempt.
func (c *call) begin(a *attempt) {
	c.final = a
	c.info.Attempts++
	c.info.Instance = a.in.name
	c.info.Model = a.model
	c.info.UsageKnown = false
	c.info.PromptTokens, c.info.CompletionTokens = 0, 0
	c.info.CachedTokens, c.info.ReasoningTokens = 0, 0
	c.info.TTFT = 0
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
	return r.Route()
}

func invalid(status int, msg string) phases.Exit {
	return phases.Error(status, ErrorTypeInvalidRequest, msg)
}

// Access validates the client's chat-completions request and records its
// *phases.LLMInfo under phases.LLM: Content-Type application/json
// (parameters allowed), a body within the route's limit
// (Request.MaxBodyBytes, which the plugins set from their
// max_request_body_bytes; 413 beyond), a valid JSON object whose known
// fields have the right types, and a model (the client's or one set by
// options). Problems are answered with OpenAI-shaped 400s and 413s.
//
// The body must also have a single reading: no duplicate keys, and no key
// that differs from a field the gateway reads only in case, dashes or
// underscores (see openai.ParseChatRequest). Every AI route runs this,
// whatever its other plugins, so none of them can inspect one reading of a
// body while the upstream acts on another.
func (p *Proxy) Access(r *phases.Request) phases.Exit {
	if !httpx.IsMediaType(r.Header().Get("Content-Type"), "application/json") {
		return invalid(http.StatusBadRequest, MsgContentType)
	}
	body, err := r.Body()
	switch {
	case errors.Is(err, phases.ErrBodyTooLarge):
		return invalid(http.StatusRequestEntityTooLarge, MsgTooLarge)
	case err != nil:
		return invalid(http.StatusBadRequest, MsgUnreadable)
	}
	req, err := openai.ParseChatRequest(body)
	if err != nil {
		return invalid(http.StatusBadRequest, err.Error())
	}
	model := p.Model(req.Model)
	if model == "" {
		return invalid(http.StatusBadRequest, MsgNoModel)
	}
	info := &phases.LLMInfo{Model: model, Instance: p.Instance, Stream: req.Stream}
	v := r.Values()
	phases.LLM.Set(v, info)
	callKey.Set(v, &call{info: info, body: body, clientModel: req.Model, stream: req.Stream})
	return phases.Exit{}
}

// Failure is a failed attempt, as Serve's eligible function sees it.
type Failure struct {
	// Instance is the instance that failed.
	Instance *Instance
	// Status is the upstream's status when it answered (≥ 400), else 0.
	Status int
	// Timeout reports that the upstream did not answer in time.
	Timeout bool
	// Err is the network error, timeout or malformed response when the
	// upstream did not answer usably.
	Err error
}

// Network reports whether the upstream did not answer usably (a network
// error, a timeout or a malformed response).
func (f Failure) Network() bool { return f.Status == 0 }

// Serve runs the upstream phase of r: an attempt on the instance next
// returns, then, while eligible accepts the failure of the previous
// attempt, on the next one next returns (nil: no more; a nil eligible never
// falls back). Fallback happens only here, before anything is sent to the
// client.
//
// It returns the response of the first attempt that succeeds (status below
// 400), or of one whose failure is not eligible, as it is; a failure that
// is not eligible is returned at once. When every attempt failed, it
// returns the last answer an upstream gave (status and body as they were),
// else the last error (504 for a timeout, 502 otherwise). The client
// leaving, and an exit of an instance's cap, end it at once.
func (p *Proxy) Serve(ctx context.Context, r *phases.Request, next func() *Instance, eligible func(Failure) bool) (*phases.Response, error) {
	c, ok := callKey.Get(r.Values())
	if !ok || c == nil {
		// The access hook did not run (a chain built without it).
		if ex := p.Access(r); ex.Exited() {
			return nil, &phases.ExitError{Exit: ex}
		}
		c, _ = callKey.Get(r.Values())
	}
	body, err := r.Body()
	if err != nil {
		return nil, &phases.ExitError{Exit: invalid(http.StatusBadRequest, MsgUnreadable)}
	}
	if !sameBytes(body, c.body) {
		// A later access hook replaced the body: take its model and stream.
		req, err := openai.ParseChatRequest(body)
		if err != nil {
			return nil, &phases.ExitError{Exit: invalid(http.StatusBadRequest, err.Error())}
		}
		c.body, c.clientModel, c.stream = body, req.Model, req.Stream
		c.info.Stream = req.Stream
	}

	var kept *phases.Response // the last answer left for a fallback
	var keptAttempt *attempt
	var lastErr error
	in := next()
	for in != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		resp, err := in.do(ctx, r, p, c, body)
		var f Failure
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			if _, isExit := phases.AsExit(err); isExit {
				return nil, err
			}
			var te *TimeoutError
			f = Failure{Instance: in, Timeout: errors.As(err, &te), Err: err}
		} else {
			if resp.Status < http.StatusBadRequest {
				return resp, nil
			}
			f = Failure{Instance: in, Status: resp.Status}
		}
		if eligible == nil || !eligible(f) {
			return resp, err
		}
		following := next()
		if following == nil {
			if err == nil {
				return resp, nil // the last answer, as it is
			}
			lastErr = err
			break
		}
		if err == nil {
			// The body is complete (error statuses are read whole): keep
			// it, and end the attempt now so that its gauge falls at once.
			wb := resp.Body.(*wholeBody)
			wb.a.close()
			kept, keptAttempt, lastErr = resp, wb.a, nil
		} else {
			lastErr = err
		}
		p.logFallback(r, f)
		in = following
	}
	if kept != nil {
		c.restore(keptAttempt)
		return kept, nil
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, errors.New("llmproxy: no upstream instance to try")
}

// restore makes a, a failed attempt whose answer is returned after all,
// the request's attempt again.
func (c *call) restore(a *attempt) {
	c.final = a
	c.info.Instance = a.in.name
	c.info.Model = a.model
	c.info.UsageKnown = false
	c.info.PromptTokens, c.info.CompletionTokens = 0, 0
	c.info.CachedTokens, c.info.ReasoningTokens = 0, 0
	c.info.TTFT = 0
}

// logFallback warns that an attempt failed and the next instance is tried.
// p.Logger already carries the route.
func (p *Proxy) logFallback(r *phases.Request, f Failure) {
	ev := p.Logger.Warn().Str("request_id", requestid.From(r.Values())).Str("instance", f.Instance.name)
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
	c, ok := callKey.Get(s.Values())
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
	if c.info.UsageKnown {
		m.LLMPromptTokens.WithLabelValues(labels...).Add(float64(max(c.info.PromptTokens, 0)))
		m.LLMCompletionTokens.WithLabelValues(labels...).Add(float64(max(c.info.CompletionTokens, 0)))
	}
	if a.status > 0 && a.status < http.StatusBadRequest {
		end := a.end
		if end.IsZero() {
			end = time.Now()
		}
		m.LLMDuration.WithLabelValues(labels...).Observe(end.Sub(a.sent).Seconds())
	}
	if a.sse && a.firstToken {
		m.LLMTimeToFirstToken.WithLabelValues(route, a.in.name, model).Observe(a.ttft.Seconds())
	}
}
