package httpx

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
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
}

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
