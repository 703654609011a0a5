package phases

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"runtime"
	"sync"
	"time"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/httpx"
	"github.com/phasegate/phasegate/sse"
)

// statusClientClosed is the status recorded (never sent) for a request whose
// client went away before a response started, as nginx and Caddy do.
const statusClientClosed = 499

// upstreamBody is the name, in ledgers, of the binding that closes the
// upstream response's body: released when its stream ends, when an exit
// replaces or ends the response, or when the request is aborted
// (docs/lifecycle.md).
const upstreamBody = "upstream body"

// exchange is one request on its way through a chain. Exchanges are pooled.
type exchange struct {
	c    *Chain
	ctx  context.Context
	m    *fsm.Machine
	sink Sink

	req    Request
	head   ResponseHead
	chunk  BodyChunk
	sum    Summary
	values Values

	resp       *Response
	respIsExit bool
	exitResp   Response
	upBody     fsm.Binding // closes the upstream's body

	decor    []decoration // kept, emptied, across pooled uses
	origPath string

	// The client's side: its body, once read or handed out, and whether a
	// write to it passed its deadline.
	cb           *clientBody
	sendTimedOut bool

	headersSent bool
	unflushed   bool // body bytes are written but not flushed (Chunk.More)
	ended       bool // the response is over: aborted, or answered by the safety net
	logged      bool
	stuck       bool
	status      int
	bytesSent   int64
	cause       Cause
	exitPhase   fsm.State
	exitPlugin  string
	err         error
	start       time.Time
	upStart     time.Time
	upEnd       time.Time

	// onMachinePanic is built once per pooled exchange, so that handing it to
	// each request's machine does not allocate.
	onMachinePanic func(where string, v any)
}

var exchanges = sync.Pool{New: func() any {
	x := &exchange{}
	x.req.x = x
	x.onMachinePanic = func(where string, v any) {
		x.c.hooks.Recovered(&x.req, x.m.State(), "", fmt.Errorf("%s: %v", where, v))
	}
	return x
}}

// Serve runs one request through the chain, writing the response to sink.
// ctx is the request's context: its cancellation means the client is gone.
// When Serve returns, the request has reached done: its log hooks have run
// once and everything acquired on its scope has been released.
func (c *Chain) Serve(ctx context.Context, hr *http.Request, sink Sink) {
	x := exchanges.Get().(*exchange)
	x.c, x.ctx, x.sink = c, ctx, sink
	x.origPath = hr.URL.Path
	x.start = time.Now()
	x.m = fsm.New(x)
	x.req.hr = hr
	x.req.Method, x.req.URL, x.req.Header = hr.Method, hr.URL, hr.Header
	x.req.Host, x.req.RemoteAddr, x.req.TLS = hr.Host, hr.RemoteAddr, hr.TLS != nil
	x.req.Route, x.req.Started, x.req.MaxBodyBytes = c.opts.Route, x.start, c.maxBody
	x.req.Scope, x.req.Values = x.m.Scope(), &x.values
	x.req.Info = RequestInfo{Method: hr.Method, Path: x.origPath, Header: hr.Header, Route: c.opts.Route, Values: &x.values}
	x.m.Recovered = x.onMachinePanic
	x.m.SetLedger(c.hooks.Ledger(&x.req))
	x.ctx = x.context(ctx)
	if bc, ok := sink.(bodyClock); ok && bc.bodyBounded() && hasBody(hr) {
		x.clientBody().start()
	}
	defer x.finish()
	x.run()
}

// context runs Hooks.Context; a panic of it is reported and leaves ctx as
// it was.
func (x *exchange) context(ctx context.Context) (out context.Context) {
	defer func() {
		if v := recover(); v != nil {
			x.c.hooks.Recovered(&x.req, x.m.State(), "", v)
			out = ctx
		}
	}()
	return x.c.hooks.Context(ctx, &x.req)
}

// Entered implements fsm.Observer: the framework's entry accounting.
func (x *exchange) Entered(_ *fsm.Machine, s fsm.Step) { x.c.hooks.Entered(&x.req, s) }

// run drives the machine by its state: each phase function moves it on.
func (x *exchange) run() {
	if !x.fire(fsm.EventStart) {
		return
	}
	for !x.stuck {
		st := x.m.State()
		switch st {
		case fsm.StateAccess:
			x.access()
		case fsm.StateUpstream:
			x.upstream()
		case fsm.StateHeaderFilter:
			x.headerFilter()
		case fsm.StateBodyFilter:
			x.bodyFilter()
		default:
			return
		}
		if x.m.State() == st && !x.stuck {
			// A phase that does not move the machine is a framework bug;
			// never spin on it.
			x.abort(CauseUpstreamError, errors.New("phases: phase did not advance"))
		}
	}
}

func (x *exchange) fire(ev fsm.Event) bool {
	if err := x.m.Fire(ev); err != nil {
		x.stuck = true
		if x.err == nil {
			x.err = err
		}
		return false
	}
	return true
}

// gone reports whether the client has left or broken a time bound.
func (x *exchange) gone() bool { return x.ctx.Err() != nil || x.clientTimedOut() }

// goneCause names why gone is true: a broken time bound, the request's
// deadline, or the client leaving.
func (x *exchange) goneCause() Cause {
	switch {
	case x.clientTimedOut():
		// net/http cancels the context of a request whose connection
		// timed out, too: the timeout is the cause.
		return CauseClientTimeout
	case errors.Is(x.ctx.Err(), context.DeadlineExceeded):
		return CauseTimeout
	}
	return CauseClientClosed
}

// abort ends a request whose client is gone (or that cannot go on). A
// client that timed out before anything was sent gets a 408 and its
// connection closed: the rest of its request may still be on the wire.
func (x *exchange) abort(cause Cause, err error) {
	x.cause = cause
	if x.err == nil {
		x.err = err
	}
	x.releaseUpstream()
	switch {
	case x.headersSent:
		x.abortSink()
	case cause == CauseClientClosed:
		x.status = statusClientClosed
	case cause == CauseClientTimeout:
		x.writeError(http.StatusRequestTimeout, CauseClientTimeout, "the request did not arrive in time", true)
		x.status = http.StatusRequestTimeout // even if the client could not get it
	}
	x.fire(fsm.EventAbort)
}

func (x *exchange) abortGone() {
	err := context.Cause(x.ctx)
	if x.clientTimedOut() {
		err = errClientTimeout
	}
	x.abort(x.goneCause(), err)
}

func (x *exchange) access() {
	for _, h := range x.c.access {
		if x.gone() {
			x.abortGone()
			return
		}
		ex := x.callAccess(h)
		if x.clientTimedOut() {
			// Whatever the hook made of its failed body read (a 400),
			// the client broke a time bound.
			x.abortGone()
			return
		}
		if ex.Exited() {
			x.exitTo(ex, fsm.StateAccess, h.Name())
			return
		}
	}
	if x.gone() {
		x.abortGone()
		return
	}
	x.fire(fsm.EventNext)
}

func (x *exchange) upstream() {
	u := x.c.upstream
	x.upStart = time.Now()
	resp, err := x.callUpstream(u)
	if err == nil && resp == nil {
		err = fmt.Errorf("upstream %s returned no response", u.Name())
	}
	if err != nil {
		x.markUpstreamEnd()
		x.upstreamFailed(err, fsm.StateUpstream, u.Name())
		return
	}
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	x.resp, x.respIsExit = resp, false
	if resp.Body != nil {
		x.upBody = x.m.Scope().Acquire(fsm.Resource{Name: upstreamBody}, x.closeUpstreamBody)
	}
	if resp.Status < 200 || resp.Status > 999 {
		// Not a final status: a 1xx is interim, and net/http's server
		// panics below 100 or above 999. No client may get it.
		x.upstreamFailed(fmt.Errorf("upstream %s: status %d is not a final HTTP status", u.Name(), resp.Status), fsm.StateUpstream, u.Name())
		return
	}
	if x.gone() {
		x.abortGone()
		return
	}
	x.fire(fsm.EventNext)
}

// closeUpstreamBody is the release of the upstream body binding.
func (x *exchange) closeUpstreamBody() {
	x.markUpstreamEnd()
	if b := x.upstreamResp(); b != nil {
		_ = b.Close()
	}
}

func (x *exchange) upstreamResp() Body {
	if x.respIsExit || x.resp == nil {
		return nil
	}
	return x.resp.Body
}

func (x *exchange) releaseUpstream() { x.upBody.Release() }

func (x *exchange) markUpstreamEnd() {
	if !x.upStart.IsZero() && x.upEnd.IsZero() {
		x.upEnd = time.Now()
	}
}

// upstreamFailed turns an upstream error into an exit or, when the client
// has gone, an abort. A failure caused by the client's body (too slow: the
// abort; too large: 413) is the client's, not the upstream's.
func (x *exchange) upstreamFailed(err error, phase fsm.State, plugin string) {
	if x.clientTimedOut() {
		x.abort(CauseClientTimeout, err)
		return
	}
	if ex, ok := asExit(err); ok {
		x.exitTo(ex, phase, plugin)
		return
	}
	if x.cb != nil && x.cb.tooLarge.Load() {
		x.exitTo(Error(http.StatusRequestEntityTooLarge, "invalid_request_error", ErrBodyTooLarge.Error()), phase, plugin)
		return
	}
	if x.gone() {
		x.abort(x.goneCause(), err)
		return
	}
	x.exitTo(classify(err), phase, plugin)
}

type panicError struct {
	v     any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }

func classify(err error) Exit {
	var pe *panicError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		return frameworkExit(http.StatusInternalServerError, CausePanic, err, "internal error")
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return frameworkExit(http.StatusGatewayTimeout, CauseTimeout, err, "upstream timed out")
	}
	return frameworkExit(http.StatusBadGateway, CauseUpstreamError, err, "upstream unavailable")
}

func (x *exchange) headerFilter() {
	for _, h := range x.c.header {
		if x.gone() {
			x.abortGone()
			return
		}
		x.head = ResponseHead{Status: x.resp.Status, Header: x.resp.Header, SSE: x.resp.SSE,
			Exit: x.respIsExit, Request: x.req.Info, Values: &x.values}
		ex := x.callHeader(h)
		x.resp.Status, x.resp.Header = x.head.Status, x.head.Header
		if x.resp.Header == nil {
			x.resp.Header = http.Header{}
		}
		if ex.Exited() {
			x.exitTo(ex, fsm.StateHeaderFilter, h.Name())
			return
		}
	}
	if x.gone() {
		x.abortGone()
		return
	}
	x.fire(fsm.EventNext)
}

func (x *exchange) bodyFilter() {
	for {
		if x.gone() {
			x.abortGone()
			return
		}
		var c Chunk
		err := io.EOF
		if x.resp.Body != nil {
			c, err = x.next(x.resp.Body)
		}
		if err != nil && err != io.EOF {
			// A broken body's partial chunk is dropped with it.
			x.markUpstreamEnd()
			name := x.c.upstream.Name()
			var pe *panicError
			if errors.As(err, &pe) && x.headersSent {
				x.exitTo(classify(err), fsm.StateBodyFilter, name)
				return
			}
			x.upstreamFailed(err, fsm.StateBodyFilter, name)
			return
		}
		eos := err == io.EOF
		if eos && !x.respIsExit {
			x.markUpstreamEnd()
		}
		x.chunk = BodyChunk{Data: c.Data, Event: c.Event, EOS: eos,
			Status: x.resp.Status, Header: x.resp.Header, HeadersSent: x.headersSent, SSE: x.resp.SSE,
			Exit: x.respIsExit, Request: x.req.Info, Values: &x.values}
		data, exited := x.filterBody(0)
		if exited {
			return
		}
		x.chunk.Data = data
		if len(x.chunk.Data) > 0 || eos {
			if err := x.sendHeaders(); err != nil {
				x.abort(x.writeFailed(err), err)
				return
			}
		}
		if err := x.send(c.More, eos); err != nil {
			x.abort(x.writeFailed(err), err)
			return
		}
		if eos {
			break
		}
	}
	if x.cause == "" {
		x.cause = CauseCompleted
	}
	x.releaseUpstream() // the stream has ended
	x.fire(fsm.EventNext)
}

// filterBody runs the body filters from the i-th on the current chunk and
// returns the data to send, or exited when one ended the response. A
// filter that replaces an event of a server-sent stream hands the next
// filters what it replaced it with, as the client will get it: the data
// of its one event as Event (nil when it held the chunk back), and, when
// it wrote several whole events, each event on its own, one call per
// event, the end of the body with the last (docs/writing-plugins.md).
func (x *exchange) filterBody(i int) (data []byte, exited bool) {
	for ; i < len(x.c.body); i++ {
		f := x.c.body[i]
		res := x.callBody(f)
		if res.exit.Exited() {
			x.exitTo(res.exit, fsm.StateBodyFilter, f.Name())
			return nil, true
		}
		if !res.replace {
			continue
		}
		x.chunk.Data = res.data
		if !x.chunk.SSE {
			continue
		}
		events, whole := sseEvents(res.data)
		if len(events) <= 1 || !whole {
			x.chunk.Event = nil
			if len(events) > 0 {
				x.chunk.Event = events[0].Data
			}
			continue
		}
		chunk := x.chunk
		var out []byte
		for j, ev := range events {
			x.chunk = chunk
			x.chunk.Data, x.chunk.Event = ev.Raw, ev.Data
			x.chunk.EOS = chunk.EOS && j == len(events)-1 // the end of the body comes once
			d, exited := x.filterBody(i + 1)
			if exited {
				return nil, true
			}
			out = append(out, d...)
		}
		x.chunk = chunk
		return out, false
	}
	return x.chunk.Data, false
}

// sseEvents splits data, a filter's replacement of server-sent events,
// into its events; whole reports that their bytes are all of data (no
// byte order mark, stray blank line or unreadable event left out), so
// that they can be sent one by one in its place.
func sseEvents(data []byte) (events []sse.Event, whole bool) {
	if len(data) == 0 {
		return nil, true
	}
	rd := sse.NewReader(bytes.NewReader(data), len(data))
	defer rd.Release()
	n := 0
	for {
		ev, err := rd.Next()
		if err != nil {
			return events, n == len(data)
		}
		n += len(ev.Raw)
		// Copied: the reader's slices last until its next event.
		events = append(events, sse.Event{Raw: bytes.Clone(ev.Raw), Event: ev.Event, Data: bytes.Clone(ev.Data)})
	}
}

// send writes the current chunk's data and flushes what is written, unless
// the body has ended (the end of the handler flushes it) or the next chunk
// is at hand (Chunk.More): that one is flushed with it.
func (x *exchange) send(more, eos bool) error {
	if n := len(x.chunk.Data); n > 0 {
		if err := x.sink.Write(x.chunk.Data); err != nil {
			return err
		}
		x.bytesSent += int64(n)
		x.unflushed = true
	}
	switch {
	case !x.unflushed || eos:
		return nil
	case more:
		if h, ok := x.sink.(flushHolder); ok {
			h.HoldFlush()
		}
		return nil
	}
	x.unflushed = false
	return x.sink.Flush()
}

// flushHolder is a Sink told when the runner leaves what it wrote
// unflushed because the next chunk is at hand (see Sink).
type flushHolder interface{ HoldFlush() }

// exitTo records ex as the exit of plugin in phase and moves the machine.
// Before the headers are sent the exit becomes the response (response-side
// hooks of later phases still see it); in body_filter it is written at once.
// After the headers are sent it ends the stream.
func (x *exchange) exitTo(ex Exit, phase fsm.State, plugin string) {
	ex = x.render(ex)
	x.cause = ex.cause()
	if err := ex.errBehind(); err != nil {
		x.err = err
	}
	switch {
	case x.headersSent:
		x.endStream(ex)
	case phase == fsm.StateBodyFilter:
		x.useExit(ex)
		x.writeWhole()
	default:
		x.useExit(ex)
	}
	// The exit is named once it is taken: when writing it panics, or the
	// machine cannot take it, that failure ends the request instead.
	if x.fire(fsm.EventExit) {
		x.exitPhase, x.exitPlugin = phase, plugin
	}
}

// useExit makes ex the current response, closing the upstream's.
func (x *exchange) useExit(ex Exit) {
	x.releaseUpstream()
	h := ex.Header()
	x.exitResp = Response{Status: ex.Status(), Header: h, Body: BytesBody(ex.Body()), SSE: httpx.IsSSE(h)}
	x.resp, x.respIsExit = &x.exitResp, true
}

// writeWhole sends the current (exit) response without further filters. A
// client that is gone by then changes the cause, not the path: the exit has
// been decided.
func (x *exchange) writeWhole() {
	err := x.sendHeaders()
	if err == nil {
		if body := x.exitResp.Body.(*bytesBody).b; len(body) > 0 {
			err = x.sink.Write(body)
			x.bytesSent += int64(len(body))
		}
	}
	if err != nil {
		x.cause, x.err = x.writeFailed(err), err
		if !x.headersSent {
			x.status = statusClientClosed
		}
	}
}

// endStream ends a response whose headers are sent: an SSE stream gets a
// final data event with the exit's body and [DONE]; any other body, and any
// panic, is aborted (the client must not take it for complete).
func (x *exchange) endStream(ex Exit) {
	x.releaseUpstream()
	if !x.resp.SSE || ex.cause() == CausePanic {
		x.abortSink()
		return
	}
	frame := x.renderer().EndStream(ex.Body())
	if err := x.sink.Write(frame); err != nil {
		x.cause, x.err = x.writeFailed(err), err
		return
	}
	x.bytesSent += int64(len(frame))
}

// renderer is the request's Renderer: its own, else the chain's.
func (x *exchange) renderer() Renderer {
	if x.req.Renderer != nil {
		return x.req.Renderer
	}
	return x.c.opts.Renderer
}

// render gives an Error exit the body of the request's Renderer, when that
// is not the default one that built it.
func (x *exchange) render(ex Exit) Exit {
	r := x.renderer()
	if ex.e == nil || ex.e.typ == "" || r == defaultRenderer {
		return ex
	}
	h, body := r.Error(ex.e.status, ex.e.typ, ex.e.msg)
	if len(ex.e.extra) > 0 {
		h = h.Clone() // a Renderer may hand out one header for every call
		for k, vs := range ex.e.extra {
			h[k] = vs
		}
	}
	e := *ex.e
	e.header, e.body = h, body
	return Exit{&e}
}

// sendHeaders sends the current response's status and header, with the
// request's decorations, unless they are sent already.
func (x *exchange) sendHeaders() error {
	if x.headersSent {
		return nil
	}
	h := x.resp.Header
	x.decorate(h)
	if !x.respIsExit && len(x.c.body) > 0 {
		// A body filter may change the body's length: let the length
		// framing come from the writer (chunked) instead.
		h.Del("Content-Length")
	}
	if err := x.sink.WriteHeader(x.resp.Status, h); err != nil {
		return err
	}
	x.headersSent = true
	x.status = x.resp.Status
	return nil
}

// decoration is a response header a request-side plugin set
// (Request.SetResponseHeader); its key is canonical.
type decoration struct{ key, value string }

func (x *exchange) setDecoration(key, value string) {
	key = textproto.CanonicalMIMEHeaderKey(key)
	for i := range x.decor {
		if x.decor[i].key == key {
			x.decor[i].value = value
			return
		}
	}
	x.decor = append(x.decor, decoration{key, value})
}

// decorate sets the request's decorations on h, each replacing what h had.
func (x *exchange) decorate(h http.Header) {
	for _, d := range x.decor {
		h[d.key] = []string{d.value}
	}
}

// --- hook calls: each recovers a panic into an exit -----------------------

func (x *exchange) recovered(phase fsm.State, plugin string, v any) Exit {
	x.c.hooks.Recovered(&x.req, phase, plugin, v)
	err := &panicError{v: v, stack: stack()}
	return frameworkExit(http.StatusInternalServerError, CausePanic, fmt.Errorf("%s %s hook: %w", plugin, phase, err), "internal error")
}

func stack() []byte {
	buf := make([]byte, 4<<10)
	return buf[:runtime.Stack(buf, false)]
}

func (x *exchange) callAccess(h AccessHook) (ex Exit) {
	name := h.Name()
	x.c.hooks.Calling(&x.req, fsm.StateAccess, name)
	defer func() {
		if v := recover(); v != nil {
			ex = x.recovered(fsm.StateAccess, name, v)
		}
	}()
	return h.Access(x.ctx, &x.req)
}

func (x *exchange) callUpstream(u Upstream) (resp *Response, err error) {
	name := u.Name()
	x.c.hooks.Calling(&x.req, fsm.StateUpstream, name)
	defer func() {
		if v := recover(); v != nil {
			x.c.hooks.Recovered(&x.req, fsm.StateUpstream, name, v)
			resp, err = nil, &panicError{v: v, stack: stack()}
		}
	}()
	return u.Upstream(x.ctx, &x.req)
}

// next reads the next body chunk; a panicking Body is an upstream panic.
func (x *exchange) next(b Body) (c Chunk, err error) {
	defer func() {
		if v := recover(); v != nil {
			x.c.hooks.Recovered(&x.req, fsm.StateBodyFilter, x.c.upstream.Name(), v)
			c, err = Chunk{}, &panicError{v: v, stack: stack()}
		}
	}()
	return b.Next()
}

func (x *exchange) callHeader(h HeaderFilter) (ex Exit) {
	name := h.Name()
	x.c.hooks.Calling(&x.req, fsm.StateHeaderFilter, name)
	defer func() {
		if v := recover(); v != nil {
			ex = x.recovered(fsm.StateHeaderFilter, name, v)
		}
	}()
	return h.HeaderFilter(x.ctx, &x.head)
}

func (x *exchange) callBody(f BodyFilter) (res BodyResult) {
	name := f.Name()
	x.c.hooks.Calling(&x.req, fsm.StateBodyFilter, name)
	defer func() {
		if v := recover(); v != nil {
			res = End(x.recovered(fsm.StateBodyFilter, name, v))
		}
	}()
	return f.BodyFilter(x.ctx, &x.chunk)
}

func (x *exchange) callLog(h LogHook) {
	name := h.Name()
	x.c.hooks.Calling(&x.req, fsm.StateLog, name)
	defer func() {
		if v := recover(); v != nil {
			x.c.hooks.Recovered(&x.req, fsm.StateLog, name, v)
		}
	}()
	h.Log(x.ctx, &x.sum)
}

// --- the way to done -------------------------------------------------------

// finish is Serve's deferred safety net. Whatever happened above (a normal
// end, an exit, an abort, a stuck machine, a panic that escaped the runner),
// it brings the request to log, runs the log hooks once, reaches done
// (releasing every binding once) and recycles the exchange.
func (x *exchange) finish() {
	if v := recover(); v != nil {
		x.escaped(v)
	}
	if st := x.m.State(); st.Live() {
		if x.stuck {
			x.wedged(st)
		} else {
			x.abort(x.terminalCause(), x.err)
		}
	}
	x.logPhase()
	if x.m.State() == fsm.StateLog && !x.stuck {
		x.fire(fsm.EventFinish)
	}
	x.m.ForceDone() // a no-op unless the machine is stuck
	x.m.Release()
	if x.cb != nil {
		x.cb.end(false) // a late read by the transport must not touch the connection
	}
	x.recycle()
}

func (x *exchange) terminalCause() Cause {
	if x.gone() {
		return x.goneCause()
	}
	if x.cause != "" {
		return x.cause
	}
	return CausePanic
}

// escaped handles a panic that got past the hook wrappers (a Sink or the
// runner itself).
func (x *exchange) escaped(v any) {
	x.c.hooks.Recovered(&x.req, x.m.State(), "", v)
	x.cause = CausePanic
	x.err = &panicError{v: v, stack: stack()}
	x.failInternally()
}

// wedged ends a request whose machine is stuck in st: a
// failure of the framework, reported like a panic. Before body_filter
// nothing has been sent, so the client gets a 500; in body_filter the
// response's end is already written.
func (x *exchange) wedged(st fsm.State) {
	if x.gone() {
		x.abort(x.goneCause(), x.err) // the machine refuses to move; the cause stands
		return
	}
	x.releaseUpstream()
	x.cause = CausePanic
	if st != fsm.StateBodyFilter {
		x.failInternally()
	}
}

// failInternally answers a request the framework cannot finish: a 500 when
// nothing was sent yet, else an aborted response. The sink may be what
// failed: a panic of its is recovered and reported.
func (x *exchange) failInternally() {
	if !x.headersSent {
		x.writeError(http.StatusInternalServerError, CausePanic, "internal error", false)
		return
	}
	defer x.recoverSink()
	x.abortSink()
}

// abortSink ends the response abnormally, unless it is over already: a
// Sink is aborted at most once, and never after a whole answer of the
// framework's own.
func (x *exchange) abortSink() {
	if !x.ended {
		x.ended = true
		x.sink.Abort()
	}
}

// recoverSink, deferred, recovers and reports a panic of the sink while the
// framework answers on its own.
func (x *exchange) recoverSink() {
	if v := recover(); v != nil {
		x.c.hooks.Recovered(&x.req, x.m.State(), "", v)
	}
}

// writeError sends one of the framework's own JSON errors, with the
// request's decorations, when nothing was sent yet; once written whole, or
// once the sink refused its header, the response is over and nothing more
// is written. A panic of the sink is recovered and reported: the request
// is ending anyway.
func (x *exchange) writeError(status int, cause Cause, msg string, closeConn bool) {
	if x.ended {
		return
	}
	defer x.recoverSink()
	h, body := x.renderer().Error(status, string(cause), msg)
	if closeConn {
		h["Connection"] = []string{"close"}
	}
	x.decorate(h)
	if x.sink.WriteHeader(status, h) != nil {
		x.ended = true
		return
	}
	x.headersSent, x.status = true, status
	if x.sink.Write(body) == nil {
		x.bytesSent += int64(len(body))
		x.ended = true
	}
}

func (x *exchange) logPhase() {
	if x.logged {
		return
	}
	x.logged = true
	status := x.status
	x.sum = Summary{
		Route:       x.req.Route,
		Status:      status,
		Cause:       x.cause,
		ExitPhase:   x.exitPhase,
		ExitPlugin:  x.exitPlugin,
		Trace:       x.m.Trace(),
		Err:         x.err,
		Start:       x.start,
		Duration:    time.Since(x.start),
		BytesSent:   x.bytesSent,
		HeadersSent: x.headersSent,
		Request:     x.req.Info,
		Values:      &x.values,
	}
	if !x.upStart.IsZero() {
		end := x.upEnd
		if end.IsZero() {
			end = time.Now()
		}
		x.sum.UpstreamDuration = end.Sub(x.upStart)
	}
	for _, h := range x.c.log {
		x.callLog(h)
	}
	func() {
		defer func() {
			if v := recover(); v != nil {
				x.c.hooks.Recovered(&x.req, fsm.StateLog, "", v)
			}
		}()
		x.c.hooks.Finished(x.ctx, &x.sum)
	}()
}

func (x *exchange) recycle() {
	x.values.reset()
	clear(x.decor)
	*x = exchange{
		req:            Request{x: x},
		values:         x.values,
		decor:          x.decor[:0],
		onMachinePanic: x.onMachinePanic,
	}
	exchanges.Put(x)
}
