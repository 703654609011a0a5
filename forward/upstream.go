package forward

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/phasegate/phasegate/forward/wrr"
	"github.com/phasegate/phasegate/httpx"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Name is the plugin name of every Upstream, as logs, metrics and traces
// show it.
const Name = "upstream"

// Upstream proxies a route's requests to its nodes. It implements
// phases.Upstream and is safe for concurrent use.
type Upstream struct {
	cfg       Config
	addrs     []string // the nodes' addresses, sorted: ties go to the first
	nodes     *wrr.Balancer
	transport http.RoundTripper
}

var _ phases.Upstream = (*Upstream)(nil)

// New returns the upstream of a route with the given `upstream:` block
// (defaults applied to a copy; an invalid block is an error), calling its
// nodes through transport, normally the gateway's shared NewTransport.
func New(cfg Config, transport http.RoundTripper) (*Upstream, error) {
	if transport == nil {
		return nil, errors.New("proxy: nil transport")
	}
	cfg.SetDefaults()
	if err := pluginsdk.ConfigError(Name, cfg.Validate()); err != nil {
		return nil, err
	}
	cfg.Nodes = maps.Clone(cfg.Nodes)
	addrs := slices.Sorted(maps.Keys(cfg.Nodes))
	weights := make([]int, len(addrs))
	for i, a := range addrs {
		weights[i] = cfg.Nodes[a]
	}
	return &Upstream{cfg: cfg, addrs: addrs, nodes: wrr.New(weights), transport: transport}, nil
}

// Name returns "upstream".
func (u *Upstream) Name() string { return Name }

// errTimedOut is the cause an upstream call's context is cancelled with when
// its timer fires.
var errTimedOut = errors.New("proxy: upstream timed out")

// TimeoutError is the error of an upstream call that timed out (see
// Config.Timeout): the runner answers 504, or aborts a started response.
type TimeoutError = httpx.TimeoutError

// Upstream sends r to the next node and returns its response, whatever its
// status, with a body streamed as it arrives. A request body over the
// route's limit (Request.MaxBodyBytes) is answered 413. Errors are the
// transport's (the runner answers 502), a *BadResponseError for a response
// no client may get (502; see Watch.Check), a *TimeoutError (504, or an
// aborted response) or, when the client has gone, whatever the cancelled
// call returned (the runner aborts).
func (u *Upstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	if _, n := r.BodyReader(); n > r.MaxBodyBytes {
		// A body declared too large is refused before any node is called; a
		// chunked one that runs over fails its read, and the runner answers
		// 413 then.
		return nil, &phases.ExitError{Exit: phases.Error(http.StatusRequestEntityTooLarge, "invalid_request_error", phases.ErrBodyTooLarge.Error())}
	}
	node := u.addrs[u.nodes.Next(nil)]
	reqCtx := ctx // the client's: its end means the client has gone
	ctx, cancel := context.WithCancelCause(ctx)
	ctx, watch := WatchResponse(ctx, r.Method)
	out := u.outgoing(ctx, node, r)
	at := traceAttempt(reqCtx, r, out, node)
	timer := time.AfterFunc(u.cfg.Timeout, func() { cancel(errTimedOut) })
	resp, err := u.transport.RoundTrip(out)
	timer.Stop()
	if err != nil {
		err = u.translate(ctx, err, node, false)
		cancel(err)
		at.failed(err)
		at.end()
		return nil, err
	}
	if err := watch.Check(resp); err != nil {
		// Closed before its end, the connection is not reused.
		_ = resp.Body.Close()
		err = &BadResponseError{Upstream: node, Err: err}
		cancel(err)
		at.failed(err)
		at.end()
		return nil, err
	}
	at.answered(resp.StatusCode)
	return &phases.Response{
		Status: resp.StatusCode,
		Header: httpx.StripHop(resp.Header), // the response is ours alone
		Body: &body{
			ctx:     ctx,
			cancel:  cancel,
			timer:   timer,
			timeout: u.cfg.Timeout,
			node:    node,
			rc:      resp.Body,
			u:       u,
			at:      at,
		},
	}, nil
}

// outgoing builds the request to node.
func (u *Upstream) outgoing(ctx context.Context, node string, r *phases.Request) *http.Request {
	src := r.URL
	target := &url.URL{
		Scheme:   u.cfg.Scheme,
		Host:     node,
		Path:     src.Path,
		RawPath:  src.RawPath,
		RawQuery: src.RawQuery,
	}
	if target.Path == "" {
		target.Path, target.RawPath = "/", ""
	}
	out := httpx.Outgoing(ctx, r.Method, target, nil)
	if body, n := r.BodyReader(); n != 0 {
		// The transport closes the body it is given; the client's body
		// belongs to the server.
		// A known length is read through a LimitReader, so the transport's
		// check for bytes beyond it ends at EOF instead of reading the
		// client's body again: net/http closes that body once the response
		// has started, and the failed read would cut a streaming response.
		if n > 0 {
			body = io.LimitReader(body, n)
		}
		out.Body = io.NopCloser(body)
		out.ContentLength = n
	}
	h := httpx.EndToEnd(r.Header)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // not the transport's default
	}
	setForwarded(h, r.RemoteAddr, r.TLS, r.Host)
	out.Header = h
	if u.cfg.PassHost == "pass" && r.Host != "" {
		out.Host = r.Host
	} else {
		out.Host = node
	}
	return out
}

// translate turns the error of a call whose context ctx is into a
// *TimeoutError if its timer cancelled it. Anything else, including the
// client's cancellation, is returned as is.
func (u *Upstream) translate(ctx context.Context, err error, node string, inBody bool) error {
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), errTimedOut) {
		return &TimeoutError{Upstream: node, Body: inBody, After: u.cfg.Timeout}
	}
	return err
}

// bufPool holds the read buffers of response bodies.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// body is an upstream response body: each Next is one Read of the upstream's
// body, bounded by the timeout.
type body struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	timeout time.Duration
	node    string
	rc      io.ReadCloser
	u       *Upstream
	at      *attemptSpan // the call's span, nil when untraced

	buf    *[]byte
	err    error // returned by the call after the data it came with
	closed bool
}

// Next returns what the next Read of the upstream's body yields: a chunk as
// soon as any bytes arrive, the last chunk with io.EOF, or an error
// (a *TimeoutError if the upstream sent nothing for the timeout).
func (b *body) Next() (phases.Chunk, error) {
	if b.err != nil {
		return phases.Chunk{}, b.err
	}
	if b.closed {
		return phases.Chunk{}, errors.New("proxy: read of a closed body")
	}
	if b.buf == nil {
		b.buf = bufPool.Get().(*[]byte)
	}
	for {
		b.timer.Reset(b.timeout)
		n, err := b.rc.Read(*b.buf)
		b.timer.Stop()
		if err != nil && err != io.EOF {
			err = b.u.translate(b.ctx, err, b.node, true)
		}
		b.at.read(err)
		if n > 0 {
			if err == io.EOF {
				return phases.Chunk{Data: (*b.buf)[:n]}, io.EOF
			}
			b.err = err
			return phases.Chunk{Data: (*b.buf)[:n]}, nil
		}
		if err != nil {
			b.err = err
			return phases.Chunk{}, err
		}
	}
}

// Close stops the timer, closes the upstream's body and cancels the call
// (at once, if it is still running).
func (b *body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(context.Canceled)
	b.at.end()
	if b.buf != nil {
		bufPool.Put(b.buf)
		b.buf = nil
	}
	return err
}
