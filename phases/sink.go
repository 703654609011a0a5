package phases

import (
	"errors"
	"net/http"
)

// Sink is where the runner writes the response. The gateway's is the
// client's http.ResponseWriter (NewHTTPSink); tests use recorders that fail
// on demand.
type Sink interface {
	// WriteHeader sends the status and header. It is called at most once,
	// just before the first body bytes (or at the end of an empty body).
	WriteHeader(status int, header http.Header) error
	// Write sends p to the client, possibly buffered. An error means the
	// client is gone.
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

// HTTPSink adapts an http.ResponseWriter to a Sink.
type HTTPSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	aborted bool
}

// NewHTTPSink returns a Sink writing to w.
func NewHTTPSink(w http.ResponseWriter) *HTTPSink {
	return &HTTPSink{w: w, rc: http.NewResponseController(w)}
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

// Write writes p.
func (s *HTTPSink) Write(p []byte) error {
	_, err := s.w.Write(p)
	return err
}

// Flush flushes what was written; a writer that cannot flush is not an
// error.
func (s *HTTPSink) Flush() error {
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// Abort records that the response must be aborted. The handler that called
// Chain.Serve must then panic with http.ErrAbortHandler (see Aborted), which
// net/http turns into a broken connection; Serve itself has finished the
// lifecycle by then.
func (s *HTTPSink) Abort() { s.aborted = true }

// Aborted reports whether the runner aborted the response.
func (s *HTTPSink) Aborted() bool { return s.aborted }
