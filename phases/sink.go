package phases

import (
	"errors"
	"net/http"
	"os"
	"time"
)

// Sink is where Serve writes the response. ServeHTTP's writes to the
// client's http.ResponseWriter; test harnesses use recorders that fail on
// demand.
type Sink interface {
	// WriteHeader sends the status and header. It is called at most once,
	// just before the first body bytes (or at the end of an empty body).
	WriteHeader(status int, header http.Header) error
	// Write sends p to the client, possibly buffered. An error means the
	// client is gone, or too slow when the error is (or wraps)
	// os.ErrDeadlineExceeded.
	Write(p []byte) error
	// Flush pushes what was written to the client. The runner flushes
	// after every chunk of a body but its last (the end of the handler
	// flushes that) and those followed by a chunk already at hand
	// (Chunk.More), so a stream reaches the client as the upstream sends
	// it while a whole response costs one write. A Sink with a method
	// HoldFlush() is told of each such chunk left unflushed (test sinks
	// check with it that nothing else is held back).
	Flush() error
	// Abort ends the response abnormally, so that the client sees a broken
	// response rather than a complete one. It is called at most once, after
	// which nothing more is written.
	Abort()
}

// sendPiece is the most ServeHTTP writes under one send deadline: a large
// body going to a slow but reading client is bounded per piece, not as a
// whole.
const sendPiece = 64 << 10

// httpSink adapts an http.ResponseWriter to a Sink for ServeHTTP. With
// the chain's client timeouts it also bounds the client's connection: each
// write waits at most the send timeout, each read of the request body at
// most the body timeout. A write that times out fails with an error
// wrapping os.ErrDeadlineExceeded, which the runner ends as
// CauseClientTimeout.
type httpSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	body    time.Duration
	send    time.Duration
	armed   time.Time // when the send deadline was last set
	aborted bool
}

// maxDeadlineReuse is how recently set a send deadline may be for a write
// to keep it rather than set it again: the events of one upstream read are
// written within microseconds, and moving a connection's deadline costs
// more than a write into net/http's buffer. A write then has at most this
// much (or a 64th of the send timeout, if less) below the send timeout.
const maxDeadlineReuse = time.Millisecond

// ServeHTTP runs r through the chain, writing the response to w under the
// chain's client timeouts. When the response must be cut short (the client
// must not take it for complete), it panics with http.ErrAbortHandler once
// the lifecycle has finished, which net/http turns into a broken
// connection.
func (c *Chain) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := &httpSink{w: w, rc: http.NewResponseController(w), body: c.opts.BodyTimeout, send: c.opts.SendTimeout}
	// The send clock starts at once, so that what net/http writes on its
	// own before the response, such as "100 Continue", is bounded too.
	s.extendSend()
	c.Serve(r.Context(), r, s)
	if s.aborted {
		panic(http.ErrAbortHandler)
	}
	s.extendSend() // bounds net/http's flush of what is still buffered
}

// WriteHeader copies header into the writer's header map and sends it.
func (s *httpSink) WriteHeader(status int, header http.Header) error {
	dst := s.w.Header()
	for k, vs := range header {
		dst[k] = vs
	}
	s.w.WriteHeader(status)
	return nil
}

// Write writes p, in pieces of at most 64 KiB when a send timeout is set,
// each with a fresh deadline.
func (s *httpSink) Write(p []byte) error {
	for len(p) > 0 {
		n := len(p)
		if s.send > 0 {
			n = min(n, sendPiece)
			s.extendSend()
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
func (s *httpSink) Flush() error {
	s.extendSend()
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// extendSend restarts the send clock: the next write must complete within
// the send timeout. Between writes the deadline may lapse: on HTTP/1 it
// only fails a write that is attempted, so an idle stream is never cut.
func (s *httpSink) extendSend() {
	if s.send <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(s.armed) < min(s.send/64, maxDeadlineReuse) {
		return
	}
	s.armed = now
	_ = s.rc.SetWriteDeadline(now.Add(s.send))
}

// Abort records that the response must be aborted: ServeHTTP panics with
// http.ErrAbortHandler once the lifecycle has finished.
func (s *httpSink) Abort() { s.aborted = true }

// startBodyRead and endBodyRead make httpSink a bodyClock.
func (s *httpSink) startBodyRead() {
	if s.body > 0 {
		_ = s.rc.SetReadDeadline(time.Now().Add(s.body))
	}
}

func (s *httpSink) endBodyRead() {
	if s.body > 0 {
		_ = s.rc.SetReadDeadline(time.Time{})
	}
}

func (s *httpSink) bodyBounded() bool { return s.body > 0 }

// isTimeout reports whether err is an I/O deadline's: the client broke a
// time bound, as opposed to leaving.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
