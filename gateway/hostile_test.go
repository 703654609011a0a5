package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
)

// hostile is an upstream on a raw listener that answers the first request
// of every connection with exact bytes, and any later request on the same
// connection with a good response (so a reused connection shows). It
// records how many connections it accepted and which of them the gateway
// closed.
type hostile struct {
	ln      net.Listener
	answer  []byte
	then    []byte // written after a pause, on the same connection
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   int
	reused  int
	closedc chan struct{} // one value per connection the gateway closed
}

const goodAnswer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + "15" + "\r\n\r\n" + `{"good":"yes"} `

func newHostile(t *testing.T, answer, then string) *hostile {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostile{ln: ln, answer: []byte(answer), then: []byte(then), closedc: make(chan struct{}, 64)}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns++
			h.mu.Unlock()
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				h.serve(conn)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		h.wg.Wait()
	})
	return h
}

func (h *hostile) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	for i := 0; ; i++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			if err == io.EOF || strings.Contains(err.Error(), "connection reset") {
				h.closedc <- struct{}{}
			}
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if i > 0 {
			h.mu.Lock()
			h.reused++
			h.mu.Unlock()
			_, _ = io.WriteString(conn, goodAnswer)
			continue
		}
		if _, err := conn.Write(h.answer); err != nil {
			return
		}
		if len(h.then) > 0 {
			time.Sleep(50 * time.Millisecond)
			if _, err := conn.Write(h.then); err != nil {
				return
			}
		}
	}
}

func (h *hostile) addr() string { return h.ln.Addr().String() }

func (h *hostile) stats() (conns, reused int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns, h.reused
}

func hostileConfig(node, okNode string) string {
	return fmt.Sprintf(`
routes:
  - id: plain
    uri: /plain/*
    upstream: { nodes: { %[1]q: 1 }, timeout: 3s }
  - id: ai
    uri: /v1/chat/completions
    plugins: { ai-proxy: { provider: openai-compatible, endpoint: "http://%[1]s/v1/chat/completions", timeout: 3s } }
  - id: ok
    uri: /ok
    upstream: { nodes: { %[2]q: 1 } }
`, node, okNode)
}

// send makes one request to the plain or the AI route.
func send(t *testing.T, tg *testGateway, ai bool) (*http.Response, string) {
	t.Helper()
	var resp *http.Response
	var err error
	if ai {
		resp, err = http.Post(tg.url("/v1/chat/completions"), "application/json", strings.NewReader(providertest.Chat("m", false)))
	} else {
		resp, err = http.Get(tg.url("/plain/x"))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp, readAll(t, resp.Body)
}

// Upstream oddities end as clean 502s on plain and AI routes: the gauges
// fall to 0, the access log says upstream_error, no panic reaches the
// server, and the gateway serves the next request.
func TestHostileUpstreamIs502(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\n"
	body := `{"id":"x"}`
	for _, c := range []struct {
		name, answer string
	}{
		{"status below 100", "HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\n{}"},
		{"status 000", "HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\n{}"},
		{"status above 999", "HTTP/1.1 1000 Big\r\nContent-Length: 2\r\n\r\n{}"},
		{"unsolicited 101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: Upgrade\r\n\r\nraw bytes of another protocol"},
		{"header line without a colon", ok + "this line has no colon\r\nContent-Length: 2\r\n\r\n{}"},
		{"header block starting with a continuation", ok + " folded: x\r\nContent-Length: 2\r\n\r\n{}"},
		{"header name with a space", ok + "Bad Name: x\r\nContent-Length: 2\r\n\r\n{}"},
		{"header block over MaxResponseHeaderBytes", ok + "X-Big: " + strings.Repeat("a", 1<<20+1024) + "\r\nContent-Length: 2\r\n\r\n{}"},
		{"status line HTTP/2.0", "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"},
		{"status line HTTP/0.9", "HTTP/0.9 200 OK\r\nContent-Length: 2\r\n\r\n{}"},
		{"status line not HTTP", "ICY 200 OK\r\nContent-Length: 2\r\n\r\n{}"},
		{"Content-Length with chunked", ok + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)},
		{"negative Content-Length", ok + "Content-Length: -1\r\n\r\n{}"},
		{"conflicting Content-Lengths", ok + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} "},
		{"body longer than Content-Length", ok + "Content-Length: 2\r\n\r\n{}SURPLUS: the next response"},
		{"data after the last chunk", ok + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHostile(t, c.answer, "")
			good := newUpstream(t)
			tg := newTestGateway(t, hostileConfig(h.addr(), good.node()))
			n := 0
			for _, ai := range []bool{false, true} {
				resp, got := send(t, tg, ai)
				n++
				if resp.StatusCode != http.StatusBadGateway || !strings.Contains(got, `"type":"upstream_error"`) {
					t.Errorf("ai=%v: %d %q, want a 502 upstream_error", ai, resp.StatusCode, got)
				}
				line := tg.log.waitAccessLines(t, n)[n-1]
				if line["cause"] != "upstream_error" || line["status"] != float64(502) {
					t.Errorf("ai=%v: access line %v", ai, line)
				}
				next, err := http.Get(tg.url("/ok"))
				if err != nil {
					t.Fatalf("the gateway does not serve the next request: %v", err)
				}
				next.Body.Close()
				n++
				if next.StatusCode != http.StatusOK {
					t.Errorf("next request: %d", next.StatusCode)
				}
			}
			tg.waitGaugesZero(t, metrics.NameHTTPActive, metrics.NameLLMActive)
			if _, reused := h.stats(); reused != 0 {
				t.Errorf("a connection that carried a bad response was reused %d times", reused)
			}
		})
	}
}

// Surplus that arrives after the response has been delivered cannot be
// caught before anything is sent: the client gets the complete response
// (exactly Content-Length bytes, or the complete stream), the surplus is
// dropped, and the connection is closed, never reused.
func TestLateSurplusClosesTheConnection(t *testing.T) {
	for _, c := range []struct {
		name, answer string
		ai           bool
		want         string
	}{
		{"plain", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, "ok"},
		{"ai stream", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 14\r\n\r\ndata: [DONE]\n\n", true, "data: [DONE]\n\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHostile(t, c.answer, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
			good := newUpstream(t)
			tg := newTestGateway(t, hostileConfig(h.addr(), good.node()))
			var resp *http.Response
			var got string
			if c.ai {
				r, err := http.Post(tg.url("/v1/chat/completions"), "application/json", strings.NewReader(providertest.Chat("m", true)))
				if err != nil {
					t.Fatal(err)
				}
				resp, got = r, readAll(t, r.Body)
				r.Body.Close()
			} else {
				resp, got = send(t, tg, false)
			}
			if resp.StatusCode != 200 || got != c.want {
				t.Fatalf("%d %q, want 200 %q", resp.StatusCode, got, c.want)
			}
			select {
			case <-h.closedc:
			case <-time.After(3 * time.Second):
				t.Fatal("the gateway kept the poisoned connection open")
			}
			if resp, got := send(t, tg, c.ai); resp.StatusCode != 502 && resp.StatusCode != 200 || strings.Contains(got, "evil") {
				t.Fatalf("second request: %d %q", resp.StatusCode, got)
			}
			if conns, reused := h.stats(); conns != 2 || reused != 0 {
				t.Errorf("%d connections, %d reused; want 2 and none reused", conns, reused)
			}
			tg.waitGaugesZero(t, metrics.NameHTTPActive, metrics.NameLLMActive)
		})
	}
}
