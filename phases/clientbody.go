package phases

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// bodyClock is implemented by sinks that bound the reads of the request
// body (ServeHTTP's, with a body timeout): startBodyRead restarts the clock
// before a read, endBodyRead stops it once the body has ended.
type bodyClock interface {
	bodyBounded() bool
	startBodyRead()
	endBodyRead()
}

// clientBody is the client's request body as the chain reads it and hands
// it out: each read restarts the body clock, the bytes are counted against
// the route's limit, and a timeout or an overrun is recorded for the
// runner. The transport may read it from its own goroutine, even after the
// request has ended, so it keeps its own state, apart from the pooled
// exchange, and leaves the clock alone once the request is over.
type clientBody struct {
	r     io.Reader
	limit int64
	n     int64 // bytes read so far (reads are never concurrent)

	mu    sync.Mutex // orders clock calls against end
	clock bodyClock  // nil once the body or the request has ended

	timedOut atomic.Bool
	tooLarge atomic.Bool
}

func newClientBody(r io.Reader, limit int64, sink Sink) *clientBody {
	b := &clientBody{r: r, limit: limit}
	if c, ok := sink.(bodyClock); ok && c.bodyBounded() {
		b.clock = c
	}
	return b
}

// start runs the clock before the first read, so that a body nobody reads
// (an early exit) still bounds net/http's drain of it after the response.
func (b *clientBody) start() {
	b.mu.Lock()
	if b.clock != nil {
		b.clock.startBodyRead()
	}
	b.mu.Unlock()
}

// end stops touching the clock: the request is over (the connection may
// be serving the next one) or the body has ended.
func (b *clientBody) end(clear bool) {
	b.mu.Lock()
	if b.clock != nil && clear {
		b.clock.endBodyRead()
	}
	b.clock = nil
	b.mu.Unlock()
}

func (b *clientBody) Read(p []byte) (int, error) {
	b.start()
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		// net/http reads the connection in the background after the body's
		// EOF; a deadline left there would fire into the request's context.
		b.end(true)
	case err != nil:
		// Keep the deadline: it bounds net/http's drain of what is left.
		b.end(false)
		if isTimeout(err) {
			b.timedOut.Store(true)
		}
	}
	if b.n > b.limit {
		b.tooLarge.Store(true)
		b.end(false)
		return n, ErrBodyTooLarge
	}
	return n, err
}

// errClientTimeout is the error recorded for a client that broke a time
// bound.
var errClientTimeout = errors.New("client too slow: a read of its body or a write to it passed the deadline")

// clientBody is the client's body as the chain reads it (see clientBody).
func (x *exchange) clientBody() *clientBody {
	if x.cb == nil {
		x.cb = newClientBody(x.req.hr.Body, x.c.maxBody, x.sink)
	}
	return x.cb
}

// clientTimedOut reports whether a read of the client's body or a write to
// the client passed its deadline.
func (x *exchange) clientTimedOut() bool {
	return x.sendTimedOut || (x.cb != nil && x.cb.timedOut.Load())
}

// writeFailed is the cause of a failed write to the client.
func (x *exchange) writeFailed(err error) Cause {
	if isTimeout(err) {
		x.sendTimedOut = true
		return CauseClientTimeout
	}
	return CauseClientClosed
}

// hasBody reports whether hr may carry body bytes.
func hasBody(hr *http.Request) bool { return hr.Body != nil && hr.Body != http.NoBody }

// bodyBufStart is the most a body buffer holds before bytes arrive.
const bodyBufStart = 16 << 10

// readAll reads r to its end into a buffer that grows with the bytes
// received, never ahead of them: a client declaring 8 MiB (declared is the
// Content-Length, ≤ 0 when unknown) and sending one byte costs a small
// buffer.
func readAll(r io.Reader, declared int64) ([]byte, error) {
	size := 512
	if declared > 0 {
		size = int(min(declared+1, bodyBufStart)) // +1: room to read the EOF
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return nil, fmt.Errorf("reading request body: %w", err)
		}
	}
}
