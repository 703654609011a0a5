package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/llm/provider/providertest"
)

// floorFixture serves a floorProxy to upstream (host:port) over real
// sockets, and a client for it; every connection is closed and every
// goroutine gone when the test ends.
func floorFixture(t *testing.T, upstream string) (base string, client *http.Client) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	tr := forward.NewTransport()
	t.Cleanup(tr.CloseIdleConnections)
	proxy := httptest.NewServer(newFloorProxy(upstream, tr))
	t.Cleanup(proxy.Close)
	ct := &http.Transport{DisableCompression: true}
	t.Cleanup(ct.CloseIdleConnections)
	return proxy.URL, &http.Client{Transport: ct, Timeout: 10 * time.Second}
}

// upstreamServer serves h over a real socket until the test ends.
func upstreamServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// seen is what the upstream received.
type seen struct {
	method, uri, host, body string
	length                  int64
	header                  http.Header
}

func TestFloorProxyForwards(t *testing.T) {
	got := make(chan seen, 1)
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("upstream: reading the body: %v", err)
		}
		got <- seen{r.Method, r.RequestURI, r.Host, string(b), r.ContentLength, r.Header}
		h := w.Header()
		h.Set("Connection", "X-Hop-Res")
		h.Set("X-Hop-Res", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-End-Res", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "created")
	})
	base, client := floorFixture(t, up.Listener.Addr().String())

	const uri = "/a%2Fb/c?x=1&y=%20"
	send := func(base string) (*http.Response, string, seen) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+uri, strings.NewReader("hello body"))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "api.example"
		for k, v := range map[string]string{
			"X-Forwarded-For":     "203.0.113.9",
			"Connection":          "X-Hop-Req",
			"X-Hop-Req":           "1",
			"Keep-Alive":          "timeout=5",
			"Proxy-Authorization": "Basic eA==",
			"Proxy-Connection":    "keep-alive",
			"Te":                  "trailers",
			"X-End-Req":           "yes",
			"User-Agent":          "", // none sent
		} {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b), <-got
	}
	hops := func(h http.Header, names ...string) []string {
		var present []string
		for _, n := range names {
			if _, ok := h[n]; ok {
				present = append(present, n)
			}
		}
		return present
	}
	reqHops := []string{"Connection", "X-Hop-Req", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te"}
	resHops := []string{"Connection", "X-Hop-Res", "Keep-Alive", "Proxy-Authenticate"}

	// Directly, the hop-by-hop headers arrive both ways: what the proxy
	// must strip is there to strip.
	resp, _, in := send(up.URL)
	if len(hops(in.header, reqHops...)) != len(reqHops) || len(hops(resp.Header, resHops...)) != len(resHops) {
		t.Fatalf("directly: request %v, response %v; want every hop-by-hop header", in.header, resp.Header)
	}

	resp, body, in := send(base)
	if in.method != http.MethodPost || in.uri != uri || in.host != "api.example" || in.body != "hello body" || in.length != 10 {
		t.Errorf("upstream got %s %s Host %s, body %q (length %d)", in.method, in.uri, in.host, in.body, in.length)
	}
	for k, want := range map[string]string{
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Host":  "api.example",
		"X-Forwarded-Proto": "http",
		"X-End-Req":         "yes",
	} {
		if got := in.header.Get(k); got != want {
			t.Errorf("upstream got %s %q, want %q", k, got, want)
		}
	}
	if h := hops(in.header, append(reqHops, "User-Agent")...); len(h) > 0 {
		t.Errorf("upstream got %v", h)
	}
	if resp.StatusCode != http.StatusCreated || body != "created" || resp.Header.Get("X-End-Res") != "yes" {
		t.Errorf("client got %d %q, X-End-Res %q", resp.StatusCode, body, resp.Header.Get("X-End-Res"))
	}
	if h := hops(resp.Header, resHops...); len(h) > 0 {
		t.Errorf("client got %v", h)
	}
}

// A chunk reaches the client before the upstream sends the next.
func TestFloorProxyStreams(t *testing.T) {
	next := make(chan struct{})
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	})
	base, client := floorFixture(t, up.Listener.Addr().String())

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("data: one\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("the first chunk did not arrive before the upstream sent the second: %v", err)
	}
	close(next)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(first)+string(rest) != "data: one\n\ndata: two\n\n" {
		t.Errorf("stream = %q + %q, %v", first, rest, err)
	}
}

// An upstream that cuts its response short: the client sees it cut, not
// a complete shorter body.
func TestFloorProxyAbortsCutResponse(t *testing.T) {
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		_ = conn.Close()
	})
	base, client := floorFixture(t, up.Listener.Addr().String())
	resp, err := client.Get(base + "/cut")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("a cut response read as complete: %q", b)
	}
}

func TestFloorProxyDeadUpstream(t *testing.T) {
	base, client := floorFixture(t, providertest.DeadAddr(t))
	resp, err := client.Get(base + "/plain")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
}

func TestParseFlagsFloor(t *testing.T) {
	o, err := parseFlags(nil, nil)
	if err != nil || o.floor || o.serveFloor {
		t.Fatalf("defaults: %v, floor %t, serve %t", err, o.floor, o.serveFloor)
	}
	o, err = parseFlags([]string{"-floor"}, nil)
	if err != nil || !o.floor {
		t.Fatalf("-floor: %v, %t", err, o.floor)
	}
}
