package phases_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
)

// errReadDeadline is what a read of a connection whose deadline passed
// returns.
var errReadDeadline = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}

// stallingBody yields data, then fails like a client that stopped sending
// past the body timeout.
type stallingBody struct {
	data []byte
	err  error
}

func (b *stallingBody) Read(p []byte) (int, error) {
	if len(b.data) > 0 {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	return 0, b.err
}

func (b *stallingBody) Close() error { return nil }

// streamingUp hands the client's body to a reader of its own goroutine, as
// http.Transport does, and fails with that reader's error, as the
// transport does when it cannot send the body.
type streamingUp struct{ got chan int64 }

func (streamingUp) Name() string { return "streaming" }
func (u streamingUp) Upstream(_ context.Context, r *phases.Request) (*phases.Response, error) {
	body, _ := r.BodyReader()
	errc := make(chan error, 1)
	go func() {
		n, err := io.Copy(io.Discard, body)
		if u.got != nil {
			u.got <- n
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("write error: %w", err)
	}
	return &phases.Response{Status: 200, Body: phases.BytesBody([]byte("ok"))}, nil
}

// outcome serves req through plugins and returns what the client got and
// what the log saw.
type outcome struct {
	sink  *recordingSink
	cause phases.Cause
	path  string
	code  int
}

func serveOutcome(t *testing.T, opts phases.Options, req *http.Request, sink phases.Sink, plugins ...phases.Plugin) outcome {
	t.Helper()
	var o outcome
	opts.Hooks = phases.Hooks{Finished: func(_ context.Context, s *phases.Summary) {
		o.cause, o.path, o.code = s.Cause, fsm.Path(s.Trace), s.Status
	}}
	c, err := phases.NewChain(opts, plugins...)
	if err != nil {
		t.Fatal(err)
	}
	c.Serve(context.Background(), req, sink)
	if rs, ok := sink.(*recordingSink); ok {
		o.sink = rs
	}
	return o
}

func postBody(body io.ReadCloser, length int64) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Body, req.ContentLength = body, length
	return req
}

// A body read that passes its deadline ends the request as client_timeout
// with a 408 and Connection: close, whatever the hook that read it
// answered.
func TestClientBodyTimeoutInAccess(t *testing.T) {
	req := postBody(&stallingBody{data: []byte("{"), err: errReadDeadline}, 100)
	o := serveOutcome(t, phases.Options{}, req, &recordingSink{}, reader{}, static{})
	if o.sink.status != http.StatusRequestTimeout || o.sink.header.Get("Connection") != "close" {
		t.Fatalf("client got %d %v, want 408 with Connection: close", o.sink.status, o.sink.header)
	}
	if !strings.Contains(o.sink.body.String(), `"type":"client_timeout"`) {
		t.Errorf("body %s", o.sink.body.String())
	}
	if o.cause != phases.CauseClientTimeout || o.path != "access>log" || o.code != 408 {
		t.Fatalf("log saw cause %s path %s status %d", o.cause, o.path, o.code)
	}
}

// The body handed to the upstream is read in another goroutine; its
// timeout is the client's, not an upstream failure (which would be a 504).
func TestClientBodyTimeoutWhileStreamingUpstream(t *testing.T) {
	req := postBody(&stallingBody{data: []byte("abc"), err: errReadDeadline}, 100)
	o := serveOutcome(t, phases.Options{}, req, &recordingSink{}, streamingUp{})
	if o.sink.status != http.StatusRequestTimeout || o.cause != phases.CauseClientTimeout || o.path != "access>upstream>log" {
		t.Fatalf("client got %d; log saw cause %s path %s", o.sink.status, o.cause, o.path)
	}
}

// A body that runs over the limit while the upstream streams it is a 413,
// not a 502, and the upstream never gets more than the limit plus one
// read.
func TestStreamedBodyOverTheLimit(t *testing.T) {
	got := make(chan int64, 1)
	req := postBody(io.NopCloser(strings.NewReader(strings.Repeat("x", 100))), -1)
	o := serveOutcome(t, phases.Options{MaxRequestBodyBytes: 10}, req, &recordingSink{}, streamingUp{got: got})
	if o.sink.status != http.StatusRequestEntityTooLarge || o.cause != phases.CauseExit {
		t.Fatalf("client got %d, cause %s, want 413 exit", o.sink.status, o.cause)
	}
	if n := <-got; n > 100 {
		t.Errorf("the upstream read %d bytes", n)
	}
	ok := postBody(io.NopCloser(strings.NewReader(strings.Repeat("x", 10))), -1)
	if o := serveOutcome(t, phases.Options{MaxRequestBodyBytes: 10}, ok, &recordingSink{}, streamingUp{}); o.sink.status != 200 {
		t.Fatalf("a body at the limit got %d", o.sink.status)
	}
}

// timingOutSink fails its n-th write like a client that stopped reading
// past the send timeout.
type timingOutSink struct {
	recordingSink
	writes, failAt int
	aborted        bool
}

func (s *timingOutSink) Write(p []byte) error {
	s.writes++
	if s.writes == s.failAt {
		return &net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}
	}
	return s.recordingSink.Write(p)
}
func (s *timingOutSink) Abort() { s.aborted = true }

type chunks struct {
	n      int
	closed bool
}

func (c *chunks) Next() (phases.Chunk, error) {
	if c.n == 0 {
		return phases.Chunk{}, io.EOF
	}
	c.n--
	return phases.Chunk{Data: []byte("data: x\n\n")}, nil
}
func (c *chunks) Close() error { c.closed = true; return nil }

type chunkedUp struct{ body *chunks }

func (chunkedUp) Name() string { return "chunked" }
func (u chunkedUp) Upstream(context.Context, *phases.Request) (*phases.Response, error) {
	return &phases.Response{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: u.body, SSE: true}, nil
}

// A write that passes the send deadline mid-stream aborts the response as
// client_timeout and closes the upstream body at once.
func TestSendTimeoutMidStream(t *testing.T) {
	up := chunkedUp{body: &chunks{n: 5}}
	sink := &timingOutSink{failAt: 2}
	o := serveOutcome(t, phases.Options{}, httptest.NewRequest("GET", "/", nil), sink, up)
	if !sink.aborted || !up.body.closed {
		t.Fatalf("aborted %v, upstream closed %v", sink.aborted, up.body.closed)
	}
	if o.cause != phases.CauseClientTimeout || o.code != 200 || !strings.HasSuffix(o.path, "body_filter>log") {
		t.Fatalf("log saw cause %s status %d path %s", o.cause, o.code, o.path)
	}
}

// limiter sets the route's body limit.
type limiter int64

func (l limiter) Name() string               { return fmt.Sprintf("limiter%d", l) }
func (l limiter) MaxRequestBodyBytes() int64 { return int64(l) }

// A BodyLimiter plugin raises or lowers the chain's limit; with several,
// the smallest holds.
func TestBodyLimiter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limits  []limiter
		size    int
		status  int
		maxBody int64
	}{
		{"raised above the option", []limiter{16}, 12, 200, 16},
		{"lowered below the option", []limiter{4}, 6, 413, 4},
		{"zero keeps the option", []limiter{0}, 8, 200, 8},
		{"the smallest of two", []limiter{16, 6}, 7, 413, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plugins := []phases.Plugin{&bodyReader{}, static{}}
			for _, l := range tc.limits {
				plugins = append(plugins, l)
			}
			var seen int64
			plugins = append(plugins, limitProbe{&seen})
			req := postBody(io.NopCloser(strings.NewReader(strings.Repeat("x", tc.size))), -1)
			o := serveOutcome(t, phases.Options{MaxRequestBodyBytes: 8}, req, &recordingSink{}, plugins...)
			if o.sink.status != tc.status || seen != tc.maxBody {
				t.Fatalf("status %d, MaxBodyBytes %d; want %d, %d", o.sink.status, seen, tc.status, tc.maxBody)
			}
		})
	}
}

type limitProbe struct{ seen *int64 }

func (limitProbe) Name() string { return "probe" }
func (p limitProbe) Access(_ context.Context, r *phases.Request) phases.Exit {
	*p.seen = r.MaxBodyBytes
	return phases.Exit{}
}

// Reading a body costs memory for the bytes received, not for the declared
// Content-Length.
func TestBodyMemoryFollowsBytesReceived(t *testing.T) {
	c, err := phases.NewChain(phases.Options{}, reader{}, static{})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		req := postBody(&stallingBody{data: []byte("x"), err: errReadDeadline}, (8 << 20))
		c.Serve(context.Background(), req, &recordingSink{})
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 2<<20 {
		t.Fatalf("10 requests declaring 8 MiB and sending 1 byte allocated %d bytes", got)
	}
}

// A timeout is told apart from a client that left by its error alone.
func TestClientClosedIsNotATimeout(t *testing.T) {
	req := postBody(&stallingBody{data: []byte("{"), err: io.ErrUnexpectedEOF}, 100)
	o := serveOutcome(t, phases.Options{}, req, &recordingSink{}, reader{}, static{})
	if o.sink.status != http.StatusBadRequest || o.cause != phases.CauseExit {
		t.Fatalf("client got %d, cause %s; want the hook's 400", o.sink.status, o.cause)
	}
}
