package phases

import (
	"errors"
	"net/http"

	"github.com/phasegate/phasegate/llm/openai"
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
// "continue". Exits are built only by Reply, Error and JSON; they are
// immutable values.
type Exit struct{ e *exit }

type exit struct {
	status int
	header http.Header
	body   []byte
	cause  Cause
	err    error
}

// Reply builds an exit answering with status, header (may be nil) and body.
// The exit owns header and body from then on.
func Reply(status int, header http.Header, body []byte) Exit {
	if header == nil {
		header = http.Header{}
	}
	return Exit{&exit{status: status, header: header, body: body, cause: CauseExit}}
}

// JSON builds an exit answering with status and a JSON body (Content-Type:
// application/json).
func JSON(status int, body []byte) Exit {
	return Reply(status, http.Header{"Content-Type": {"application/json"}}, body)
}

// Error builds an exit whose body is an OpenAI-shaped error (ErrorBody).
func Error(status int, typ, message string) Exit {
	return JSON(status, ErrorBody(status, typ, message))
}

// ErrorBody is the JSON body of every error the gateway makes, in OpenAI's
// shape: {"error":{"message":…,"type":…,"code":status}}.
func ErrorBody(status int, typ, message string) []byte {
	return openai.ErrorBody(message, typ, status)
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

// Cause is how an exit ends the request: CauseExit for a plugin's exit; the
// framework's own exits carry CauseUpstreamError, CauseTimeout or CausePanic.
func (e Exit) Cause() Cause {
	if e.e == nil {
		return ""
	}
	return e.e.cause
}

// Err is the error behind a framework exit (an upstream failure, a panic),
// or nil.
func (e Exit) Err() error {
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

// AsExit returns the exit carried by err, if err wraps an *ExitError.
func AsExit(err error) (Exit, bool) {
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
