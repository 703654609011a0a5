package forward_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// outcome is what the gateway's log hook saw of one request.
type outcome struct {
	Status     int
	Cause      phases.Cause
	ExitPhase  fsm.State
	ExitPlugin string
	Err        error
}

// recorder is a log hook that reports each request's outcome.
type recorder struct{ ch chan outcome }

func (recorder) Name() string { return "recorder" }
func (r recorder) Log(_ context.Context, s *phases.Summary) {
	r.ch <- outcome{s.Status, s.Cause, s.ExitPhase, s.ExitPlugin, s.Err}
}

// gateway is a phasegate in miniature: one route whose chain ends in an
// Upstream, served over a real socket.
type gateway struct {
	*httptest.Server
	logs chan outcome
}

// newGateway serves a chain of extra plugins and an Upstream for cfg. All
// of it is closed when the test ends.
func newGateway(t *testing.T, cfg forward.Config, extra ...phases.Plugin) *gateway {
	t.Helper()
	transport := forward.NewTransport()
	t.Cleanup(transport.CloseIdleConnections)
	up, err := forward.New(cfg, transport)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{logs: make(chan outcome, 1024)}
	chain, err := phases.NewChain(phases.Options{Route: "test"}, append(extra, up, recorder{g.logs})...)
	if err != nil {
		t.Fatal(err)
	}
	g.Server = httptest.NewUnstartedServer(gatewayHandler(chain))
	g.Start()
	t.Cleanup(g.Close)
	return g
}

func gatewayHandler(chain *phases.Chain) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chain.ServeHTTP(w, r)
	})
}

// outcome waits for the log of the next request.
func (g *gateway) outcome(t *testing.T) outcome {
	t.Helper()
	select {
	case o := <-g.logs:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("no request was logged")
		return outcome{}
	}
}

// upstreamServer is a test upstream; it is closed when the test ends.
func upstreamServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func addr(s *httptest.Server) string { return s.Listener.Addr().String() }

func one(s *httptest.Server, timeout time.Duration) forward.Config {
	return forward.Config{Nodes: map[string]int{addr(s): 1}, Timeout: timeout}
}

// echoed is what the echo upstream saw.
type echoed struct {
	Method        string
	Path          string
	RequestURI    string
	RawQuery      string
	Host          string
	Body          string
	ContentLength int64
	Chunked       bool
	Header        http.Header
}

func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(echoed{
		Method:        r.Method,
		Path:          r.URL.Path,
		RequestURI:    r.RequestURI,
		RawQuery:      r.URL.RawQuery,
		Host:          r.Host,
		Body:          string(b),
		ContentLength: r.ContentLength,
		Chunked:       len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked",
		Header:        r.Header,
	})
}

// do sends req through the gateway and decodes the echo.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, echoed) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e echoed
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatal(err)
		}
	}
	return resp, e
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestRequestsArriveIntact(t *testing.T) {
	up := upstreamServer(t, echo)
	g := newGateway(t, one(up, 5*time.Second))
	c := g.Client()

	t.Run("GET with query", func(t *testing.T) {
		resp, e := do(t, c, newRequest(t, "GET", g.URL+"/v1/models/a%2Fb?x=1&y=%20z&x=2", nil))
		if resp.StatusCode != 200 || e.Method != "GET" || e.Path != "/v1/models/a/b" || e.RawQuery != "x=1&y=%20z&x=2" {
			t.Errorf("got %d %+v", resp.StatusCode, e)
		}
		if e.Body != "" || e.ContentLength != 0 || e.Chunked {
			t.Errorf("a GET without body arrived with %q, length %d, chunked %v", e.Body, e.ContentLength, e.Chunked)
		}
		if _, ok := e.Header["User-Agent"]; !ok || e.Header.Get("User-Agent") != "Go-http-client/1.1" {
			t.Errorf("the client's User-Agent was not passed: %q", e.Header["User-Agent"])
		}
		if got := resp.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("response Content-Type %q", got)
		}
	})
	t.Run("escaped path kept", func(t *testing.T) {
		resp, err := c.Get(g.URL + "/files/a%2Fb")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e echoed
		_ = json.NewDecoder(resp.Body).Decode(&e)
		if e.Path != "/files/a/b" || e.RequestURI != "/files/a%2Fb" {
			t.Errorf("path %q, request URI %q", e.Path, e.RequestURI)
		}
	})
	t.Run("POST with Content-Length", func(t *testing.T) {
		payload := strings.Repeat(`{"k":"välue"}`, 5000)
		req := newRequest(t, "POST", g.URL+"/v1/chat/completions", strings.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		resp, e := do(t, c, req)
		if resp.StatusCode != 200 || e.Method != "POST" || e.Body != payload {
			t.Fatalf("got %d, method %s, body intact %v", resp.StatusCode, e.Method, e.Body == payload)
		}
		if e.ContentLength != int64(len(payload)) || e.Chunked {
			t.Errorf("Content-Length %d chunked %v, want %d", e.ContentLength, e.Chunked, len(payload))
		}
		if e.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", e.Header.Get("Content-Type"))
		}
	})
	t.Run("POST chunked", func(t *testing.T) {
		payload := strings.Repeat("0123456789", 10000)
		req := newRequest(t, "PUT", g.URL+"/upload?part=1", io.MultiReader(strings.NewReader(payload))) // unknown length
		resp, e := do(t, c, req)
		if resp.StatusCode != 200 || e.Method != "PUT" || e.Body != payload || e.RawQuery != "part=1" {
			t.Fatalf("got %d, method %s, query %q, body intact %v", resp.StatusCode, e.Method, e.RawQuery, e.Body == payload)
		}
		if e.ContentLength != -1 || !e.Chunked {
			t.Errorf("Content-Length %d chunked %v, want a chunked body", e.ContentLength, e.Chunked)
		}
	})
	t.Run("empty POST", func(t *testing.T) {
		resp, e := do(t, c, newRequest(t, "POST", g.URL+"/empty", strings.NewReader("")))
		if resp.StatusCode != 200 || e.Body != "" || e.ContentLength != 0 || e.Chunked {
			t.Errorf("got %d %+v", resp.StatusCode, e)
		}
	})
	t.Run("status and body passed through", func(t *testing.T) {
		up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Upstream", "yes")
			w.Header().Set("Content-Encoding", "gzip")
			w.WriteHeader(http.StatusTeapot)
			_, _ = io.WriteString(w, "not really gzip")
		})
		g := newGateway(t, one(up, time.Second))
		req := newRequest(t, "GET", g.URL+"/", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := g.Client().Transport.RoundTrip(req) // no transparent decompression
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot || string(b) != "not really gzip" || resp.Header.Get("X-Upstream") != "yes" ||
			resp.Header.Get("Content-Encoding") != "gzip" || resp.ContentLength != int64(len(b)) {
			t.Errorf("got %d %q %v (length %d)", resp.StatusCode, b, resp.Header, resp.ContentLength)
		}
		if o := g.outcome(t); o.Cause != phases.CauseCompleted || o.Status != http.StatusTeapot {
			t.Errorf("logged %+v", o)
		}
	})
}

// An access hook may rewrite the path and body; the upstream gets the
// rewritten request.
type rewrite struct{}

func (rewrite) Name() string { return "rewrite" }
func (rewrite) Access(_ context.Context, r *phases.Request) phases.Exit {
	r.URL.Path = "/rewritten" + r.URL.Path
	r.URL.RawQuery = "q=new"
	b, _ := r.Body()
	r.SetBody(append([]byte("prefix:"), b...))
	r.Header.Set("X-Added", "1")
	return phases.Exit{}
}

func TestRewrittenRequest(t *testing.T) {
	up := upstreamServer(t, echo)
	g := newGateway(t, one(up, 5*time.Second), rewrite{})
	resp, e := do(t, g.Client(), newRequest(t, "POST", g.URL+"/a?q=old", strings.NewReader("body")))
	if resp.StatusCode != 200 || e.Path != "/rewritten/a" || e.RawQuery != "q=new" || e.Body != "prefix:body" ||
		e.ContentLength != int64(len("prefix:body")) || e.Header.Get("X-Added") != "1" {
		t.Errorf("got %d %+v", resp.StatusCode, e)
	}
}

func TestWeightedRoundRobin(t *testing.T) {
	var mu sync.Mutex
	var hits []string
	named := func(name string) *httptest.Server {
		return upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			hits = append(hits, name)
			mu.Unlock()
			_, _ = io.WriteString(w, name)
		})
	}
	a, b, drained := named("a"), named("b"), named("drained")
	// The sequence depends on which node is which only through ties, and
	// 4:1 has none.
	g := newGateway(t, forward.Config{Nodes: map[string]int{addr(a): 4, addr(b): 1, addr(drained): 0}})
	var got []string
	for range 10 {
		resp, err := g.Client().Get(g.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, string(body))
	}
	if s := strings.Join(got, " "); s != "a a b a a a a b a a" {
		t.Errorf("sequence %q", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(hits, " ") != strings.Join(got, " ") {
		t.Errorf("upstreams saw %v", hits)
	}
}

func TestHopByHopHeaders(t *testing.T) {
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Resp-Hop")
		h.Set("X-Resp-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Upgrade", "h2c")
		h.Set("X-Resp-Kept", "1")
		echo(w, r)
	})
	g := newGateway(t, one(up, 5*time.Second))
	req := newRequest(t, "POST", g.URL+"/", strings.NewReader("x"))
	req.Header.Set("Connection", "X-Hop-A, x-hop-b")
	req.Header.Set("X-Hop-A", "1")
	req.Header.Set("X-Hop-B", "2")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("X-End-To-End", "kept")
	req.Header.Set("Authorization", "Bearer sk-1")
	resp, e := do(t, g.Client(), req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, h := range []string{"Connection", "X-Hop-A", "X-Hop-B", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Upgrade", "Trailer", "Transfer-Encoding"} {
		if v, ok := e.Header[h]; ok {
			t.Errorf("the upstream got hop-by-hop %s: %q", h, v)
		}
	}
	if e.Header.Get("X-End-To-End") != "kept" || e.Header.Get("Authorization") != "Bearer sk-1" {
		t.Errorf("end-to-end headers lost: %v", e.Header)
	}
	for _, h := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection", "Upgrade"} {
		if v, ok := resp.Header[h]; ok {
			t.Errorf("the client got hop-by-hop %s: %q", h, v)
		}
	}
	if c := resp.Header.Get("Connection"); c != "" {
		t.Errorf("the client got Connection: %q", c)
	}
	if resp.Header.Get("X-Resp-Kept") != "1" {
		t.Errorf("end-to-end response header lost: %v", resp.Header)
	}
}

func TestForwardedHeaders(t *testing.T) {
	up := upstreamServer(t, echo)
	cfg := one(up, 5*time.Second)

	t.Run("plain", func(t *testing.T) {
		g := newGateway(t, cfg)
		req := newRequest(t, "GET", g.URL+"/", nil)
		req.Header.Set("X-Forwarded-Proto", "https") // a client's claim: replaced
		_, e := do(t, g.Client(), req)
		if got := e.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q", got)
		}
		if got := e.Header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != "http" {
			t.Errorf("X-Forwarded-Proto %q", got)
		}
		if got := e.Header.Get("X-Forwarded-Host"); got != g.Listener.Addr().String() {
			t.Errorf("X-Forwarded-Host %q, want %q", got, g.Listener.Addr())
		}
	})
	t.Run("appended", func(t *testing.T) {
		g := newGateway(t, cfg)
		req := newRequest(t, "GET", g.URL+"/", nil)
		req.Header.Add("X-Forwarded-For", "203.0.113.7, 198.51.100.1")
		req.Header.Add("X-Forwarded-For", "192.0.2.9")
		req.Host = "api.example.com"
		_, e := do(t, g.Client(), req)
		if got := e.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "203.0.113.7, 198.51.100.1, 192.0.2.9, 127.0.0.1" {
			t.Errorf("X-Forwarded-For %q", got)
		}
		if got := e.Header.Get("X-Forwarded-Host"); got != "api.example.com" {
			t.Errorf("X-Forwarded-Host %q", got)
		}
	})
	t.Run("TLS client", func(t *testing.T) {
		transport := forward.NewTransport()
		t.Cleanup(transport.CloseIdleConnections)
		u, err := forward.New(cfg, transport)
		if err != nil {
			t.Fatal(err)
		}
		chain, err := phases.NewChain(phases.Options{}, u)
		if err != nil {
			t.Fatal(err)
		}
		g := httptest.NewTLSServer(gatewayHandler(chain))
		t.Cleanup(g.Close)
		_, e := do(t, g.Client(), newRequest(t, "GET", g.URL+"/", nil))
		if got := e.Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("X-Forwarded-Proto %q", got)
		}
	})
}

func TestPassHost(t *testing.T) {
	up := upstreamServer(t, echo)
	for _, tc := range []struct{ passHost, want string }{
		{"", "api.example.com"},
		{"pass", "api.example.com"},
		{"node", addr(up)},
	} {
		cfg := one(up, 5*time.Second)
		cfg.PassHost = tc.passHost
		g := newGateway(t, cfg)
		req := newRequest(t, "GET", g.URL+"/", nil)
		req.Host = "api.example.com"
		_, e := do(t, g.Client(), req)
		if e.Host != tc.want {
			t.Errorf("pass_host %q: upstream got Host %q, want %q", tc.passHost, e.Host, tc.want)
		}
		if got := e.Header.Get("X-Forwarded-Host"); got != "api.example.com" {
			t.Errorf("pass_host %q: X-Forwarded-Host %q", tc.passHost, got)
		}
	}
}

// readFull reads exactly n bytes of r, failing the test if they do not come
// within d.
func readFull(t *testing.T, r io.Reader, n int, d time.Duration) string {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		ch <- res{b, err}
	}()
	select {
	case got := <-ch:
		if got.err != nil {
			t.Fatalf("reading %d bytes: %v", n, got.err)
		}
		return string(got.b)
	case <-time.After(d):
		t.Fatalf("%d bytes did not arrive within %s", n, d)
		return ""
	}
}

func TestStreamingFlushesEachChunk(t *testing.T) {
	for _, sse := range []bool{false, true} {
		t.Run(fmt.Sprint("sse=", sse), func(t *testing.T) {
			release := make(chan struct{})
			first, second := "data: {\"n\":1}\n\n", "data: {\"n\":2}\n\ndata: [DONE]\n\n"
			up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
				if sse {
					w.Header().Set("Content-Type", "text/event-stream")
				}
				_, _ = io.WriteString(w, first)
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, second)
			})
			g := newGateway(t, one(up, 5*time.Second))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req := newRequest(t, "GET", g.URL+"/stream", nil).WithContext(ctx)
			resp, err := g.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			// The upstream is blocked until we have the first chunk.
			if got := readFull(t, resp.Body, len(first), 5*time.Second); got != first {
				t.Fatalf("first chunk %q", got)
			}
			close(release)
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != second {
				t.Fatalf("rest %q, %v", rest, err)
			}
			if sse && resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			if o := g.outcome(t); o.Cause != phases.CauseCompleted {
				t.Errorf("logged %+v", o)
			}
		})
	}
}

// checkErrorBody checks a gateway error in OpenAI's shape.
func checkErrorBody(t *testing.T, resp *http.Response, status int, typ string) {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (%s)", resp.StatusCode, status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code != status || e.Error.Type != typ || e.Error.Message == "" {
		t.Errorf("body %s (%v)", b, err)
	}
}

// deadAddr is an address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func TestUnreachableNodeIs502(t *testing.T) {
	g := newGateway(t, forward.Config{Nodes: map[string]int{deadAddr(t): 1}, Timeout: 5 * time.Second})
	resp, err := g.Client().Post(g.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	checkErrorBody(t, resp, http.StatusBadGateway, string(phases.CauseUpstreamError))
	o := g.outcome(t)
	if o.Cause != phases.CauseUpstreamError || o.ExitPlugin != forward.Name || o.ExitPhase != fsm.StateUpstream || o.Err == nil {
		t.Errorf("logged %+v", o)
	}
	var te *forward.TimeoutError
	if errors.As(o.Err, &te) || errors.Is(o.Err, context.DeadlineExceeded) {
		t.Errorf("a refused connection reported as a timeout: %v", o.Err)
	}
}

// blocker is an upstream handler that blocks, after writing what before
// writes, until its request is cancelled; cancelled is closed then.
type blocker struct {
	before    func(w http.ResponseWriter)
	started   chan struct{}
	cancelled chan struct{}
}

func newBlocker(before func(w http.ResponseWriter)) *blocker {
	return &blocker{before: before, started: make(chan struct{}), cancelled: make(chan struct{})}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// net/http notices a client that hangs up only once the request body
	// has been read.
	_, _ = io.Copy(io.Discard, r.Body)
	if b.before != nil {
		b.before(w)
	}
	close(b.started)
	select {
	case <-r.Context().Done():
		close(b.cancelled)
	case <-time.After(10 * time.Second):
	}
}

// waitCancelled fails unless the upstream's request is cancelled within d.
func (b *blocker) waitCancelled(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-b.cancelled:
	case <-time.After(d):
		t.Fatalf("the upstream request was not cancelled within %s", d)
	}
}

func TestSlowHeadersIs504(t *testing.T) {
	const timeout = 150 * time.Millisecond
	b := newBlocker(nil)
	up := upstreamServer(t, b.ServeHTTP)
	g := newGateway(t, one(up, timeout))
	start := time.Now()
	resp, err := g.Client().Get(g.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	elapsed := time.Since(start)
	checkErrorBody(t, resp, http.StatusGatewayTimeout, string(phases.CauseTimeout))
	if elapsed < timeout || elapsed > timeout+time.Second {
		t.Errorf("answered after %s, timeout %s", elapsed, timeout)
	}
	o := g.outcome(t)
	var te *forward.TimeoutError
	if o.Cause != phases.CauseTimeout || !errors.As(o.Err, &te) || te.Body || te.Upstream != addr(up) ||
		!errors.Is(o.Err, context.DeadlineExceeded) {
		t.Errorf("logged %+v", o)
	}
	b.waitCancelled(t, time.Second)
}

func TestStallMidBodyIsCut(t *testing.T) {
	const timeout = 150 * time.Millisecond
	for _, withLength := range []bool{true, false} {
		t.Run(fmt.Sprint("content-length=", withLength), func(t *testing.T) {
			b := newBlocker(func(w http.ResponseWriter) {
				if withLength {
					w.Header().Set("Content-Length", "100")
				}
				_, _ = io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
			})
			up := upstreamServer(t, b.ServeHTTP)
			g := newGateway(t, one(up, timeout))
			start := time.Now()
			resp, err := g.Client().Get(g.URL + "/stall")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			body, err := io.ReadAll(resp.Body)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatalf("the client saw a clean end after %q", body)
			}
			if string(body) != "partial" {
				t.Errorf("the client got %q before the break", body)
			}
			if elapsed < timeout || elapsed > timeout+time.Second {
				t.Errorf("cut after %s, timeout %s", elapsed, timeout)
			}
			o := g.outcome(t)
			var te *forward.TimeoutError
			if o.Cause != phases.CauseTimeout || o.Status != 200 || !errors.As(o.Err, &te) || !te.Body {
				t.Errorf("logged %+v", o)
			}
			b.waitCancelled(t, time.Second)
		})
	}
}

// An upstream that keeps sending, each gap shorter than the timeout, may
// take longer than the timeout in all.
func TestTimeoutIsPerRead(t *testing.T) {
	const timeout = 200 * time.Millisecond
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 5 {
			fmt.Fprintf(w, "%d;", i)
			w.(http.Flusher).Flush()
			time.Sleep(timeout / 3)
		}
	})
	g := newGateway(t, one(up, timeout))
	start := time.Now()
	resp, err := g.Client().Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "0;1;2;3;4;" {
		t.Fatalf("got %q, %v", body, err)
	}
	if time.Since(start) < timeout {
		t.Errorf("the test upstream was too fast to test anything")
	}
	if o := g.outcome(t); o.Cause != phases.CauseCompleted {
		t.Errorf("logged %+v", o)
	}
}

// slowFilter is a body filter that takes its time with the first chunk, like
// a slow client.
type slowFilter struct{ d time.Duration }

func (slowFilter) Name() string { return "slow-filter" }
func (f slowFilter) BodyFilter(_ context.Context, c *phases.BodyChunk) phases.BodyResult {
	if bytes.HasPrefix(c.Data, []byte("first")) {
		time.Sleep(f.d)
	}
	return phases.BodyResult{}
}

// The clock runs only while waiting on the upstream: time spent downstream
// of it is not the upstream's.
func TestTimeoutIgnoresTimeDownstream(t *testing.T) {
	const timeout = 150 * time.Millisecond
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first;")
		w.(http.Flusher).Flush()
		time.Sleep(timeout / 4)
		_, _ = io.WriteString(w, "second;")
	})
	g := newGateway(t, one(up, timeout), slowFilter{3 * timeout})
	resp, err := g.Client().Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "first;second;" {
		t.Fatalf("got %q, %v", body, err)
	}
	if o := g.outcome(t); o.Cause != phases.CauseCompleted {
		t.Errorf("logged %+v", o)
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	t.Run("waiting for headers", func(t *testing.T) {
		b := newBlocker(nil)
		up := upstreamServer(t, b.ServeHTTP)
		g := newGateway(t, one(up, 10*time.Second))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-b.started:
				cancel()
			case <-ctx.Done():
			}
		}()
		req := newRequest(t, "POST", g.URL+"/v1/chat/completions", strings.NewReader("{}")).WithContext(ctx)
		if resp, err := g.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("got %d, want the request cancelled", resp.StatusCode)
		}
		b.waitCancelled(t, time.Second)
		if o := g.outcome(t); o.Cause != phases.CauseClientClosed || o.Status != 499 {
			t.Errorf("logged %+v", o)
		}
	})
	t.Run("mid-body", func(t *testing.T) {
		b := newBlocker(func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, "chunk1")
			w.(http.Flusher).Flush()
		})
		up := upstreamServer(t, b.ServeHTTP)
		g := newGateway(t, one(up, 10*time.Second))
		resp, err := g.Client().Get(g.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		if got := readFull(t, resp.Body, len("chunk1"), 5*time.Second); got != "chunk1" {
			t.Fatalf("got %q", got)
		}
		resp.Body.Close() // the client leaves
		b.waitCancelled(t, time.Second)
		if o := g.outcome(t); o.Cause != phases.CauseClientClosed || o.Status != 200 {
			t.Errorf("logged %+v", o)
		}
	})
}

// denyAll is a header filter that replaces every upstream response.
type denyAll struct{}

func (denyAll) Name() string { return "deny-all" }
func (denyAll) HeaderFilter(context.Context, *phases.ResponseHead) phases.Exit {
	return phases.Error(http.StatusForbidden, "invalid_request_error", "denied")
}

// A response replaced before its body is read is closed, and its upstream
// request cancelled, at once.
func TestExitBeforeBodyCancelsUpstream(t *testing.T) {
	stall := func(w http.ResponseWriter) {
		_, _ = io.WriteString(w, "never forwarded")
		w.(http.Flusher).Flush()
	}
	t.Run("through a gateway", func(t *testing.T) {
		b := newBlocker(stall)
		up := upstreamServer(t, b.ServeHTTP)
		g := newGateway(t, one(up, 10*time.Second), denyAll{})
		resp, err := g.Client().Get(g.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		checkErrorBody(t, resp, http.StatusForbidden, "invalid_request_error")
		b.waitCancelled(t, time.Second)
		if o := g.outcome(t); o.Cause != phases.CauseExit || o.ExitPlugin != "deny-all" {
			t.Errorf("logged %+v", o)
		}
	})
	t.Run("by Close alone", func(t *testing.T) {
		b := newBlocker(stall)
		up := upstreamServer(t, b.ServeHTTP)
		transport := forward.NewTransport()
		defer transport.CloseIdleConnections()
		u, err := forward.New(one(up, 10*time.Second), transport)
		if err != nil {
			t.Fatal(err)
		}
		chain, err := phases.NewChain(phases.Options{}, denyAll{}, u)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rec := httptest.NewRecorder()
		chain.ServeHTTP(rec, (httptest.NewRequest("GET", "/", nil)).WithContext(ctx))
		if rec.Code != http.StatusForbidden {
			t.Errorf("status %d", rec.Code)
		}
		// ctx is still live: only the body's Close can have ended the call.
		b.waitCancelled(t, time.Second)
	})
}

func TestConcurrentRequests(t *testing.T) {
	a, b := upstreamServer(t, echo), upstreamServer(t, echo)
	g := newGateway(t, forward.Config{Nodes: map[string]int{addr(a): 2, addr(b): 1}, Timeout: 5 * time.Second})
	c := g.Client()
	const workers, each = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				payload := fmt.Sprintf(`{"worker":%d,"i":%d}`, w, i)
				resp, err := c.Post(g.URL+"/w/"+strconv.Itoa(w)+"?i="+strconv.Itoa(i), "application/json", strings.NewReader(payload))
				if err != nil {
					errs <- err
					continue
				}
				var e echoed
				err = json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				switch {
				case err != nil:
					errs <- err
				case e.Body != payload || e.Path != "/w/"+strconv.Itoa(w) || e.RawQuery != "i="+strconv.Itoa(i):
					errs <- fmt.Errorf("request %s got %+v", payload, e)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for range workers * each {
		if o := g.outcome(t); o.Cause != phases.CauseCompleted {
			t.Errorf("logged %+v", o)
		}
	}
}

func TestNew(t *testing.T) {
	if _, err := forward.New(forward.Config{Nodes: map[string]int{"127.0.0.1:1": 1}}, nil); err == nil {
		t.Error("a nil transport was accepted")
	}
	_, err := forward.New(forward.Config{Nodes: map[string]int{"nope": 1}, Scheme: "ftp"}, http.DefaultTransport)
	if err == nil || !strings.Contains(err.Error(), `nodes.nope: node "nope" is not host:port`) || !strings.Contains(err.Error(), "scheme:") {
		t.Errorf("New with a bad config: %v", err)
	}
	u, err := forward.New(forward.Config{Nodes: map[string]int{"127.0.0.1:1": 1}}, http.DefaultTransport)
	if err != nil || u.Name() != "upstream" {
		t.Errorf("New: %v, %v", u, err)
	}
}

func TestSetDefaults(t *testing.T) {
	c := forward.Config{}
	c.SetDefaults()
	if c.Timeout != 60*time.Second || c.Scheme != "http" || c.PassHost != "pass" {
		t.Errorf("defaults %+v", c)
	}
	c = forward.Config{Timeout: time.Second, Scheme: "https", PassHost: "node"}
	c.SetDefaults()
	if c.Timeout != time.Second || c.Scheme != "https" || c.PassHost != "node" {
		t.Errorf("SetDefaults overrode %+v", c)
	}
}

func TestValidate(t *testing.T) {
	ok := map[string]int{"127.0.0.1:8081": 1}
	for _, tc := range []struct {
		name string
		cfg  forward.Config
		want []string // "field: message fragment"
	}{
		{"minimal", forward.Config{Nodes: ok}, nil},
		{"full", forward.Config{Nodes: map[string]int{"10.0.0.1:80": 3, "api.internal:443": 1, "[::1]:8080": 0}, Timeout: 5 * time.Second, Scheme: "https", PassHost: "node"}, nil},
		{"defaults", func() forward.Config { c := forward.Config{Nodes: ok}; c.SetDefaults(); return c }(), nil},
		{"no nodes", forward.Config{}, []string{"nodes: must list at least one node"}},
		{"empty nodes", forward.Config{Nodes: map[string]int{}}, []string{"nodes: must list at least one node"}},
		{"all drained", forward.Config{Nodes: map[string]int{"127.0.0.1:1": 0, "127.0.0.1:2": 0}}, []string{"nodes: at least one node needs a weight"}},
		{"negative weight", forward.Config{Nodes: map[string]int{"127.0.0.1:1": -1, "127.0.0.1:2": 1}}, []string{`nodes["127.0.0.1:1"]: weight must not be negative`}},
		{"no port", forward.Config{Nodes: map[string]int{"127.0.0.1": 1}}, []string{`nodes["127.0.0.1"]: node "127.0.0.1" is not host:port`}},
		{"plain key", forward.Config{Nodes: map[string]int{"bad": 1}}, []string{`nodes.bad: node "bad" is not host:port`}},
		{"no host", forward.Config{Nodes: map[string]int{":80": 1}}, []string{`nodes.:80: node ":80" has no host`}},
		{"port 0", forward.Config{Nodes: map[string]int{"h:0": 1}}, []string{`nodes.h:0: node "h:0" has an invalid port`}},
		{"port too big", forward.Config{Nodes: map[string]int{"h:65536": 1}}, []string{"has an invalid port"}},
		{"port name", forward.Config{Nodes: map[string]int{"h:http": 1}}, []string{"has an invalid port"}},
		{"signed port", forward.Config{Nodes: map[string]int{"h:+80": 1}}, []string{"has an invalid port"}},
		{"url", forward.Config{Nodes: map[string]int{"http://h:80": 1}}, []string{`nodes.http://h:80: node "http://h:80" is not host:port`}},
		{"dotted key", forward.Config{Nodes: map[string]int{"10.0.0.1:http": 1}}, []string{`nodes["10.0.0.1:http"]: node "10.0.0.1:http" has an invalid port`}},
		{"space", forward.Config{Nodes: map[string]int{"a b:80": 1}}, []string{`nodes["a b:80"]: node "a b:80" has an invalid host`}},
		{"negative timeout", forward.Config{Nodes: ok, Timeout: -time.Second}, []string{"timeout: must be positive"}},
		{"scheme", forward.Config{Nodes: ok, Scheme: "HTTP"}, []string{`scheme: must be "http" or "https", got "HTTP"`}},
		{"pass_host", forward.Config{Nodes: ok, PassHost: "rewrite"}, []string{`pass_host: must be "pass" or "node"`}},
		{"several, sorted", forward.Config{Nodes: map[string]int{"b": 1, "a": -2}, Timeout: -1, Scheme: "x", PassHost: "y"}, []string{
			`nodes.a: node "a" is not host:port`, "nodes.a: weight must not be negative", `nodes.b: node "b"`, "timeout:", "scheme:", "pass_host:",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := tc.cfg.Validate()
			got := make([]string, len(errs))
			for i, e := range errs {
				got[i] = e.Field + ": " + e.Msg
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %d errors like %q", got, len(tc.want), tc.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tc.want[i]) {
					t.Errorf("error %d is %q, want it to contain %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}
