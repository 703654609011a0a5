package soak

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The client: bounds of the soak's config (docs/configuration.md): short,
// so that a client breaking one ends within the run.
const (
	headerTimeout = time.Second
	bodyTimeout   = time.Second
	sendTimeout   = time.Second
	idleTimeout   = 2 * time.Second
	maxBodyBytes  = 8 << 20
)

// boundSlack is how much later than its bound a hostile client may be
// ended on a loaded machine before the soak calls it unexpected.
const boundSlack = 5 * time.Second

// hostileScenarios are the hostile clients: those that break the pace
// HTTP expects, and those that play with what they send (games.go). A new
// hostile kind is one more entry in one of these lists; one that needs a
// route or a top-level block adds it in soakConfig, and one whose effect
// shows in the metrics or at an upstream adds its check to endChecks.
var hostileScenarios = slices.Concat(paceScenarios, pathScenarios, bodyScenarios)

// paceScenarios are clients that break the pace HTTP expects, each
// bounded by the client: block.
var paceScenarios = []*scenario{
	{
		// 408 before any upstream is called: ai-proxy reads the whole body
		// first.
		name: "slow_body", route: routeChat, code: http.StatusRequestTimeout, causes: []string{causeClientTimeout}, weight: 1,
		run: func(c *call) (int, error) { return c.onConn(false, c.slowBody(pathChat, "")) },
	},
	{
		// 408 while the body streams to the upstream, which has sent no
		// response yet.
		name: "plain_slow_body", route: routePlainChat, code: http.StatusRequestTimeout, causes: []string{causeClientTimeout}, weight: 1,
		run: func(c *call) (int, error) { return c.onConn(false, c.slowBody(pathChat, hostPlain)) },
	},
	{
		// The headers (200) went out before the client stopped reading:
		// phasegate records the 200 and closes the connection.
		name: "slow_reader", route: routeGuard, code: http.StatusOK, causes: []string{causeClientTimeout}, weight: 1,
		run: func(c *call) (int, error) { return c.onConn(true, c.slowReader(pathGuard, "")) },
	},
	{
		name: "plain_slow_reader", route: routePlainChat, code: http.StatusOK, causes: []string{causeClientTimeout}, weight: 1,
		run: func(c *call) (int, error) { return c.onConn(true, c.slowReader(pathChat, hostPlain)) },
	},
	{
		name: "slow_header", route: routePlain, code: http.StatusOK, causes: []string{causeCompleted}, weight: 1,
		run: func(c *call) (int, error) { return c.onConn(false, c.slowHeader) },
	},
	{
		// No request is read, counted or logged; were phasegate to log one
		// anyway, the id in the part sent would show it.
		name: "header_timeout", requests: noRequest, weight: 1,
		run: func(c *call) (int, error) { return c.onConn(false, c.headerPastTimeout) },
	},
	{
		name: "idle_reuse", route: routePlain, code: http.StatusOK, causes: []string{causeCompleted}, requests: 2, weight: 1,
		run: func(c *call) (int, error) { return c.onConn(false, c.idleReuse) },
	},
	{
		name: "idle_timeout", route: routePlain, code: http.StatusOK, causes: []string{causeCompleted}, weight: 1,
		run: func(c *call) (int, error) { return c.onConn(false, c.idlePastTimeout) },
	},
}

// rawConn is a connection to the data plane that a hostile client writes
// and reads by hand, at its own pace. The call's context ending closes it.
type rawConn struct {
	net.Conn
	br       *bufio.Reader
	stopHook func() bool
}

// dial connects to the data plane; with small, the connection advertises
// a small receive window and segment size (see smallWindow).
func (c *call) dial(small bool) (*rawConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if small {
		d.Control = smallWindow
	}
	conn, err := d.DialContext(c.ctx, "tcp", c.cl.addr)
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: conn, br: bufio.NewReader(conn), stopHook: context.AfterFunc(c.ctx, func() { conn.Close() })}, nil
}

// Close closes the connection, now rather than when the call ends.
func (r *rawConn) Close() error {
	r.stopHook()
	return r.Conn.Close()
}

// onConn dials the data plane (see dial), plays client on the connection
// and closes it.
func (c *call) onConn(small bool, client func(*rawConn) (int, error)) (int, error) {
	rc, err := c.dial(small)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return client(rc)
}

// head is a request head: the request line, Host (the data plane's
// address when host is ""), X-Request-Id: id, then hdr's name, value
// pairs and the blank line.
func (c *call) head(method, path, host, id string, hdr ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nX-Request-Id: %s\r\n", method, path, cmp.Or(host, c.cl.addr), id)
	for i := 0; i+1 < len(hdr); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", hdr[i], hdr[i+1])
	}
	b.WriteString("\r\n")
	return b.String()
}

// header reads a response's status line and headers within d; its body is
// read from the connection.
func (r *rawConn) header(method string, d time.Duration) (*http.Response, error) {
	if err := r.SetReadDeadline(time.Now().Add(d)); err != nil {
		return nil, err
	}
	return http.ReadResponse(r.br, &http.Request{Method: method})
}

// response reads a whole response (its body up to maxBody) within d.
func (r *rawConn) response(method string, d time.Duration) (*http.Response, []byte, error) {
	resp, err := r.header(method, d)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp, body, fmt.Errorf("status %d, reading the body: %w", resp.StatusCode, err)
	}
	return resp, body, nil
}

// wantClosed waits for the server to close the connection without
// sending anything, bound after since: not before half of bound (an
// earlier close is something else), nor after bound plus boundSlack.
// what names the bound.
func (r *rawConn) wantClosed(since time.Time, bound time.Duration, what string) error {
	if err := r.SetReadDeadline(since.Add(bound + boundSlack)); err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, r.br)
	waited := time.Since(since)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("the connection is still open %s after it began to wait out %s (%s)", waited.Round(time.Millisecond), what, bound)
	case n > 0:
		return fmt.Errorf("%d bytes came; want the connection closed without a response", n)
	case waited < bound/2:
		return fmt.Errorf("closed after %s, well before %s (%s)", waited.Round(time.Millisecond), what, bound)
	}
	// EOF (nil from io.Copy) or a reset: closed either way.
	return nil
}

// pause sleeps for d unless the call's context ends first.
func (c *call) pause(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
		return c.ctx.Err()
	case <-t.C:
		return nil
	}
}

// slowBody is a client that declares a body of the route's limit to path
// (for host), sends its first byte and stalls. phasegate must answer 408,
// with Connection: close, once body_timeout has passed, having grown the
// body's buffer only by the byte received.
func (c *call) slowBody(path, host string) func(*rawConn) (int, error) {
	return func(rc *rawConn) (int, error) {
		head := c.head(http.MethodPost, path, host, c.id, "Content-Type", "application/json", "Content-Length", strconv.Itoa(maxBodyBytes))
		if _, err := io.WriteString(rc, head+"{"); err != nil {
			return 0, err
		}
		stalled := time.Now()
		resp, body, err := rc.response(http.MethodPost, bodyTimeout+boundSlack)
		if err != nil {
			return 0, fmt.Errorf("no answer to a stalled body: %w", err)
		}
		waited := time.Since(stalled)
		if err := wantStatus(resp.StatusCode, http.StatusRequestTimeout, body); err != nil {
			return resp.StatusCode, err
		}
		if err := checkError(body, causeClientTimeout, ""); err != nil {
			return resp.StatusCode, err
		}
		switch {
		case !resp.Close:
			return resp.StatusCode, errors.New("408 without Connection: close")
		case waited < bodyTimeout/2:
			return resp.StatusCode, fmt.Errorf("408 after %s, well before body_timeout (%s)", waited, bodyTimeout)
		}
		return resp.StatusCode, nil
	}
}

// slowReader is a client that asks path (for host) for a long stream on a
// connection with a small receive window, reads the headers and stops
// reading for twice send_timeout. phasegate must give up on the blocked
// write and close the connection: when the client reads on, the stream
// ends before its end.
func (c *call) slowReader(path, host string) func(*rawConn) (int, error) {
	return func(rc *rawConn) (int, error) {
		body := chatBody(true, "Hello from a client that stops reading")
		head := c.head(http.MethodPost, path, host, c.id, "Content-Type", "application/json", "Content-Length", strconv.Itoa(len(body)),
			"X-Mock-Chunks", strconv.Itoa(slowReaderChunks), "X-Mock-Content", "soak slow reader "+c.id)
		if _, err := io.WriteString(rc, head+string(body)); err != nil {
			return 0, err
		}
		resp, err := rc.header(http.MethodPost, requestTimeout)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return resp.StatusCode, wantStatus(resp.StatusCode, http.StatusOK, b)
		}
		if err := c.pause(2 * sendTimeout); err != nil {
			return http.StatusOK, err
		}
		if err := rc.SetReadDeadline(time.Now().Add(boundSlack)); err != nil {
			return http.StatusOK, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		switch {
		case err == nil:
			return http.StatusOK, fmt.Errorf("the whole stream (%d bytes) came though the client stopped reading for %s", n, 2*sendTimeout)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return http.StatusOK, fmt.Errorf("after %d bytes the stream neither ended nor was closed", n)
		}
		return http.StatusOK, nil
	}
}

// slowHeader sends a request head in three pieces spread over a fifth to
// two fifths of header_timeout: slow, but in time.
func (c *call) slowHeader(rc *rawConn) (int, error) {
	head := c.head(http.MethodGet, pathHealth, "", c.id)
	gap := headerTimeout / time.Duration(5+c.rng.IntN(6)) // a tenth to a fifth
	cuts := []int{0, len(head) / 3, 2 * len(head) / 3, len(head)}
	for i := 1; i < len(cuts); i++ {
		if i > 1 {
			if err := c.pause(gap); err != nil {
				return 0, err
			}
		}
		if _, err := io.WriteString(rc, head[cuts[i-1]:cuts[i]]); err != nil {
			return 0, err
		}
	}
	resp, body, err := rc.response(http.MethodGet, requestTimeout)
	if err != nil {
		return 0, err
	}
	if err := wantStatus(resp.StatusCode, http.StatusOK, body); err != nil {
		return resp.StatusCode, err
	}
	if string(body) != "ok" {
		return resp.StatusCode, fmt.Errorf("body %q, want ok", body)
	}
	return resp.StatusCode, nil
}

// headerPastTimeout sends all of a request head but its last line break
// and stalls: phasegate must close the connection without a response once
// header_timeout has passed.
func (c *call) headerPastTimeout(rc *rawConn) (int, error) {
	start := time.Now()
	head := c.head(http.MethodGet, pathHealth, "", c.id)
	if _, err := io.WriteString(rc, strings.TrimSuffix(head, "\r\n")); err != nil {
		return 0, err
	}
	return 0, rc.wantClosed(start, headerTimeout, "header_timeout")
}

// idleReuse sends a request, leaves the connection idle for a quarter to
// a half of idle_timeout and sends another on it: both are answered.
func (c *call) idleReuse(rc *rawConn) (int, error) {
	for i, id := range c.ids {
		if i > 0 {
			if err := c.pause(idleTimeout/4 + time.Duration(c.rng.Int64N(int64(idleTimeout/4)))); err != nil {
				return 0, err
			}
		}
		if status, err := rc.healthz(c, id); err != nil {
			return status, fmt.Errorf("request %d on the connection: %w", i+1, err)
		}
	}
	return http.StatusOK, nil
}

// idlePastTimeout sends a request and leaves the connection idle:
// phasegate must close it once idle_timeout has passed.
func (c *call) idlePastTimeout(rc *rawConn) (int, error) {
	if status, err := rc.healthz(c, c.id); err != nil {
		return status, err
	}
	return http.StatusOK, rc.wantClosed(time.Now(), idleTimeout, "idle_timeout")
}

// healthz sends GET /healthz with X-Request-Id: id on the connection and
// checks that the answer is 200 "ok" and leaves the connection open.
func (r *rawConn) healthz(c *call, id string) (int, error) {
	if _, err := io.WriteString(r, c.head(http.MethodGet, pathHealth, "", id)); err != nil {
		return 0, err
	}
	resp, body, err := r.response(http.MethodGet, requestTimeout)
	switch {
	case err != nil:
		return 0, err
	case resp.StatusCode != http.StatusOK:
		return resp.StatusCode, wantStatus(resp.StatusCode, http.StatusOK, body)
	case string(body) != "ok":
		return resp.StatusCode, fmt.Errorf("body %q, want ok", body)
	case resp.Close:
		return resp.StatusCode, errors.New("the server closed a keep-alive connection after the response")
	}
	return resp.StatusCode, nil
}
