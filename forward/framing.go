package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"

	"github.com/phasegate/phasegate/httpx"
)

// Faults of an upstream response that net/http accepts, reported by
// Watch.Check and Watch.Err. Each is answered 502 when nothing has been
// sent yet.
var (
	// ErrBothLengths is a response carrying both Content-Length and
	// Transfer-Encoding: net/http drops the length and reads the chunks, but
	// RFC 9112 §6.1 calls such a message a likely smuggling attempt, and
	// nginx refuses it too.
	ErrBothLengths = errors.New("the upstream response has both Content-Length and Transfer-Encoding")
	// ErrSurplus is a response followed by bytes nobody asked for (a body
	// longer than its Content-Length, data after the last chunk): they
	// would be read as the answer to the connection's next request.
	ErrSurplus = errors.New("the upstream sent more bytes than its response holds")
)

// BadResponseError is an upstream response that no client may get as it is.
type BadResponseError struct {
	Upstream string // the node or instance
	Err      error
}

func (e *BadResponseError) Error() string {
	return fmt.Sprintf("upstream %s: malformed response: %v", e.Upstream, e.Err)
}

func (e *BadResponseError) Unwrap() error { return e.Err }

// Watch follows one request sent over NewTransport's transport: it learns
// which connection carried it and asks the connection what it saw of the
// response's framing. Create it with WatchResponse before sending.
type Watch struct {
	method string
	trace  httptrace.ClientTrace // allocated with the Watch
	mu     sync.Mutex
	conn   *framedConn
	gen    uint64
}

// WatchResponse returns ctx with a client trace that ties the request sent
// with it (whose method is method) to its connection, and the Watch to ask
// after RoundTrip. On a connection NewTransport did not make, or an
// HTTP/2 one, the Watch sees no framing fault.
func WatchResponse(ctx context.Context, method string) (context.Context, *Watch) {
	w := &Watch{method: method}
	w.trace.GotConn = w.gotConn
	return httptrace.WithClientTrace(ctx, &w.trace), w
}

func (w *Watch) gotConn(info httptrace.GotConnInfo) {
	fc, ok := info.Conn.(*framedConn)
	if !ok {
		return
	}
	gen := fc.expect(w.method)
	w.mu.Lock()
	w.conn, w.gen = fc, gen
	w.mu.Unlock()
}

// Err reports a framing fault of the response seen so far: ErrBothLengths,
// ErrSurplus, or nil.
func (w *Watch) Err() error {
	w.mu.Lock()
	fc, gen := w.conn, w.gen
	w.mu.Unlock()
	if fc == nil {
		return nil
	}
	return fc.fault(gen)
}

// Check reports what is wrong with resp, just received: a status no final
// response may have (httpx.FinalStatus), a status line that is not HTTP/1.x
// (HTTP/2 negotiated over TLS aside), a header name that is not a token
// (net/http accepts spaces in one; nginx refuses them since 1.21.1), or a
// framing fault (Err).
func (w *Watch) Check(resp *http.Response) error {
	switch {
	case !httpx.FinalStatus(resp.StatusCode):
		return fmt.Errorf("status %d is not a final HTTP status", resp.StatusCode)
	case resp.ProtoMajor == 2 && resp.TLS != nil && resp.TLS.NegotiatedProtocol == "h2":
	case resp.ProtoMajor != 1:
		return fmt.Errorf("status line protocol %q is not HTTP/1.x", resp.Proto)
	}
	for name := range resp.Header {
		if !httpx.IsToken(name) {
			return fmt.Errorf("header name %q is not a token", name)
		}
	}
	return w.Err()
}

// framedConn follows the HTTP/1 framing of the responses read from an
// upstream connection, so that bytes beyond a response's end never reach
// net/http's reader: they are dropped and the read ends with io.EOF, which
// marks the connection as not reusable (net/http keeps a connection only if
// no read of it has returned io.EOF). It also notes a response carrying both
// Content-Length and Transfer-Encoding, which net/http accepts silently.
//
// It only follows responses a Watch announced (expect); others pass through
// untouched, and bytes count as surplus only until the next request is
// written. The framing rules are net/http's (Transport and ReadResponse):
// no body for HEAD, 1xx, 204 and 304; chunked when HTTP/1.1 says so; else
// Content-Length; else until the connection closes.
type framedConn struct {
	net.Conn

	mu       sync.Mutex
	gen      uint64 // counts expect calls
	st       framingState
	faults   error // of the response of gen
	poisoned bool  // surplus seen: every later read is io.EOF
	head     bool  // the request was HEAD

	line    []byte // the partial line of a head, a chunk size or a trailer
	first   bool   // the next head line is a status line
	status  int
	http10  bool
	length  int64 // Content-Length; -1 when absent, -2 when not a number
	te      bool  // Transfer-Encoding is present
	chunked bool  // and is exactly "chunked"
	left    int64 // bytes left in a length-delimited body or chunk
}

type framingState uint8

const (
	stUntracked  framingState = iota // no announced response: pass through
	stHead                           // reading a response head
	stBody                           // a body of known length: left bytes
	stChunkSize                      // a chunk-size line
	stChunkData                      // left bytes of chunk data
	stChunkCRLF                      // the CRLF after chunk data: left bytes
	stTrailer                        // trailer lines up to an empty line
	stUntilClose                     // a body delimited by the end of the connection
	stDone                           // the response is complete: any byte is surplus
)

// maxLine bounds a buffered line; a longer one is net/http's to refuse (its
// head limit is MaxResponseHeaderBytes, its chunk line limit 4 KiB).
const maxLine = MaxResponseHeaderBytes + 1

// expect announces the response to a request with method about to be sent
// and returns its generation.
func (c *framedConn) expect(method string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.faults = nil
	c.head = method == http.MethodHead
	c.startHead()
	return c.gen
}

func (c *framedConn) startHead() {
	c.st, c.first, c.line = stHead, true, c.line[:0]
	c.status, c.http10, c.length, c.te, c.chunked = 0, false, -1, false, false
}

func (c *framedConn) fault(gen uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return nil
	}
	return c.faults
}

// Write writes to the connection. A request written after a response is
// complete and without being announced (sent without a Watch) has an answer
// that is not surplus: it is passed through untouched.
func (c *framedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.st == stDone {
		c.st = stUntracked
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// Read reads from the connection, cutting a read at the end of the current
// response when surplus bytes follow it.
func (c *framedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	poisoned := c.poisoned
	c.mu.Unlock()
	if poisoned {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if end := c.feed(p[:n]); end < n {
			c.poisoned = true
			c.faults = errors.Join(c.faults, ErrSurplus)
			n, err = end, io.EOF
		}
		c.mu.Unlock()
	}
	return n, err
}

// feed follows b through the framing and returns how many of its bytes
// belong to the response; the rest is surplus.
func (c *framedConn) feed(b []byte) int {
	i := 0
	for i < len(b) {
		switch c.st {
		case stUntracked, stUntilClose:
			return len(b)
		case stDone:
			return i
		case stBody, stChunkData, stChunkCRLF:
			k := int(min(c.left, int64(len(b)-i)))
			i += k
			c.left -= int64(k)
			if c.left == 0 {
				c.next()
			}
		case stHead, stChunkSize, stTrailer:
			nl := bytes.IndexByte(b[i:], '\n')
			n := nl
			if nl < 0 {
				n = len(b) - i
			}
			if len(c.line)+n > maxLine {
				c.st = stUntracked // net/http refuses it
				return len(b)
			}
			if nl < 0 {
				c.line = append(c.line, b[i:]...)
				return len(b)
			}
			line := b[i : i+nl]
			if len(c.line) > 0 { // the line began in an earlier read
				c.line = append(c.line, line...)
				line = c.line
			}
			i += nl + 1
			c.endLine(bytes.TrimSuffix(line, []byte("\r")))
			c.line = c.line[:0]
		}
	}
	return i
}

// next moves on at the end of a body, a chunk's data or its CRLF.
func (c *framedConn) next() {
	switch c.st {
	case stBody:
		c.st = stDone
	case stChunkData:
		c.st, c.left = stChunkCRLF, 2
	case stChunkCRLF:
		c.st = stChunkSize
	}
}

// endLine takes one complete line of a head, a chunk size or a trailer.
func (c *framedConn) endLine(line []byte) {
	switch c.st {
	case stHead:
		switch {
		case c.first:
			c.first = false
			c.statusLine(line)
		case len(line) == 0:
			c.endHead()
		default:
			name, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimSpace(value)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				c.length = -2
				if n, ok := parseUint(value, 10); ok {
					c.length = n
				}
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				c.te, c.chunked = true, bytes.EqualFold(value, []byte("chunked"))
			}
		}
	case stChunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, ok := parseUint(bytes.TrimSpace(size), 16)
		switch {
		case !ok:
			c.st = stUntracked // net/http refuses it
		case n == 0:
			c.st = stTrailer
		default:
			c.st, c.left = stChunkData, n
		}
	case stTrailer:
		if len(line) == 0 {
			c.st = stDone
		}
	}
}

func (c *framedConn) statusLine(line []byte) {
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	code, _, _ := bytes.Cut(bytes.TrimLeft(rest, " "), []byte(" "))
	n, ok := parseUint(code, 10)
	if !ok || len(code) != 3 {
		c.st = stUntracked // net/http refuses it
		return
	}
	c.status, c.http10 = int(n), string(proto) == "HTTP/1.0"
}

// endHead decides the body's framing as net/http does.
func (c *framedConn) endHead() {
	if c.length != -1 && c.te {
		c.faults = errors.Join(c.faults, ErrBothLengths)
	}
	switch {
	case c.status >= 100 && c.status <= 199 && c.status != http.StatusSwitchingProtocols:
		c.startHead() // an interim response; the final one follows
	case c.status == http.StatusSwitchingProtocols:
		c.st = stUntracked // the connection now carries another protocol
	case c.head, c.status == http.StatusNoContent, c.status == http.StatusNotModified:
		c.st = stDone
	case c.te && !c.http10:
		if c.chunked {
			c.st = stChunkSize
		} else {
			c.st = stUntracked // net/http refuses it
		}
	case c.length == -1:
		c.st = stUntilClose
	case c.length < 0:
		c.st = stUntracked // net/http refuses it
	case c.length == 0:
		c.st = stDone
	default:
		c.st, c.left = stBody, c.length
	}
}

// parseUint parses b, digits of base 10 or 16 only, up to 2^62.
func parseUint(b []byte, base int64) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, d := range b {
		var v int64
		switch {
		case '0' <= d && d <= '9':
			v = int64(d - '0')
		case base == 16 && 'a' <= d && d <= 'f':
			v = int64(d-'a') + 10
		case base == 16 && 'A' <= d && d <= 'F':
			v = int64(d-'A') + 10
		default:
			return 0, false
		}
		n = n*base + v
	}
	return n, true
}

// dialTLS dials addr and performs the TLS handshake itself, so that an
// HTTP/1 connection over TLS can be followed above the encryption: an
// HTTP/2 connection is returned as the *tls.Conn net/http needs to speak
// HTTP/2 over it, any other is wrapped in a framedConn.
func dialTLS(t *http.Transport, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := &tls.Config{}
		if t.TLSClientConfig != nil {
			cfg = t.TLSClientConfig.Clone()
		}
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			cfg.ServerName = host
		}
		if len(cfg.NextProtos) == 0 {
			cfg.NextProtos = []string{"h2", "http/1.1"}
		}
		conn := tls.Client(raw, cfg)
		hctx := ctx
		if t.TLSHandshakeTimeout > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, t.TLSHandshakeTimeout)
			defer cancel()
		}
		if err := conn.HandshakeContext(hctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		if conn.ConnectionState().NegotiatedProtocol == "h2" {
			return conn, nil
		}
		return &framedConn{Conn: conn}, nil
	}
}
