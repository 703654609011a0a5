package provider

// One upstream attempt of an AI request: its scope, which holds the
// attempt's in-flight gauge and ends with the attempt, and the fallback loop
// that makes attempts one after another. docs/testing.md: this file is the
// "LLM attempt scope" that make mutate covers.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/httpx"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/llm/openai"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/phases"
)

// AttemptScope is the name of the child scope of one upstream attempt, as
// ledgers and traces show it.
const AttemptScope = "llm attempt"

// attempt is one upstream attempt of a request. It is touched only from
// the request's goroutine.
type attempt struct {
	in     *Instance
	model  string     // the model sent
	label  string     // its model label (bounded per route), once the gauge is acquired
	scope  *fsm.Scope // nil until the gauge is acquired
	sent   time.Time
	end    time.Time
	status int // 0 until the upstream answered
	sse    bool

	firstToken bool
	ttft       time.Duration

	trace *attemptTrace // the attempt's span, when the request is traced (trace.go)
}

// finish records the end of the attempt's body, once.
func (a *attempt) finish() {
	if a.end.IsZero() {
		a.end = time.Now()
	}
}

// close ends the attempt: its scope closes, releasing its gauge.
func (a *attempt) close() {
	a.finish()
	if a.scope != nil {
		a.scope.Close()
	}
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
	c, ok := callKey.Get(r.Values)
	if !ok || c == nil {
		// The access hook did not run (a chain built without it).
		if ex := p.Access(r); ex.Exited() {
			return nil, &phases.ExitError{Exit: ex}
		}
		c, _ = callKey.Get(r.Values)
	}
	body, err := r.Body()
	if err != nil {
		return nil, &phases.ExitError{Exit: llm.Refuse(http.StatusBadRequest, MsgUnreadable)}
	}
	if !sameBytes(body, c.body) {
		// A later access hook replaced the body: take its model and stream.
		if err := c.reread(body); err != nil {
			return nil, &phases.ExitError{Exit: llm.Refuse(http.StatusBadRequest, err.Error())}
		}
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
		var refused *RefusedError
		if errors.As(err, &refused) {
			// Nothing was sent: skip the instance, or answer with the
			// gate's exit when none is left and none answered.
			if in = next(); in == nil && kept == nil {
				return nil, &phases.ExitError{Exit: refused.Exit}
			}
			if in == nil {
				break
			}
			p.logSkip(r, refused)
			continue
		}
		var f Failure
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			if ee := (*phases.ExitError)(nil); errors.As(err, &ee) {
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
		c.use(keptAttempt)
		return kept, nil
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, errors.New("provider: no upstream instance to try")
}

// begin makes a the request's current attempt.
func (c *call) begin(a *attempt) {
	c.info.Attempts++
	c.use(a)
}

// use makes a the attempt whose answer the client gets, as LLMInfo
// describes it, its usage not known yet. Serve also uses it to restore a
// failed attempt whose answer is returned after all.
// reread reads a body a hook replaced after access.
func (c *call) reread(body []byte) error {
	if c.door.Protocol == llm.OpenAIChat {
		req, err := openai.ParseChatRequest(body)
		if err != nil {
			return err
		}
		c.req, c.clientModel, c.stream = nil, req.Model, req.Stream
	} else {
		req, err := door.Decode(c.door.Protocol, body)
		if err != nil {
			return err
		}
		c.req, c.clientModel, c.stream = req, req.Model, req.Stream && !c.door.CountTokens
	}
	c.body = body
	c.info.Stream = c.stream
	return nil
}

func (c *call) use(a *attempt) {
	c.final = a
	c.info.Instance = a.in.name
	c.info.ProviderProtocol = a.in.protocol
	c.info.Model = a.model
	c.info.UsageKnown = false
	c.info.PromptTokens, c.info.CompletionTokens = 0, 0
	c.info.CachedTokens, c.info.ReasoningTokens = 0, 0
	c.info.TTFT = 0
}

// do performs one attempt of the request c for r on the instance with
// payload body (the body the access phase left), and returns the
// upstream's response, whatever its status, or an error: a *TimeoutError,
// a network error, an *phases.ExitError (a response over the size cap, a
// body that cannot be rewritten) or, when the client has gone, whatever
// the cancelled call returned. On error, the attempt's scope is closed
// before do returns; otherwise the response body's Close closes it.
func (in *Instance) do(ctx context.Context, r *phases.Request, p *Proxy, c *call, body []byte) (*phases.Response, error) {
	if c.door.CountTokens && in.protocol != llm.AnthropicMessages {
		return c.estimate(in), nil
	}
	a := &attempt{in: in, model: in.Model(c.clientModel)}
	if err := in.admit(ctx, r, a); err != nil {
		return nil, err
	}
	c.begin(a)
	payload, err := c.payload(in, body, a.model)
	if err != nil {
		a.close()
		return nil, payloadExit(err)
	}
	actx, cancel := context.WithCancelCause(ctx)
	actx, watch := forward.WatchResponse(actx, http.MethodPost)
	out := in.outgoing(actx, r, payload, c.door.CountTokens)

	// The in-flight gauge: one binding per attempt, on the attempt's own
	// scope (opened by admit when the request has a gate), with the labels
	// of this attempt captured now.
	if a.scope == nil {
		a.scope = r.Scope.Child(AttemptScope)
	}
	if p.Metrics != nil {
		a.label = p.Metrics.ModelLabel(p.route(r), a.model)
		phases.BoundGauge{Name: metrics.NameLLMActive, Vec: p.Metrics.LLMActive}.
			Acquire(a.scope, p.route(r), in.name, a.label, c.requestType())
	}

	in.traceAttempt(ctx, actx, a, c, out)
	a.sent = time.Now()
	timer := time.AfterFunc(in.timeout, func() { cancel(errTimedOut) })
	resp, err := in.transport.RoundTrip(out)
	timer.Stop()
	if err != nil {
		err = in.translate(actx, err, false)
		cancel(context.Canceled)
		a.close()
		return nil, err
	}
	if err := watch.Check(resp); err != nil {
		_ = resp.Body.Close() // before its end: the connection is not reused
		cancel(context.Canceled)
		a.close()
		return nil, &forward.BadResponseError{Upstream: in.name, Err: err}
	}
	a.status = resp.StatusCode
	header := httpx.StripHop(resp.Header) // the response is ours alone
	// The provider's cookies belong to the gateway's account with it, not
	// to the client: they never reach the client.
	header.Del("Set-Cookie")
	if resp.StatusCode < http.StatusBadRequest && httpx.IsSSE(header) {
		a.sse = true
		header.Del("Content-Length")
		body := in.newStream(actx, cancel, timer, resp.Body, a, c)
		body.follow()
		return &phases.Response{
			Status: resp.StatusCode,
			Header: header,
			Body:   body,
			SSE:    true,
		}, nil
	}

	data, err := in.readAll(actx, timer, resp.Body, resp.ContentLength)
	_ = resp.Body.Close()
	cancel(context.Canceled)
	a.finish()
	if err == nil {
		// Read whole, a body longer than its Content-Length is caught
		// before anything is sent.
		if ferr := watch.Err(); ferr != nil {
			err = &forward.BadResponseError{Upstream: in.name, Err: ferr}
		}
	}
	if err != nil {
		a.traceFailed(err)
		a.close()
		return nil, err
	}
	if resp.StatusCode < http.StatusBadRequest {
		a.traceResponse(data)
	}
	if data, err = c.whole(in, resp.StatusCode, header, data); err != nil {
		a.close()
		return nil, err
	}
	if bodyAllowed(resp.StatusCode) {
		header.Set("Content-Length", strconv.Itoa(len(data)))
	}
	return &phases.Response{Status: resp.StatusCode, Header: header, Body: &wholeBody{data: data, a: a}}, nil
}

// wholeBody is a body read whole before the response is handed on: one
// chunk together with io.EOF, so that body filters see all of it before
// anything is sent. Closing it ends its attempt.
type wholeBody struct {
	data []byte
	a    *attempt
	done bool
}

func (b *wholeBody) Next() (phases.Chunk, error) {
	if b.done {
		return phases.Chunk{}, io.EOF
	}
	b.done = true
	return phases.Chunk{Data: b.data}, io.EOF
}

func (b *wholeBody) Close() error {
	b.a.close()
	return nil
}
