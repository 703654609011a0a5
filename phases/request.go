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
	// Method is the request method.
	Method string
	// URL is the request URL; hooks may rewrite its path and query.
	URL *url.URL
	// Header is the request header; hooks may change it.
	Header http.Header
	// Host is the Host the client asked for.
	Host string
	// RemoteAddr is the client's address.
	RemoteAddr string
	// TLS reports whether the client connected over TLS.
	TLS bool
	// Route is the id of the route serving the request.
	Route string
	// Started is when the request entered the lifecycle.
	Started time.Time
	// MaxBodyBytes is the route's request body limit:
	// Options.MaxRequestBodyBytes, or the limit a BodyLimiter plugin sets.
	MaxBodyBytes int64
	// Scope is the request's binding scope: whatever is acquired on it is
	// released exactly once, at the latest when the request reaches done.
	Scope *fsm.Scope
	// Values are the request's typed values, shared by all its hooks.
	Values *Values
	// Info is the read-only view of the request that response-side and
	// log hooks get.
	Info RequestInfo
	// Renderer shapes the framework's own error responses and the end of
	// a stream cut after its headers, in the client's protocol. A hook
	// that answers in another protocol sets it; nil means Options.Renderer.
	Renderer Renderer

	x  *exchange
	hr *http.Request

	body     []byte
	bodyRead bool
	bodyErr  error
}

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
	if r.hr.ContentLength > r.MaxBodyBytes {
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

// SetBody replaces the request body the upstream will see.
func (r *Request) SetBody(b []byte) {
	r.body, r.bodyRead, r.bodyErr = b, true, nil
}

// BodyReader returns the body for streaming to an upstream, and its length
// (-1 if unknown): the bytes read or set so far, else the client's body
// itself, unread. Reading the client's body is bounded like Body: a read
// past MaxBodyBytes fails with ErrBodyTooLarge (the runner then answers 413
// if nothing was sent) and a read that breaks the body timeout ends the
// request as CauseClientTimeout. The upstream should still refuse a
// declared length over MaxBodyBytes before it calls anyone.
func (r *Request) BodyReader() (io.Reader, int64) {
	if r.bodyRead {
		return bytes.NewReader(r.body), int64(len(r.body))
	}
	if !hasBody(r.hr) {
		return http.NoBody, 0
	}
	return r.x.clientBody(), r.hr.ContentLength
}

// SetResponseHeader sets a header on whatever response the client finally
// gets, the upstream's or an exit's, including exits decided later. It is how
// a request-side plugin decorates every response (for example X-Request-Id).
func (r *Request) SetResponseHeader(key, value string) { r.x.setDecoration(key, value) }

// RequestInfo is a read-only view of the request. Its Header must not be
// changed.
type RequestInfo struct {
	// Method is the request method.
	Method string
	// Path is the request path as it entered the chain, before any hook
	// rewrote it: the gateway hands chains the canonical path it routed on.
	Path string
	// Header is the request header.
	Header http.Header
	// Route is the id of the route serving the request.
	Route string
	// Values are the request's typed values.
	Values *Values
}

// ResponseHead is the header_filter view: the status and header of a
// response not yet sent (the upstream's, or an exit's), which the hook may
// change.
type ResponseHead struct {
	// Status is the response status; the hook may change it.
	Status int
	// Header is the response header; the hook may change it.
	Header http.Header
	// SSE reports whether the body is a server-sent event stream.
	SSE bool
	// Exit reports whether this response is an exit's rather than the
	// upstream's.
	Exit bool
	// Request is the read-only request.
	Request RequestInfo
	// Values are the request's typed values.
	Values *Values
}

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
	// Status is the response status.
	Status int
	// Header is the response header. It must not be changed: it may be
	// sent.
	Header http.Header
	// HeadersSent reports whether the status and header have reached the
	// client; after that an exit can only end the stream.
	HeadersSent bool
	// SSE reports whether the body is a server-sent event stream.
	SSE bool
	// Exit reports whether the body is an exit's rather than the
	// upstream's.
	Exit bool
	// Request is the read-only request.
	Request RequestInfo
	// Values are the request's typed values.
	Values *Values
}

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
	// Values are the request's typed values.
	Values *Values
}

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
