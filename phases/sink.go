package phases

import (
	"errors"
	"net/http"
	"os"
	"time"
)

// Sink is where the runner writes the response. The gateway's is the
// client's http.ResponseWriter (NewHTTPSink); tests use recorders that fail
// on demand.
type Sink interface {
	// WriteHeader sends the status and header. It is called at most once,
	// just before the first body bytes (or at the end of an empty body).
	WriteHeader(status int, header http.Header) error
	// Write sends p to the client, possibly buffered. An error means the
	// client is gone, or too slow when the error is (or wraps)
	// os.ErrDeadlineExceeded.
	Write(p []byte) error
	// Flush pushes what was written to the client. The runner flushes
	// after every chunk of a body except its last (the end of the handler
	// flushes that), so a stream reaches the client event by event while a
	// whole response costs one write.
	Flush() error
	// Abort ends the response abnormally, so that the client sees a broken
	// response rather than a complete one. It is called at most once, after
	// which nothing more is written.
	Abort()
}

// ClientTimeouts bound the client's side of a request, with the semantics
// of nginx's client_body_timeout and send_timeout: each is the longest gap
// allowed between two reads of the request body, or between two writes of
// the response, never a total, so a slow but live client is not cut. Zero
// means no bound.
type ClientTimeouts struct {
	// Body bounds every read of the request body the chain makes
	// (Request.Body, and the reader Request.BodyReader hands out).
	Body time.Duration
	// Send bounds every write and flush of the response.
	Send time.Duration
}

// sendPiece is the most HTTPSink writes under one send deadline: a large
// body going to a slow but reading client is bounded per piece, not as a
// whole.
const sendPiece = 64 << 10

// HTTPSink adapts an http.ResponseWriter to a Sink. With ClientTimeouts set
// (SetTimeouts) it also bounds the client's connection: each write waits
// at most Send, each read of the request body at most Body. A write that
// times out fails with an error wrapping os.ErrDeadlineExceeded, which the
// runner ends as CauseClientTimeout.
type HTTPSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	t       ClientTimeouts
	aborted bool
}

// NewHTTPSink returns a Sink writing to w, without time bounds.
func NewHTTPSink(w http.ResponseWriter) *HTTPSink {
	return &HTTPSink{w: w, rc: http.NewResponseController(w)}
}

// SetTimeouts bounds the client's I/O from now on (see ClientTimeouts). It
// starts the send clock at once, so that what net/http writes on its own
// before the response, such as "100 Continue", is bounded too.
func (s *HTTPSink) SetTimeouts(t ClientTimeouts) {
	s.t = t
	s.ExtendSend()
}

// WriteHeader copies header into the writer's header map and sends it.
func (s *HTTPSink) WriteHeader(status int, header http.Header) error {
	dst := s.w.Header()
	for k, vs := range header {
		dst[k] = vs
	}
	s.w.WriteHeader(status)
	return nil
}

// Write writes p, in pieces of at most 64 KiB when a send timeout is set,
// each with a fresh deadline.
func (s *HTTPSink) Write(p []byte) error {
	for len(p) > 0 {
		n := len(p)
		if s.t.Send > 0 {
			n = min(n, sendPiece)
			s.ExtendSend()
		}
		if _, err := s.w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// Flush flushes what was written; a writer that cannot flush is not an
// error.
func (s *HTTPSink) Flush() error {
	s.ExtendSend()
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// ExtendSend restarts the send clock: the next write must complete within
// the send timeout. The handler calls it once more after Chain.Serve
// returns, to bound net/http's final flush of what is still buffered.
// Between writes the deadline may lapse: on HTTP/1 it only fails a write
// that is attempted, so an idle stream is never cut.
func (s *HTTPSink) ExtendSend() {
	if s.t.Send > 0 {
		_ = s.rc.SetWriteDeadline(time.Now().Add(s.t.Send))
	}
}

// Abort records that the response must be aborted. The handler that called
// Chain.Serve must then panic with http.ErrAbortHandler (see Aborted), which
// net/http turns into a broken connection; Serve itself has finished the
// lifecycle by then.
func (s *HTTPSink) Abort() { s.aborted = true }

// Aborted reports whether the runner aborted the response.
func (s *HTTPSink) Aborted() bool { return s.aborted }

// startBodyRead and endBodyRead make HTTPSink a bodyClock.
func (s *HTTPSink) startBodyRead() {
	if s.t.Body > 0 {
		_ = s.rc.SetReadDeadline(time.Now().Add(s.t.Body))
	}
}

func (s *HTTPSink) endBodyRead() {
	if s.t.Body > 0 {
		_ = s.rc.SetReadDeadline(time.Time{})
	}
}

func (s *HTTPSink) bodyBounded() bool { return s.t.Body > 0 }

// isTimeout reports whether err is an I/O deadline's: the client broke a
// time bound, as opposed to leaving.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
