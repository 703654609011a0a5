// Package httpx holds the small pieces of HTTP that the gateway's upstreams
// and plugins share: hop-by-hop header handling, header-name syntax, media
// types, and the timeout error every upstream reports.
package httpx

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"
)

// HopHeaders are the hop-by-hop headers of RFC 9110 §7.6.1 and their legacy
// companions: they concern one connection and are never forwarded, in
// either direction.
var HopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// EndToEnd returns a copy of h without its hop-by-hop headers: those of
// HopHeaders and every header its Connection header names. It never returns
// nil and never changes h.
func EndToEnd(h http.Header) http.Header {
	return StripHop(h.Clone())
}

// StripHop removes h's hop-by-hop headers (as EndToEnd leaves them out) in
// place and returns h, or an empty header for nil. It is for a header the
// caller owns, such as that of a response it has just received.
func StripHop(h http.Header) http.Header {
	if h == nil {
		return http.Header{}
	}
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range HopHeaders {
		h.Del(name)
	}
	return h
}

// Outgoing returns a request to u, with header h and the context ctx, as
// http.NewRequestWithContext would build it from u's string form without
// printing and parsing the URL again: method and u come from a request
// the server has parsed or from validated configuration. It has no body.
// u becomes the request's URL; like NewRequest, it drops an empty port
// from u.Host.
func Outgoing(ctx context.Context, method string, u *url.URL, h http.Header) *http.Request {
	u.Host = strings.TrimSuffix(u.Host, ":") // an empty port, as NewRequest drops it
	r := http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
	}
	return r.WithContext(ctx)
}

// IsToken reports whether s is an HTTP token (RFC 9110 §5.6.2), as header
// names must be.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// IsMediaType reports whether the Content-Type value ct is of media type
// want (lower case; parameters allowed; compared case-insensitively).
func IsMediaType(ct, want string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		// A malformed parameter list still names its type.
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	return mt == want
}

// IsSSE reports whether h declares a text/event-stream body.
func IsSSE(h http.Header) bool { return IsMediaType(h.Get("Content-Type"), "text/event-stream") }

// TimeoutError is the error of an upstream that did not answer in time: no
// response header, or no body bytes, within its timeout. It matches
// context.DeadlineExceeded with errors.Is and is a net.Error whose Timeout
// is true, so the lifecycle runner answers it with 504 (or aborts a stream
// that has started), and never mistakes it for a client that left.
type TimeoutError struct {
	// Upstream names what did not answer: a node ("10.0.0.1:8080") or an
	// LLM instance.
	Upstream string
	// Body is false for the wait for the response header, true for a wait
	// for body bytes.
	Body bool
	// After is the configured timeout.
	After time.Duration
}

func (e *TimeoutError) Error() string {
	what := "response header"
	if e.Body {
		what = "response body bytes"
	}
	return fmt.Sprintf("upstream %s: no %s within %s", e.Upstream, what, e.After)
}

// Unwrap returns context.DeadlineExceeded.
func (e *TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// Timeout returns true.
func (e *TimeoutError) Timeout() bool { return true }

// FinalStatus reports whether code may be the status of a final response
// forwarded to a client: 200 to 999. A 1xx is never final (net/http's
// transport consumes interim ones and returns 101, which phasegate never
// asks for, since it forwards no Upgrade); Go's server panics on
// WriteHeader below 100 or above 999.
func FinalStatus(code int) bool { return code >= 200 && code <= 999 }
