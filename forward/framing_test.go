package forward_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/phasegate/phasegate/forward"
)

// rawHandler answers by writing raw bytes on the hijacked connection, on
// plain and TLS servers alike, then closes it.
func rawHandler(answer string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		_, _ = buf.WriteString(answer)
		_ = buf.Flush()
		_, _ = io.Copy(io.Discard, bufio.NewReader(conn)) // until the client closes
	}
}

func roundTrip(t *testing.T, tr http.RoundTripper, url, method string) (*http.Response, *forward.Watch) {
	t.Helper()
	ctx, w := forward.WatchResponse(context.Background(), method)
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, w
}

// startCounting starts srv, counting the connections it accepts.
func startCounting(srv *httptest.Server) *atomic.Int32 {
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	return &conns
}

func tlsTransport(srv *httptest.Server) *http.Transport {
	tr := forward.NewTransport()
	tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	return tr
}

// NewTransport dials TLS itself to follow HTTP/1 framing above the
// encryption: surplus is caught there too, and HTTP/2 still works.
func TestTransportOverTLS(t *testing.T) {
	t.Run("surplus over HTTP/1.1", func(t *testing.T) {
		srv := httptest.NewTLSServer(rawHandler("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokSURPLUS"))
		defer srv.Close()
		tr := tlsTransport(srv)
		defer tr.CloseIdleConnections()
		resp, w := roundTrip(t, tr, srv.URL, http.MethodGet)
		defer resp.Body.Close()
		if err := w.Check(resp); !errors.Is(err, forward.ErrSurplus) {
			t.Fatalf("Check = %v, want ErrSurplus", err)
		}
		if body, _ := io.ReadAll(resp.Body); string(body) != "ok" {
			t.Fatalf("body %q", body)
		}
	})
	for _, h2 := range []bool{false, true} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, r.Proto)
		}))
		srv.EnableHTTP2 = h2
		srv.StartTLS()
		tr := tlsTransport(srv)
		for range 2 { // the second request reuses the connection
			resp, w := roundTrip(t, tr, srv.URL, http.MethodGet)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[h2]
			if err := w.Check(resp); err != nil || string(body) != want || resp.Proto != want {
				t.Errorf("h2 %v: %s %q, Check %v", h2, resp.Proto, body, err)
			}
		}
		tr.CloseIdleConnections()
		srv.Close()
	}
}

// Surplus that follows a body the client is still reading is cut off at
// the body's end: the body is exactly its Content-Length, the Watch
// reports it, and the connection is not reused.
func TestSurplusMidBodyIsCut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		if r.URL.Path == "/good" {
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
			_ = buf.Flush()
			return
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
		_ = buf.Flush()
		<-release
		_, _ = buf.WriteString("lo" + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
		_ = buf.Flush()
		_, _ = io.Copy(io.Discard, conn)
	}))
	conns := startCounting(srv)
	defer srv.Close()
	tr := forward.NewTransport()
	defer tr.CloseIdleConnections()

	resp, w := roundTrip(t, tr, srv.URL+"/slow", http.MethodGet)
	if err := w.Check(resp); err != nil {
		t.Fatalf("Check before the surplus: %v", err)
	}
	close(release)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "hello" {
		t.Fatalf("body %q, %v; want exactly its Content-Length", body, err)
	}
	if err := w.Err(); !errors.Is(err, forward.ErrSurplus) {
		t.Fatalf("Err = %v, want ErrSurplus", err)
	}
	next, _ := roundTrip(t, tr, srv.URL+"/good", http.MethodGet)
	got, _ := io.ReadAll(next.Body)
	next.Body.Close()
	if string(got) != "good" || conns.Load() != 2 {
		t.Fatalf("next request: %q over %d connections; want good over a new one", got, conns.Load())
	}
}

// A request sent without a Watch passes through untouched, and a Watch
// over a transport NewTransport did not make sees nothing.
func TestWatchWithoutFraming(t *testing.T) {
	srv := httptest.NewServer(rawHandler("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokSURPLUS"))
	defer srv.Close()
	plain := &http.Transport{}
	defer plain.CloseIdleConnections()
	resp, w := roundTrip(t, plain, srv.URL, http.MethodGet)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := w.Check(resp); err != nil || !strings.HasPrefix(string(body), "ok") {
		t.Fatalf("%q, Check %v", body, err)
	}
}

// Requests sent with and without a Watch share the transport's pooled
// connections: an unannounced request's answer is never taken for surplus.
func TestWatchedAndUnwatchedShareConnections(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	conns := startCounting(srv)
	defer srv.Close()
	tr := forward.NewTransport()
	defer tr.CloseIdleConnections()
	for i, watched := range []bool{true, false, true, false, false, true} {
		path := fmt.Sprintf("/%d", i)
		var resp *http.Response
		var w *forward.Watch
		if watched {
			resp, w = roundTrip(t, tr, srv.URL+path, http.MethodGet)
		} else {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
			var err error
			if resp, err = tr.RoundTrip(req); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != path {
			t.Fatalf("request %d (watched %v): %q, %v", i, watched, body, err)
		}
		if w != nil {
			if err := w.Check(resp); err != nil {
				t.Fatalf("request %d: Check %v", i, err)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for six sequential requests, want 1 reused", n)
	}
}
