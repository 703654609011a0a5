package forward

import (
	"errors"
	"strings"
	"testing"
)

// The responses framedConn must find the end of, as net/http frames them.
var framings = []struct {
	name, method, resp string
	fault              error
}{
	{"content-length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", nil},
	{"empty body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", nil},
	{"bare LF head", "GET", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", nil},
	{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n", nil},
	{"chunked with trailers", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n", nil},
	{"HEAD", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", nil},
	{"204", "GET", "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", nil},
	{"304", "GET", "HTTP/1.1 304 Not Modified\r\n\r\n", nil},
	{"interim responses", "POST", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", nil},
	{"HTTP/1.0 ignores Transfer-Encoding", "GET", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok", ErrBothLengths},
	{"both lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", ErrBothLengths},
}

// follow feeds in to a framedConn expecting a response to method, in reads
// of step bytes, and returns how many bytes it took before the surplus.
func follow(method, in string, step int) (int, *framedConn) {
	c := &framedConn{}
	c.expect(method)
	took := 0
	for i := 0; i < len(in); i += step {
		chunk := in[i:min(i+step, len(in))]
		n := c.feed([]byte(chunk))
		took += n
		if n < len(chunk) {
			break
		}
	}
	return took, c
}

// feed finds the end of every response however its bytes are split
// across reads, and everything after it is surplus.
func TestFramedConnFindsTheEnd(t *testing.T) {
	const surplus = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
	for _, f := range framings {
		for _, step := range []int{1, 2, 3, 7, len(f.resp) + len(surplus)} {
			took, c := follow(f.method, f.resp+surplus, step)
			if took != len(f.resp) {
				t.Errorf("%s, reads of %d: the response ends at %d, want %d", f.name, step, took, len(f.resp))
			}
			if !errors.Is(c.faults, f.fault) || (f.fault == nil && c.faults != nil) {
				t.Errorf("%s: faults %v, want %v", f.name, c.faults, f.fault)
			}
		}
	}
}

// Where net/http reads to the end of the connection, or refuses the
// response, or the response is not announced, nothing is cut.
func TestFramedConnPassesThrough(t *testing.T) {
	for _, c := range []struct {
		name, resp string
		expect     bool
	}{
		{"until close", "HTTP/1.1 200 OK\r\n\r\nall of it, and more", true},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nanything", true},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nmore", true},
		{"unknown transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nmore", true},
		{"bad status line", "HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nab", true},
		{"not announced", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab", false},
	} {
		fc := &framedConn{}
		if c.expect {
			fc.expect("GET")
		}
		if n := fc.feed([]byte(c.resp)); n != len(c.resp) {
			t.Errorf("%s: cut at %d of %d", c.name, n, len(c.resp))
		}
	}
	// A head line longer than net/http's limit stops the following.
	fc := &framedConn{}
	fc.expect("GET")
	long := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", MaxResponseHeaderBytes+1)
	if n := fc.feed([]byte(long)); n != len(long) || fc.st != stUntracked {
		t.Errorf("long line: cut at %d, state %d", n, fc.st)
	}
}

// FuzzFramedConn checks that following any byte stream never panics and
// does not depend on how the stream is split across reads.
func FuzzFramedConn(f *testing.F) {
	for _, fr := range framings {
		f.Add(fr.method == "HEAD", fr.resp+"surplus", uint8(3))
	}
	f.Fuzz(func(t *testing.T, head bool, in string, step uint8) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		whole, c := follow(method, in, max(len(in), 1))
		split, c2 := follow(method, in, int(step%16)+1)
		if whole != split || c.st != c2.st {
			t.Fatalf("%q: whole %d (state %d), in reads of %d: %d (state %d)", in, whole, c.st, step%16+1, split, c2.st)
		}
	})
}
