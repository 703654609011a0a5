package phases

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Cause says how a request ended. It is the access log's cause field and the
// label of phasegate_lifecycle_aborts_total.
type Cause string

// Causes.
const (
	// CauseCompleted: the upstream response was delivered in full.
	CauseCompleted Cause = "completed"
	// CauseExit: a plugin returned an exit.
	CauseExit Cause = "exit"
	// CauseUpstreamError: the upstream could not be reached or broke (502).
	CauseUpstreamError Cause = "upstream_error"
	// CauseTimeout: the upstream did not answer in time (504).
	CauseTimeout Cause = "timeout"
	// CauseClientClosed: the client went away (context cancelled or a write failed).
	CauseClientClosed Cause = "client_closed"
	// CauseClientTimeout: the client broke a time bound (too slow sending
	// its body or reading the response): 408 if nothing was sent, else the
	// connection is closed.
	CauseClientTimeout Cause = "client_timeout"
	// CausePanic: a hook panicked; the panic was recovered (500, or a stream abort).
	CausePanic Cause = "panic"
)

// Exit ends the current phase early with a response. The zero Exit means
// "continue". Exits are built only by Reply, Error and JSON (WithHeader
// returns a changed copy); they are immutable values.
type Exit struct{ e *exit }

type exit struct {
	status int
	header http.Header
	body   []byte
	cause  Cause
	err    error
	// typ and msg are set for an Error exit, which the request's Renderer
	// renders again when it answers in another protocol; extra holds the
	// headers WithHeader added, which outlive that rendering.
	typ, msg string
	extra    http.Header
}

// Reply builds an exit answering with status, header (may be nil) and body.
// The exit owns header and body from then on.
func Reply(status int, header http.Header, body []byte) Exit {
	if header == nil {
		header = http.Header{}
	}
	return Exit{&exit{status: status, header: header, body: body, cause: CauseExit}}
}

// Error builds an error exit. Its body is the request's Renderer's: by
// default OpenAI's shape, {"error":{"message":…,"type":…,"code":status}}.
func Error(status int, typ, message string) Exit {
	h, body := defaultRenderer.Error(status, typ, message)
	x := Reply(status, h, body)
	x.e.typ, x.e.msg = typ, message
	return x
}

// WithHeader returns a copy of e that also sends the header key: value
// (replacing the values e has for key), such as the challenge of a 401 or
// the Allow of a 405. On an Error exit the header stays when the request's
// Renderer gives the body another protocol's shape.
func (e Exit) WithHeader(key, value string) Exit {
	if e.e == nil {
		return e
	}
	x := *e.e
	x.header = e.e.header.Clone()
	x.header.Set(key, value)
	x.extra = e.e.extra.Clone()
	if x.extra == nil {
		x.extra = http.Header{}
	}
	x.extra.Set(key, value)
	return Exit{&x}
}

// Renderer shapes what the framework itself writes, in the protocol of the
// client: the body of every error exit (Error's, and the framework's own
// 408, 413, 500, 502 and 504) and the final frame that ends a server-sent
// event stream cut by an exit after its headers were sent. The default
// answers in OpenAI's shape. Like httputil.ReverseProxy's ErrorHandler, it
// is the one place a protocol's errors come from: set Options.Renderer for
// a chain, or Request.Renderer from an access hook for one request.
type Renderer interface {
	// Error returns the header and body of an error response.
	Error(status int, typ, message string) (http.Header, []byte)
	// EndStream returns the bytes that end a stream whose headers are
	// sent, carrying the body of the exit that ends it.
	EndStream(exitBody []byte) []byte
}

// openAIShape is the default Renderer.
type openAIShape struct{}

var defaultRenderer Renderer = openAIShape{}

func (openAIShape) Error(status int, typ, message string) (http.Header, []byte) {
	b := make([]byte, 0, 64+len(message)+len(typ))
	b = append(b, `{"error":{"message":`...)
	b = appendJSONString(b, message)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"code":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	return http.Header{"Content-Type": {"application/json"}}, append(b, `}}`...)
}

// EndStream is one data event carrying body (one data line per line of
// body), then "data: [DONE]".
func (openAIShape) EndStream(body []byte) []byte {
	out := make([]byte, 0, len(body)+32)
	for _, line := range strings.Split(strings.TrimRight(string(body), "\n"), "\n") {
		out = append(out, "data: "...)
		out = append(out, strings.TrimSuffix(line, "\r")...)
		out = append(out, '\n')
	}
	return append(out, "\ndata: [DONE]\n\n"...)
}

// appendJSONString appends s as a JSON string, escaping as llm/openai's
// error bodies do: invalid UTF-8 becomes U+FFFD, U+2028 and U+2029 are
// escaped.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xF])
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return append(dst, '"')
}

// Exited reports whether e ends the phase (it is not the zero Exit).
func (e Exit) Exited() bool { return e.e != nil }

// Status is the exit's status code (0 for the zero Exit).
func (e Exit) Status() int {
	if e.e == nil {
		return 0
	}
	return e.e.status
}

// Header returns a copy of the exit's header.
func (e Exit) Header() http.Header {
	if e.e == nil {
		return nil
	}
	return e.e.header.Clone()
}

// Body returns the exit's body. It must not be modified.
func (e Exit) Body() []byte {
	if e.e == nil {
		return nil
	}
	return e.e.body
}

// cause is how an exit ends the request: CauseExit for a plugin's exit; the
// framework's own exits carry CauseUpstreamError, CauseTimeout or CausePanic.
func (e Exit) cause() Cause {
	if e.e == nil {
		return ""
	}
	return e.e.cause
}

// errBehind is the error behind a framework exit (an upstream failure, a
// panic), or nil.
func (e Exit) errBehind() error {
	if e.e == nil {
		return nil
	}
	return e.e.err
}

func frameworkExit(status int, cause Cause, err error, message string) Exit {
	x := Error(status, string(cause), message)
	x.e.cause = cause
	x.e.err = err
	return x
}

// ExitError lets an Upstream or a Body report a failure as a chosen exit
// instead of the framework's 502/504 mapping.
type ExitError struct{ Exit Exit }

func (e *ExitError) Error() string {
	return http.StatusText(e.Exit.Status())
}

// asExit returns the exit carried by err, if err wraps an *ExitError.
func asExit(err error) (Exit, bool) {
	var ee *ExitError
	if errors.As(err, &ee) && ee.Exit.Exited() {
		return ee.Exit, true
	}
	return Exit{}, false
}

// BodyResult is what a body filter returns for a chunk: pass it on unchanged
// (the zero BodyResult), pass on a replacement (Replace), or end the
// response with an exit (End).
type BodyResult struct {
	replace bool
	data    []byte
	exit    Exit
}

// Replace passes data on instead of the chunk. Replace(nil) holds the chunk
// back (a filter that buffers returns it, and emits the buffer later).
func Replace(data []byte) BodyResult { return BodyResult{replace: true, data: data} }

// End ends the response with e. If the response headers are still unsent, e
// is the whole response; once they are sent, the stream ends with a final
// frame carrying e's body (for server-sent events: one data event and
// "data: [DONE]"). End of a zero Exit is the zero BodyResult.
func End(e Exit) BodyResult { return BodyResult{exit: e} }
