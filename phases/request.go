package phases

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/phasegate/phasegate/fsm"
)

// ErrBodyTooLarge is returned by Request.Body, and by reads of
// Request.BodyReader's client body, when the body exceeds the route's limit
// (Request.MaxBodyBytes).
var ErrBodyTooLarge = errors.New("request body too large")

// Request is the request-side view given to access hooks and the upstream:
// the client's request, which they may change (headers, URL, body) before
// the upstream sees it, the request's binding scope and its values. It has
// no access to the response.
type Request struct {
	x  *exchange
	hr *http.Request

	body     []byte
	bodyRead bool
	bodyErr  error
	route    string
}

// Method is the request method.
func (r *Request) Method() string { return r.hr.Method }

// URL is the request URL; hooks may rewrite its path and query.
func (r *Request) URL() *url.URL { return r.hr.URL }

// Header is the request header; hooks may change it.
func (r *Request) Header() http.Header { return r.hr.Header }

// Host is the Host the client asked for.
func (r *Request) Host() string { return r.hr.Host }

// RemoteAddr is the client's address.
func (r *Request) RemoteAddr() string { return r.hr.RemoteAddr }

// TLS reports whether the client connected over TLS.
func (r *Request) TLS() bool { return r.hr.TLS != nil }

// Route is the id of the route serving the request.
func (r *Request) Route() string { return r.route }

// Body reads the whole request body (once; later calls return the same
// bytes) up to MaxBodyBytes, beyond which it returns ErrBodyTooLarge. A
// body set with SetBody is returned as is. Memory grows with the bytes
// received, not with the declared Content-Length. A read that breaks the
// client's body timeout fails, and the runner then ends the request with
// CauseClientTimeout whatever the hook returns.
func (r *Request) Body() ([]byte, error) {
	if r.bodyRead {
		return r.body, r.bodyErr
	}
	r.bodyRead = true
	if !hasBody(r.hr) {
		return nil, nil
	}
	if r.hr.ContentLength > r.MaxBodyBytes() {
		r.bodyErr = ErrBodyTooLarge
		return nil, r.bodyErr
	}
	body, err := readAll(r.x.clientBody(), r.hr.ContentLength)
	switch {
	case errors.Is(err, ErrBodyTooLarge):
		r.bodyErr = ErrBodyTooLarge
	case err != nil:
		r.bodyErr = err
	default:
		r.body = body
	}
	return r.body, r.bodyErr
}

// MaxBodyBytes is the route's request body limit: Options.MaxRequestBodyBytes,
// or the limit a BodyLimiter plugin sets.
func (r *Request) MaxBodyBytes() int64 { return r.x.c.maxBody }

// SetBody replaces the request body the upstream will see.
func (r *Request) SetBody(b []byte) {
	r.body, r.bodyRead, r.bodyErr = b, true, nil
}

// BodyReader returns the body for streaming to an upstream: the bytes read
// or set so far, else the client's body itself, unread. Reading the
// client's body is bounded like Body: a read past MaxBodyBytes fails with
// ErrBodyTooLarge (the runner then answers 413 if nothing was sent) and a
// read that breaks the body timeout ends the request as CauseClientTimeout.
// The upstream should still refuse a declared ContentLength over
// MaxBodyBytes before it calls anyone.
func (r *Request) BodyReader() io.Reader {
	if r.bodyRead {
		return bytes.NewReader(r.body)
	}
	if !hasBody(r.hr) {
		return http.NoBody
	}
	return r.x.clientBody()
}

// ContentLength is the length of what BodyReader yields, or -1 if unknown.
func (r *Request) ContentLength() int64 {
	if r.bodyRead {
		return int64(len(r.body))
	}
	if !hasBody(r.hr) {
		return 0
	}
	return r.hr.ContentLength
}

// Scope is the request's binding scope: whatever is acquired on it is
// released exactly once, at the latest when the request reaches done.
func (r *Request) Scope() *fsm.Scope { return r.x.m.Scope() }

// Values are the request's typed values, shared by all its hooks.
func (r *Request) Values() *Values { return &r.x.values }

// SetResponseHeader sets a header on whatever response the client finally
// gets, the upstream's or an exit's, including exits decided later. It is how
// a request-side plugin decorates every response (for example X-Request-Id).
func (r *Request) SetResponseHeader(key, value string) { r.x.setDecoration(key, value) }

// Started is when the request entered the lifecycle.
func (r *Request) Started() time.Time { return r.x.start }

// Info is the read-only view of the request that response-side and log
// hooks get.
func (r *Request) Info() RequestInfo { return RequestInfo{r} }

// RequestInfo is a read-only view of the request.
type RequestInfo struct{ r *Request }

// Method is the request method.
func (i RequestInfo) Method() string { return i.r.hr.Method }

// Path is the request path as it entered the chain, before any hook
// rewrote it: the gateway hands chains the canonical path it routed on.
func (i RequestInfo) Path() string { return i.r.x.origPath }

// Header returns the first value of the request header key.
func (i RequestInfo) Header(key string) string { return i.r.hr.Header.Get(key) }

// Route is the id of the route serving the request.
func (i RequestInfo) Route() string { return i.r.route }

// Values are the request's typed values.
func (i RequestInfo) Values() *Values { return &i.r.x.values }

// ResponseHead is the header_filter view: the status and header of a
// response not yet sent (the upstream's, or an exit's), which the hook may
// change.
type ResponseHead struct{ x *exchange }

// Status is the response status.
func (h *ResponseHead) Status() int { return h.x.resp.Status }

// SetStatus changes the response status.
func (h *ResponseHead) SetStatus(code int) { h.x.resp.Status = code }

// Header is the response header; the hook may change it.
func (h *ResponseHead) Header() http.Header { return h.x.resp.Header }

// SSE reports whether the body is a server-sent event stream.
func (h *ResponseHead) SSE() bool { return h.x.resp.SSE }

// Exit reports whether this response is an exit's rather than the upstream's.
func (h *ResponseHead) Exit() bool { return h.x.respIsExit }

// Request is the read-only request.
func (h *ResponseHead) Request() RequestInfo { return h.x.req.Info() }

// Values are the request's typed values.
func (h *ResponseHead) Values() *Values { return &h.x.values }

// BodyChunk is the body_filter view: one chunk of the response body, or the
// end of it.
type BodyChunk struct {
	// Data is the chunk's bytes as they will go to the client.
	Data []byte
	// Event is the server-sent event's data field (SSE responses only).
	Event []byte
	// EOS is set on the final call, after the last chunk; Data is then
	// usually empty.
	EOS bool

	x *exchange
}

// Status is the response status.
func (c *BodyChunk) Status() int { return c.x.resp.Status }

// Header is the response header. It must not be changed: it may be sent.
func (c *BodyChunk) Header() http.Header { return c.x.resp.Header }

// HeadersSent reports whether the status and header have reached the
// client; after that an exit can only end the stream.
func (c *BodyChunk) HeadersSent() bool { return c.x.headersSent }

// SSE reports whether the body is a server-sent event stream.
func (c *BodyChunk) SSE() bool { return c.x.resp.SSE }

// Exit reports whether the body is an exit's rather than the upstream's.
func (c *BodyChunk) Exit() bool { return c.x.respIsExit }

// Request is the read-only request.
func (c *BodyChunk) Request() RequestInfo { return c.x.req.Info() }

// Values are the request's typed values.
func (c *BodyChunk) Values() *Values { return &c.x.values }

// Summary is what log hooks see: how the request ended. A Summary, and
// everything reached through it, is valid only during the log phase: copy
// what must outlive it.
type Summary struct {
	// Route is the route id.
	Route string
	// Status is the status the client got (0 when nothing was sent).
	Status int
	// Cause is how the request ended.
	Cause Cause
	// ExitPhase and ExitPlugin name the phase and plugin whose exit
	// decided the response (the last exit, when there were several); empty
	// when there was none. Framework exits name the upstream plugin (upstream
	// failures) or the panicking plugin.
	ExitPhase  fsm.State
	ExitPlugin string
	// Trace is the machine's steps up to log. It is valid only during the
	// log phase.
	Trace []fsm.Step
	// Err is the error behind an upstream failure or a panic.
	Err error
	// Start is when the request entered the lifecycle; Duration runs from
	// then to log.
	Start    time.Time
	Duration time.Duration
	// UpstreamDuration runs from calling the upstream to the end of its body
	// (or its failure); zero when no upstream was called.
	UpstreamDuration time.Duration
	// BytesSent counts body bytes written to the client.
	BytesSent int64
	// HeadersSent reports whether a response reached the client.
	HeadersSent bool
	// Request is the read-only request.
	Request RequestInfo
}

// Values are the request's typed values.
func (s *Summary) Values() *Values { return s.Request.Values() }

// Path is the lifecycle path up to log, as in the access log:
// "access>upstream>header_filter>body_filter>log".
func (s *Summary) Path() string { return fsm.Path(s.Trace) }

// Values holds a request's typed values: how plugins pass data to each other
// and to the log (the consumer key-auth found, the model ai-proxy used).
// Use a Key to read and write them.
type Values struct{ kv []kv }

type kv struct {
	k any
	v any
}

func (v *Values) reset() {
	clear(v.kv)
	v.kv = v.kv[:0]
}

// Key is a typed key for Values. Create keys once, at package level, with
// NewKey.
type Key[T any] struct{ name string }

// NewKey returns a new key; name is for debugging only.
func NewKey[T any](name string) *Key[T] { return &Key[T]{name: name} }

// Get returns the value under k, and whether there is one.
func (k *Key[T]) Get(v *Values) (T, bool) {
	for _, e := range v.kv {
		if e.k == k {
			return e.v.(T), true
		}
	}
	var zero T
	return zero, false
}

// Set stores val under k.
func (k *Key[T]) Set(v *Values, val T) {
	for i := range v.kv {
		if v.kv[i].k == k {
			v.kv[i].v = val
			return
		}
	}
	v.kv = append(v.kv, kv{k, val})
}

func (k *Key[T]) String() string { return "phases.Key(" + k.name + ")" }
