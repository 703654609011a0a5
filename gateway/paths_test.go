package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const secret = "TOP SECRET: the admin's file"

// fileOrigin is an upstream that resolves dot-segments itself
// (http.FileServer cleans the decoded path), so any path game that gets
// past the router reaches the file. It records each request target.
type fileOrigin struct {
	*httptest.Server
	mu      sync.Mutex
	targets []string
}

func newFileOrigin(t *testing.T) *fileOrigin {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"admin/secret.txt": secret, "public/hello.txt": "hello"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := &fileOrigin{}
	files := http.FileServer(http.Dir(dir))
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.targets = append(o.targets, r.RequestURI)
		o.mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *fileOrigin) last() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.targets) == 0 {
		return ""
	}
	return o.targets[len(o.targets)-1]
}

func (o *fileOrigin) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.targets)
}

// rawGet writes a request line exactly as given on a fresh connection, so
// no client library cleans the target, and reads the response.
func rawGet(t *testing.T, addr, target string, header ...string) (*http.Response, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	return resp, readAll(t, resp.Body)
}

func pathsConfig(node string) string {
	return fmt.Sprintf(`
consumers:
  - { username: alice, key: sk-alice }
routes:
  - id: admin
    uri: /admin/*
    plugins: { key-auth: {} }
    upstream: { nodes: { %[1]q: 1 } }
  - id: public
    uri: /public/*
    upstream: { nodes: { %[1]q: 1 } }
  - id: files
    uri: /files/*
    allow_encoded_slashes: true
    upstream: { nodes: { %[1]q: 1 } }
`, node)
}

// The path games of issue 8: with /admin/* behind key-auth and /public/*
// open, no spelling of a climb out of /public reaches the secret without
// the key, and the upstream gets the path the router matched.
func TestPathGamesDoNotBypassRoutes(t *testing.T) {
	origin := newFileOrigin(t)
	tg := newTestGateway(t, pathsConfig(strings.TrimPrefix(origin.URL, "http://")))
	addr := tg.srv.Listener.Addr().String()

	cases := []struct {
		target   string
		header   []string
		status   int
		upstream string // the target the origin must have received; "" if none
		route    string // the access log's route
	}{
		{target: "/public/../admin/secret.txt", status: 401, route: "admin"},
		{target: "/public/%2e%2e/admin/secret.txt", status: 401, route: "admin"},
		{target: "/public/%2E%2E/admin/secret.txt", status: 401, route: "admin"},
		{target: "/public/.%2e/admin/secret.txt", status: 401, route: "admin"},
		{target: "/public/%2e./admin/secret.txt", status: 401, route: "admin"},
		{target: "//admin/secret.txt", status: 401, route: "admin"},
		{target: "/public//..//admin/secret.txt", status: 401, route: "admin"},
		{target: "http://gw.test/public/../admin/secret.txt", status: 401, route: "admin"},
		{target: "/public/%2e%2e/admin/secret.txt", header: []string{"apikey: sk-alice"}, status: 200, upstream: "/admin/secret.txt", route: "admin"},
		{target: "/public/./x/../hello.txt?q=%2F..&b=a+b", status: 200, upstream: "/public/hello.txt?q=%2F..&b=a+b", route: "public"},
		{target: "/public/hello.txt/..", status: 200, upstream: "/public/", route: "public"},
		{target: "/public/../../admin/secret.txt", status: 400, route: ""},
		{target: "/%2e%2e/admin/secret.txt", status: 400, route: ""},
		{target: "*", status: 400, route: ""},
		{target: "/public/..%2Fadmin/secret.txt", status: 400, route: "public"},
		{target: "/public/..%2fadmin/secret.txt", status: 400, route: "public"},
		{target: "/public/..%5Cadmin/secret.txt", status: 400, route: "public"},
		{target: `/public/..\admin/secret.txt`, status: 400, route: "public"},
		{target: "/nowhere%2Fx", status: 400, route: ""},
		{target: "/files/a%2Fb?x=1", status: 404, upstream: "/files/a%2Fb?x=1", route: "files"},
		{target: "/files/a%5cb/../c", status: 404, upstream: "/files/c", route: "files"},
	}
	for i, c := range cases {
		before := origin.count()
		resp, body := rawGet(t, addr, c.target, c.header...)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.target, resp.StatusCode, c.status, body)
		}
		if strings.Contains(body, secret) && c.header == nil {
			t.Errorf("%s: the secret leaked without the key", c.target)
		}
		switch {
		case c.upstream != "" && origin.last() != c.upstream:
			t.Errorf("%s: the upstream got %q, want %q", c.target, origin.last(), c.upstream)
		case c.upstream == "" && c.status != 200 && origin.count() != before:
			t.Errorf("%s: the upstream was called (%q)", c.target, origin.last())
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: no X-Request-Id", c.target)
		}
		if c.status == 400 {
			var e struct {
				Error struct{ Message, Type string }
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Type != "invalid_request_error" || e.Error.Message == "" {
				t.Errorf("%s: 400 body %q is not an OpenAI-shaped error", c.target, body)
			}
		}
		lines := tg.log.waitAccessLines(t, i+1)
		line := lines[i]
		if line["route"] != c.route || line["status"] != float64(c.status) {
			t.Errorf("%s: access line route %v status %v, want %q %d", c.target, line["route"], line["status"], c.route, c.status)
		}
		if c.status == 400 && (line["exit_plugin"] != "router" || line["cause"] != "exit") {
			t.Errorf("%s: access line %v, want an exit of the router", c.target, line)
		}
		if c.status == 400 && c.route != "" && strings.Contains(c.target, "%") && line["path"] != c.target {
			t.Errorf("%s: access line path %q, want the path as sent", c.target, line["path"])
		}
	}
	if got := testutil.ToFloat64(tg.Metrics().HTTPRequests.WithLabelValues("", "400")); got != 4 {
		t.Errorf(`phasegate_http_requests_total{route="",code="400"} = %v, want 4`, got)
	}
	if got := testutil.ToFloat64(tg.Metrics().HTTPRequests.WithLabelValues("public", "400")); got != 4 {
		t.Errorf(`phasegate_http_requests_total{route="public",code="400"} = %v, want 4`, got)
	}
	tg.waitGaugesZero(t, "phasegate_http_active_requests")
}
