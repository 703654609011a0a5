package httpx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestEndToEnd(t *testing.T) {
	h := http.Header{
		"Connection":        {"X-Hop, keep-alive"},
		"X-Hop":             {"1"},
		"Keep-Alive":        {"timeout=5"},
		"Transfer-Encoding": {"chunked"},
		"Upgrade":           {"websocket"},
		"X-Kept":            {"yes"},
	}
	got := EndToEnd(h)
	if len(got) != 1 || got.Get("X-Kept") != "yes" {
		t.Fatalf("EndToEnd = %v", got)
	}
	if h.Get("X-Hop") != "1" {
		t.Fatal("EndToEnd changed its argument")
	}
	if EndToEnd(nil) == nil {
		t.Fatal("EndToEnd(nil) must be an empty header")
	}
	if got := StripHop(h); len(got) != 1 || got.Get("X-Kept") != "yes" || len(h) != 1 {
		t.Fatalf("StripHop = %v, and left its argument %v", got, h)
	}
	if StripHop(nil) == nil {
		t.Fatal("StripHop(nil) must be an empty header")
	}
}

// Outgoing builds the request http.NewRequestWithContext builds from the
// URL's string form: the same bytes on the wire, for paths the server
// parsed from a client (escapes, an encoded slash, a query).
func TestOutgoingMatchesNewRequest(t *testing.T) {
	ctx := context.WithValue(context.Background(), ctxKey{}, 1)
	rapid.Check(t, func(rt *rapid.T) {
		target := "/" + rapid.StringMatching(`([a-z0-9._~-]|%2[fF]|%20|%[cC]3%[aA]9|/|;|=|@|:){0,24}`).Draw(rt, "path")
		if rapid.Bool().Draw(rt, "query") {
			target += "?" + rapid.StringMatching(`[a-z0-9=&%+]{0,16}`).Draw(rt, "rawquery")
		}
		in, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: client\r\n\r\n")))
		if err != nil {
			rt.Skip("not a request line net/http accepts")
		}
		host := rapid.SampledFrom([]string{"node:8080", "node", "node:", "[::1]:80"}).Draw(rt, "host")
		u := &url.URL{Scheme: "http", Host: host, Path: in.URL.Path, RawPath: in.URL.RawPath, RawQuery: in.URL.RawQuery}
		method := rapid.SampledFrom([]string{http.MethodGet, http.MethodPost, "PURGE"}).Draw(rt, "method")
		want, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
		if err != nil {
			rt.Fatalf("NewRequestWithContext(%q): %v", u.String(), err)
		}
		got := Outgoing(ctx, method, &url.URL{Scheme: u.Scheme, Host: host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}, http.Header{})
		want.Header = http.Header{}
		if got.Context() != ctx || got.Host != want.Host {
			rt.Fatalf("context or Host differ: %q, want %q", got.Host, want.Host)
		}
		var gb, wb bytes.Buffer
		if err := got.Write(&gb); err != nil {
			rt.Fatal(err)
		}
		if err := want.Write(&wb); err != nil {
			rt.Fatal(err)
		}
		if gb.String() != wb.String() {
			rt.Fatalf("on the wire:\n%q\nwant\n%q", gb.String(), wb.String())
		}
	})
}

type ctxKey struct{}

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{"X-Request-Id": true, "apikey": true, "a!#$%&'*+-.^_`|~z": true, "": false, "X Id": false, "X:Id": false, "é": false} {
		if IsToken(s) != want {
			t.Errorf("IsToken(%q) = %v", s, !want)
		}
	}
}

// IsSSE is the one answer to "is this body an event stream" for the
// runner, the upstreams and the test harness: media types compare without
// case (RFC 9110 §8.3.1), parameters and the spaces around them do not
// matter, and a longer type that merely starts alike is not one.
func TestIsSSE(t *testing.T) {
	for _, tc := range []struct {
		ct   string
		want bool
	}{
		{"text/event-stream", true},
		{"TEXT/EVENT-STREAM", true},
		{"Text/Event-Stream; charset=utf-8", true},
		{"text/event-stream;charset=UTF-8", true},
		{" text/event-stream ", true},
		{"\ttext/event-stream\t;\tcharset=utf-8", true},
		{"text/event-stream ; charset=utf-8", true},
		{"text/event-stream;", true},
		{"text/event-stream;;bad", true},     // a malformed parameter list still names its type
		{"text/event-stream; charset", true}, // likewise
		{"text/event-streams", false},
		{"text/event-stream-json", false},
		{"text/event-streamx; charset=utf-8", false},
		{"text/event", false},
		{"text/plain", false},
		{"application/json", false},
		{"application/x-ndjson", false},
		{"event-stream", false},
		{"", false},
		{"   ", false},
	} {
		h := http.Header{}
		if tc.ct != "" {
			h.Set("Content-Type", tc.ct)
		}
		if got := IsSSE(h); got != tc.want {
			t.Errorf("IsSSE(%q) = %v, want %v", tc.ct, got, tc.want)
		}
	}
	if IsSSE(http.Header{}) {
		t.Error("no Content-Type is not an event stream")
	}
}

func TestIsMediaType(t *testing.T) {
	for _, tc := range []struct {
		ct, want string
		ok       bool
	}{
		{"application/json; charset=utf-8", "application/json", true},
		{"Application/JSON", "application/json", true},
		{"application/jsonx", "application/json", false},
		{"", "application/json", false},
	} {
		if got := IsMediaType(tc.ct, tc.want); got != tc.ok {
			t.Errorf("IsMediaType(%q, %q) = %v, want %v", tc.ct, tc.want, got, tc.ok)
		}
	}
}

func TestTimeoutErrorIsADeadlineAndANetTimeout(t *testing.T) {
	var err error = &TimeoutError{Upstream: "10.0.0.1:80", Body: true, After: time.Second}
	var ne net.Error
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatal("TimeoutError must match DeadlineExceeded and be a net.Error timeout")
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal("a timeout is not a cancellation")
	}
	if got := err.Error(); got != "upstream 10.0.0.1:80: no response body bytes within 1s" {
		t.Fatalf("Error() = %q", got)
	}
}
