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

func TestIsMediaTypeAndSSE(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream": true, "Text/Event-Stream; charset=utf-8": true, "text/event-stream;;bad": true,
		"application/json": false, "": false,
	} {
		if IsSSE(http.Header{"Content-Type": {ct}}) != want {
			t.Errorf("IsSSE(%q) = %v", ct, !want)
		}
	}
	if !IsMediaType("application/json; charset=utf-8", "application/json") {
		t.Error("parameters must be allowed")
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
