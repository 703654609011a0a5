package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/metrics"
)

// origin is the upstream of the client-bounds tests: a plain origin
// answering {"bytes":N} (and a 64 MiB body on /plain/big) and an
// OpenAI-compatible one on /v1/chat/completions. Every
// request it sees ends by sending its path on ended, after its context is
// done when it was cut.
type origin struct {
	*httptest.Server
	started chan string // a request arrived (and, for /plain/big, its first bytes went out)
	ended   chan string // "PATH cancelled" or "PATH done"
}

func newOrigin(t *testing.T) *origin {
	t.Helper()
	o := &origin{started: make(chan string, 128), ended: make(chan string, 128)}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { // echoes the body's length
		o.started <- r.URL.Path
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			o.end(r, true)
			return
		}
		fmt.Fprintf(w, `{"bytes":%d}`, n)
		o.end(r, false)
	})
	mux.HandleFunc("/plain/big", func(w http.ResponseWriter, r *http.Request) {
		const size = 64 << 20
		w.Header().Set("Content-Length", fmt.Sprint(size))
		piece := make([]byte, 64<<10)
		for i := 0; i < size/len(piece); i++ {
			if _, err := w.Write(piece); err != nil {
				break
			}
			if i == 0 {
				w.(http.Flusher).Flush()
				o.started <- r.URL.Path
			}
		}
		o.end(r, true)
	})
	mux.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			o.end(r, true)
			return
		}
		o.started <- r.URL.Path
		if !strings.Contains(string(body), `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"%d bytes"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`, len(body))
			o.end(r, false)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		event := func(content string) error {
			_, err := fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", content)
			w.(http.Flusher).Flush()
			return err
		}
		switch r.Header.Get("X-Stream") {
		case "forever": // as fast as the gateway takes it, until it is cut
			chunk := strings.Repeat("x", 8<<10)
			for event(chunk) == nil {
			}
			o.end(r, true)
		case "slow": // three events, further apart than the send timeout
			for i := range 3 {
				if i > 0 {
					time.Sleep(700 * time.Millisecond)
				}
				if event(fmt.Sprint("part", i)) != nil {
					o.end(r, true)
					return
				}
			}
			fmt.Fprint(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":3,\"total_tokens\":4}}\n\ndata: [DONE]\n\n")
			o.end(r, false)
		}
	})
	o.Server = httptest.NewServer(mux)
	t.Cleanup(o.Close)
	return o
}

// end reports how a request ended; a cut one is reported once its context
// is done, which is what the gateway cancelling it looks like.
func (o *origin) end(r *http.Request, cut bool) {
	if !cut {
		o.ended <- r.URL.Path + " done"
		return
	}
	select {
	case <-r.Context().Done():
		o.ended <- r.URL.Path + " cancelled"
	case <-time.After(10 * time.Second):
		o.ended <- r.URL.Path + " never cancelled"
	}
}

// wait reads n values from ch, failing after d.
func wait(t *testing.T, ch chan string, n int, d time.Duration) []string {
	t.Helper()
	var got []string
	deadline := time.After(d)
	for len(got) < n {
		select {
		case s := <-ch:
			got = append(got, s)
		case <-deadline:
			t.Fatalf("got %d of %d within %s: %v", len(got), n, d, got)
		}
	}
	return got
}

// boundsConfig serves a plain route and an AI route to o with the given
// client: block.
func boundsConfig(o *origin, client string) string {
	return fmt.Sprintf(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
client: %s
routes:
  - id: plain
    uri: /plain/*
    upstream: { nodes: { %q: 1 }, timeout: 10s }
  - id: chat
    uri: /v1/chat/completions
    plugins:
      ai-proxy: { provider: openai-compatible, endpoint: "%s/v1/chat/completions", timeout: 10s }
`, client, strings.TrimPrefix(o.URL, "http://"), o.URL)
}

// dial opens a raw connection to addr, closed when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// waitActive waits until route has n requests in flight.
func (tg *testGateway) waitActive(t *testing.T, route string, n float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for counterGauge(t, tg, route) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v requests in flight, want %v", route, counterGauge(t, tg, route), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// accessLines waits for n access lines and counts them by route, status
// and cause.
func (tg *testGateway) accessSummary(t *testing.T, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, l := range tg.log.waitAccessLines(t, n) {
		out[fmt.Sprintf("%s %v %s", l["route"], l["status"], l["cause"])]++
	}
	return out
}

// Clients that declare an 8 MiB body, send one byte and stall: the body
// buffers grow with the bytes received, not with the declared length, and
// each request ends after body_timeout with 408 and cause client_timeout,
// through the lifecycle (aborts counted, gauges back to 0, the plain
// route's upstream request cancelled, no goroutine left).
func TestSlowBodyClients(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	o := newOrigin(t)
	tg := startTestGateway(t, boundsConfig(o, "{ body_timeout: 3s }"))
	const n = 30
	heapBefore := heapInUse()
	var conns []net.Conn
	for _, path := range []string{"/v1/chat/completions", "/plain/echo"} {
		for range n {
			c := dial(t, tg.Addr().String())
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 8388608\r\n\r\n{", path)
			conns = append(conns, c)
		}
	}
	tg.waitActive(t, "chat", n)
	tg.waitActive(t, "plain", n)
	wait(t, o.started, n, 5*time.Second) // the plain route's upstream requests are open
	heapDuring := heapInUse()
	grown := int64(heapDuring) - int64(heapBefore)
	t.Logf("heap grew by %d KiB for %d stalled clients", grown>>10, 2*n)
	if grown > 32<<20 {
		t.Errorf("heap grew by %d MiB while %d clients stalled (each declared 8 MiB)", grown>>20, 2*n)
	}

	var wg sync.WaitGroup
	statuses := make(chan string, len(conns))
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				statuses <- err.Error()
				return
			}
			resp.Body.Close()
			statuses <- fmt.Sprintf("%d close=%v", resp.StatusCode, resp.Close)
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != "408 close=true" {
			t.Fatalf("a stalled client got %q, want 408 and Connection: close", s)
		}
	}
	for _, e := range wait(t, o.ended, n, 5*time.Second) {
		if e != "/plain/echo cancelled" {
			t.Errorf("upstream request: %s", e)
		}
	}
	if got := tg.accessSummary(t, 2*n); got["chat 408 client_timeout"] != n || got["plain 408 client_timeout"] != n {
		t.Errorf("access log: %v", got)
	}
	for _, c := range []struct{ route, phase string }{{"chat", "access"}, {"plain", "upstream"}} {
		if got := counter(t, tg.Metrics().LifecycleAborts.WithLabelValues(c.route, c.phase, "client_timeout")); got != n {
			t.Errorf("aborts_total{route=%s,phase=%s,cause=client_timeout} = %v, want %d", c.route, c.phase, got, n)
		}
	}
	tg.waitGaugesZero(t, metrics.NameHTTPActive, metrics.NameLLMActive)
}

// A client that stops reading a large response or a stream: the request
// ends about send_timeout after its last successful write, with cause
// client_timeout, the upstream request cancelled and the gauges back to 0.
func TestSlowReader(t *testing.T) {
	for _, tc := range []struct {
		name, route, phase, request string
	}{
		{"whole response", "plain", "body_filter", "GET /plain/big HTTP/1.1\r\nHost: gw\r\n\r\n"},
		{"stream", "chat", "body_filter", streamRequest("forever")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t)
			tg := startTestGateway(t, boundsConfig(o, "{ send_timeout: 300ms }"))
			c := dial(t, tg.Addr().String())
			io.WriteString(c, tc.request) // and never read
			wait(t, o.started, 1, 5*time.Second)
			start := time.Now()
			if e := wait(t, o.ended, 1, 5*time.Second)[0]; !strings.HasSuffix(e, " cancelled") {
				t.Fatalf("upstream request: %s", e)
			}
			lines := tg.log.waitAccessLines(t, 1)
			t.Logf("ended %s after the upstream started", time.Since(start).Round(time.Millisecond))
			if l := lines[0]; l["cause"] != "client_timeout" || l["status"] != float64(200) || l["route"] != tc.route {
				t.Fatalf("access line %v", l)
			}
			if got := counter(t, tg.Metrics().LifecycleAborts.WithLabelValues(tc.route, tc.phase, "client_timeout")); got != 1 {
				t.Errorf("aborts_total = %v", got)
			}
			tg.waitGaugesZero(t, metrics.NameHTTPActive, metrics.NameLLMActive)
		})
	}
}

func streamRequest(mode string) string {
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	return fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nX-Stream: %s\r\nContent-Length: %d\r\n\r\n%s", mode, len(body), body)
}

// SIGTERM's Shutdown does not wait shutdown_timeout for a client that
// stopped reading: the send timeout ends its request.
func TestShutdownDoesNotWaitForASlowReader(t *testing.T) {
	o := newOrigin(t)
	tg := startTestGateway(t, boundsConfig(o, "{ send_timeout: 300ms }"))
	c := dial(t, tg.Addr().String())
	io.WriteString(c, "GET /plain/big HTTP/1.1\r\nHost: gw\r\n\r\n")
	wait(t, o.started, 1, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := tg.Shutdown(ctx)
	took := time.Since(start)
	t.Logf("Shutdown took %s", took.Round(time.Millisecond))
	if err != nil || took > 3*time.Second {
		t.Fatalf("Shutdown took %s (%v) with a slow reader connected", took, err)
	}
	if l := tg.log.waitAccessLines(t, 1)[0]; l["cause"] != "client_timeout" {
		t.Fatalf("access line %v", l)
	}
}

// A stream whose events come further apart than send_timeout, to a client
// that reads them at once, is not cut: the timeout bounds each write, not
// the gaps between them.
func TestHealthySlowStreamSurvives(t *testing.T) {
	o := newOrigin(t)
	tg := startTestGateway(t, boundsConfig(o, "{ send_timeout: 300ms, body_timeout: 300ms }"))
	req, _ := http.NewRequest("POST", tg.url("/v1/chat/completions"), strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Stream", "slow")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(body, "part2") || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if l := tg.log.waitAccessLines(t, 1)[0]; l["cause"] != "completed" {
		t.Fatalf("access line %v", l)
	}
}

// header_timeout bounds the arrival of a request head and idle_timeout a
// keep-alive connection's wait, on the data plane and on the admin
// listener alike: the connection is closed, without a response.
func TestHeaderAndIdleTimeouts(t *testing.T) {
	o := newOrigin(t)
	tg := startTestGateway(t, boundsConfig(o, "{ header_timeout: 300ms, idle_timeout: 300ms }"))
	closedWithin := func(t *testing.T, c net.Conn, d time.Duration) {
		t.Helper()
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := io.Copy(io.Discard, c)
		if err != nil || time.Since(start) > d {
			t.Fatalf("connection still open after %s (%v)", time.Since(start).Round(time.Millisecond), err)
		}
	}
	for name, addr := range map[string]string{"data": tg.Addr().String(), "admin": tg.AdminAddr().String()} {
		t.Run(name+" head", func(t *testing.T) {
			c := dial(t, addr)
			io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: gw\r\n") // the head never ends
			closedWithin(t, c, 1500*time.Millisecond)
		})
		t.Run(name+" idle", func(t *testing.T) {
			c := dial(t, addr)
			io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.Close {
				t.Fatal("the server did not keep the connection alive")
			}
			start := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) || time.Since(start) > 1500*time.Millisecond {
				t.Fatalf("idle connection still open after %s (%v)", time.Since(start).Round(time.Millisecond), err)
			}
		})
	}
}

// maxBodyConfig has routes at the default limit, with a route's own limit
// above and below it, and AI routes whose plugin's limit wins over the
// route's, both ways.
func maxBodyConfig(o *origin) string {
	node := strings.TrimPrefix(o.URL, "http://")
	return fmt.Sprintf(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
routes:
  - { id: plain, uri: /plain/*, upstream: { nodes: { %[1]q: 1 } } }
  - { id: raised, uri: /raised/*, max_body_bytes: 16777216, upstream: { nodes: { %[1]q: 1 } } }
  - { id: lowered, uri: /lowered/*, max_body_bytes: 1024, upstream: { nodes: { %[1]q: 1 } } }
  - id: chat
    uri: /v1/chat/completions
    plugins: { ai-proxy: { provider: openai-compatible, endpoint: "%[2]s/v1/chat/completions" } }
  - id: chat-raised
    uri: /chat-raised
    max_body_bytes: 1024
    plugins: { ai-proxy: { provider: openai-compatible, endpoint: "%[2]s/v1/chat/completions", max_request_body_bytes: 16777216 } }
  - id: chat-lowered
    uri: /chat-lowered
    plugins:
      ai-proxy-multi:
        max_request_body_bytes: 1024
        instances: [{ name: a, provider: openai-compatible, endpoint: "%[2]s/v1/chat/completions" }]
`, node, o.URL)
}

// chatOfSize is a chat request body of exactly n bytes.
func chatOfSize(n int) string {
	const head, tail = `{"model":"m","messages":[{"role":"user","content":"`, `"}]}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// max_body_bytes: client.max_body_bytes by default, a route's own limit
// above or below it, and an upstream plugin's max_request_body_bytes above
// both (a 9 MiB body accepted when the plugin allows 16 MiB, whatever the
// route says) or below them.
func TestMaxBodyBytes(t *testing.T) {
	o := newOrigin(t)
	tg := startTestGateway(t, maxBodyConfig(o))
	const mib = 1 << 20
	for _, tc := range []struct {
		name, path string
		size       int
		status     int
	}{
		{"default limit", "/plain/x", 8 * mib, 200},
		{"over the default limit", "/plain/x", 8*mib + 1, 413},
		{"route raises it", "/raised/x", 9 * mib, 200},
		{"route lowers it", "/lowered/x", 1025, 413},
		{"at the lowered limit", "/lowered/x", 1024, 200},
		{"AI route, default limit", "/v1/chat/completions", 9 * mib, 413},
		{"plugin raises it above the route's", "/chat-raised", 9 * mib, 200},
		{"plugin lowers it", "/chat-lowered", 2048, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := chatOfSize(tc.size)
			resp, err := http.Post(tg.url(tc.path), "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("%d bytes: %d %.200s, want %d", tc.size, resp.StatusCode, got, tc.status)
			}
			if tc.status == 200 && !strings.Contains(got, fmt.Sprint(tc.size)) {
				t.Errorf("the upstream did not get the whole body: %.200s", got)
			}
			if tc.status == 413 && !strings.Contains(got, `"code":413`) {
				t.Errorf("413 body %.200s", got)
			}
		})
	}
	for _, l := range tg.log.waitAccessLines(t, 8) {
		if l["status"] == float64(413) && (l["cause"] != "exit" || l["lifecycle"] == "") {
			t.Errorf("413 access line %v", l)
		}
	}
	tg.waitGaugesZero(t, metrics.NameHTTPActive, metrics.NameLLMActive)
}

// A chunked body that runs over a plain route's limit mid-way cancels the
// upstream request and is answered 413.
func TestChunkedBodyOverTheLimitCancelsUpstream(t *testing.T) {
	o := newOrigin(t)
	tg := startTestGateway(t, maxBodyConfig(o))
	pr, pw := io.Pipe()
	go func() {
		// The first piece fits; the upstream request starts with it.
		pw.Write([]byte(strings.Repeat("a", 512)))
		<-o.started
		pw.Write([]byte(strings.Repeat("b", 4096)))
		pw.Close()
	}()
	resp, err := http.Post(tg.url("/lowered/x"), "text/plain", pr) // a pipe: sent chunked
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if e := wait(t, o.ended, 1, 5*time.Second)[0]; e != "/lowered/x cancelled" {
		t.Fatalf("upstream request: %s", e)
	}
	if l := tg.log.waitAccessLines(t, 1)[0]; l["status"] != float64(413) || l["exit_phase"] != "upstream" {
		t.Errorf("access line %v", l)
	}
	tg.waitGaugesZero(t, metrics.NameHTTPActive)
}
