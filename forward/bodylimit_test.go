package forward_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phasegate/phasegate/phases"
)

// bodyLimit sets the route's request body limit, as ai-proxy's
// max_request_body_bytes does.
type bodyLimit int64

func (bodyLimit) Name() string                 { return "body-limit" }
func (l bodyLimit) MaxRequestBodyBytes() int64 { return int64(l) }

// A body declared over the route's limit is answered 413 without calling
// any node.
func TestDeclaredBodyOverTheLimit(t *testing.T) {
	var calls atomic.Int32
	up := upstreamServer(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1); echo(w, r) })
	g := newGateway(t, one(up, 5*time.Second), bodyLimit(1024))

	resp, err := g.Client().Post(g.URL+"/upload", "text/plain", strings.NewReader(strings.Repeat("x", 1025)))
	if err != nil {
		t.Fatal(err)
	}
	checkErrorBody(t, resp, http.StatusRequestEntityTooLarge, "invalid_request_error")
	resp.Body.Close()
	if o := g.outcome(t); o.Status != 413 || o.Cause != phases.CauseExit {
		t.Errorf("logged %+v", o)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the upstream was called %d times", n)
	}

	resp, e := do(t, g.Client(), newRequest(t, "POST", g.URL+"/upload", strings.NewReader(strings.Repeat("x", 1024))))
	if resp.StatusCode != 200 || len(e.Body) != 1024 {
		t.Fatalf("a body at the limit: %d, %d bytes upstream", resp.StatusCode, len(e.Body))
	}
	g.outcome(t)
}

// A chunked body that runs over the limit mid-way cancels the upstream
// request and is answered 413.
func TestChunkedBodyOverTheLimit(t *testing.T) {
	b := newBlocker(nil)
	up := upstreamServer(t, b.ServeHTTP)
	g := newGateway(t, one(up, 5*time.Second), bodyLimit(1024))

	// io.MultiReader hides the length: the client sends it chunked.
	body := io.MultiReader(strings.NewReader(strings.Repeat("x", 512)), strings.NewReader(strings.Repeat("y", 64<<10)))
	resp, err := g.Client().Post(g.URL+"/upload", "text/plain", body)
	if err != nil {
		t.Fatal(err)
	}
	checkErrorBody(t, resp, http.StatusRequestEntityTooLarge, "invalid_request_error")
	resp.Body.Close()
	b.waitCancelled(t, 2*time.Second)
	if o := g.outcome(t); o.Status != 413 || o.Cause != phases.CauseExit {
		t.Errorf("logged %+v", o)
	}
}
