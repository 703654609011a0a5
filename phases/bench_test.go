package phases

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// noop implements every phase and does nothing.
type noop struct{ name string }

func (n *noop) Name() string                                      { return n.name }
func (n *noop) Access(context.Context, *Request) Exit             { return Exit{} }
func (n *noop) HeaderFilter(context.Context, *ResponseHead) Exit  { return Exit{} }
func (n *noop) BodyFilter(context.Context, *BodyChunk) BodyResult { return BodyResult{} }
func (n *noop) Log(context.Context, *Summary)                     {}

type benchUpstream struct{ body []byte }

func (u *benchUpstream) Name() string { return "upstream" }
func (u *benchUpstream) Upstream(context.Context, *Request) (*Response, error) {
	return &Response{Status: 200, Header: http.Header{}, Body: &bytesBody{b: u.body}}, nil
}

type discard struct{}

func (discard) WriteHeader(int, http.Header) error { return nil }
func (discard) Write([]byte) error                 { return nil }
func (discard) Flush() error                       { return nil }
func (discard) Abort()                             {}

func noops(n int) []Plugin {
	ps := make([]Plugin, n)
	for i := range ps {
		ps[i] = &noop{name: fmt.Sprintf("noop-%02d", i)}
	}
	return ps
}

// BenchmarkLifecycle is one request through the lifecycle machine with n
// no-op plugins. BenchmarkPlainChain calls the same hooks of the same
// plugins in the same order with no machine, no recovery and no bindings:
// the difference between the two is what the lifecycle costs.
func BenchmarkLifecycle(b *testing.B) {
	for _, n := range []int{0, 5, 20} {
		b.Run(fmt.Sprintf("plugins=%d", n), func(b *testing.B) {
			c, err := NewChain(Options{}, append(noops(n), &benchUpstream{body: []byte("ok")})...)
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/", nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				c.Serve(ctx, req, discard{})
			}
		})
	}
}

func BenchmarkPlainChain(b *testing.B) {
	for _, n := range []int{0, 5, 20} {
		b.Run(fmt.Sprintf("plugins=%d", n), func(b *testing.B) {
			c, err := NewChain(Options{}, append(noops(n), &benchUpstream{body: []byte("ok")})...)
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/", nil)
			ctx := context.Background()
			var sink Sink = discard{}
			b.ReportAllocs()
			for b.Loop() {
				plainServe(c, ctx, req, sink)
			}
		})
	}
}

// plainServe is the baseline: the chain's hooks as plain calls on views
// allocated per request, the way a hand-written handler would.
func plainServe(c *Chain, ctx context.Context, hr *http.Request, sink Sink) {
	x := &exchange{c: c, ctx: ctx, sink: sink}
	x.req = Request{x: x, hr: hr, Method: hr.Method, URL: hr.URL, Header: hr.Header}
	for _, h := range c.access {
		if h.Access(ctx, &x.req).Exited() {
			return
		}
	}
	resp, err := c.upstream.Upstream(ctx, &x.req)
	if err != nil {
		return
	}
	x.resp = resp
	x.head = ResponseHead{Status: resp.Status, Header: resp.Header}
	for _, h := range c.header {
		if h.HeaderFilter(ctx, &x.head).Exited() {
			return
		}
	}
	_ = sink.WriteHeader(resp.Status, resp.Header)
	for {
		ch, err := resp.Body.Next()
		x.chunk = BodyChunk{Data: ch.Data, EOS: err == io.EOF, Status: resp.Status, Header: resp.Header}
		for _, f := range c.body {
			f.BodyFilter(ctx, &x.chunk)
		}
		_ = sink.Write(x.chunk.Data)
		if err != nil {
			break
		}
	}
	_ = resp.Body.Close()
	x.sum = Summary{Status: resp.Status, Request: x.req.Info}
	for _, h := range c.log {
		h.Log(ctx, &x.sum)
	}
}
