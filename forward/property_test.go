package forward_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/forward"
	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

// What the property test's upstream does, chosen by the request path.
const (
	kindFast    = "fast"    // a small body at once
	kindStream  = "stream"  // three flushed chunks
	kindError   = "error"   // 503 with a JSON body
	kindSlow    = "slow"    // no header until cancelled: times out
	kindStall   = "stall"   // a header and a chunk, then nothing until cancelled
	kindRefused = "refused" // the node is down
)

// kinds weighs the stall, whose upstream request only ends if the proxy
// ends it, twice.
var kinds = []string{kindFast, kindStream, kindError, kindSlow, kindStall, kindStall, kindRefused}

const fastBody = `{"id":"chatcmpl-1","object":"chat.completion"}`

// behaviours is the property test's upstream. It counts the handlers still
// running, so that a path can check that its upstream request ended.
type behaviours struct{ running atomic.Int64 }

func (b *behaviours) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.running.Add(1)
	defer b.running.Add(-1)
	_, _ = io.Copy(io.Discard, r.Body)
	kind, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/k/"), "/")
	wait := func() {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	switch kind {
	case kindStream:
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: {\"n\":%d}\n\n", i)
			w.(http.Flusher).Flush()
		}
	case kindError:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":"busy"}`)
	case kindSlow:
		wait()
	case kindStall:
		_, _ = io.WriteString(w, "partial;")
		w.(http.Flusher).Flush()
		wait()
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, fastBody)
	}
}

// The harness's random exits, panics, mutations and disconnects around the
// proxy, against an upstream whose behaviour is drawn per path, keep the
// lifecycle's rules; and every upstream request ends with its path.
func TestPropertyProxyKeepsTheRules(t *testing.T) {
	// Upstreams that never answer time out quickly; those that answer or
	// refuse get a timeout no loaded machine can reach.
	const timeout, ample = 25 * time.Millisecond, 10 * time.Second
	b := &behaviours{}
	up := httptest.NewServer(b)
	defer up.Close()
	transport := forward.NewTransport()
	defer transport.CloseIdleConnections()
	live, err := forward.New(forward.Config{Nodes: map[string]int{addr(up): 1}, Timeout: ample}, transport)
	if err != nil {
		t.Fatal(err)
	}
	hanging, err := forward.New(forward.Config{Nodes: map[string]int{addr(up): 1}, Timeout: timeout}, transport)
	if err != nil {
		t.Fatal(err)
	}
	// A refused dial fails at once: a short timeout would only let a loaded
	// machine turn the refusal into a timeout.
	dead, err := forward.New(forward.Config{Nodes: map[string]int{deadAddr(t): 1}, Timeout: ample}, transport)
	if err != nil {
		t.Fatal(err)
	}

	// Request draws the path's kind before the harness builds its plugins.
	var kind string
	phasetest.Check(t, phasetest.Config{
		Request: func(rt *rapid.T) *http.Request {
			kind = rapid.SampledFrom(kinds).Draw(rt, "upstream kind")
			req := httptest.NewRequest(http.MethodPost, "/k/"+kind, strings.NewReader(`{"model":"m1"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Model", "m1")
			return req
		},
		Plugins: func(*phasetest.Env) []phases.Plugin {
			switch kind {
			case kindRefused:
				return []phases.Plugin{dead}
			case kindSlow, kindStall:
				return []phases.Plugin{hanging}
			}
			return []phases.Plugin{live}
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			checkOutcome(t, kind, r)
			deadline := time.Now().Add(2 * time.Second)
			for b.running.Load() != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the upstream request (%s) outlived its path:\n%s", kind, strings.Join(r.Journal, "\n"))
				}
				time.Sleep(time.Millisecond)
			}
		},
	})
}

// checkOutcome checks what the proxy's own failures turn into.
func checkOutcome(t phasetest.TB, kind string, r *phasetest.Result) {
	s := r.Summary
	if r.FrameworkFailed {
		return
	}
	if s.ExitPlugin != forward.Name {
		if s.Cause == phases.CauseCompleted && kind == kindFast && !r.BodyAltered && !bytes.Equal(r.Body, []byte(fastBody)) {
			t.Fatalf("the client got %q, want %q", r.Body, fastBody)
		}
		return
	}
	want := map[string]phases.Cause{
		kindSlow:    phases.CauseTimeout,
		kindStall:   phases.CauseTimeout,
		kindRefused: phases.CauseUpstreamError,
	}[kind]
	switch {
	case want == "":
		t.Fatalf("the %s upstream failed: %s (%v)", kind, s.Cause, s.Err)
	case s.Cause != want && s.Cause != phases.CauseClientClosed && s.Cause != phases.CauseClientTimeout: // the client may leave or stop reading during the exit
		t.Fatalf("the %s upstream ended as %s (%v), want %s", kind, s.Cause, s.Err, want)
	case kind == kindStall && s.ExitPhase == fsm.StateBodyFilter && s.HeadersSent && r.Status == http.StatusOK && !r.Aborted:
		// The stream's own header went out (a filter holding its first
		// chunk back leaves the exit's 504 to be the whole response).
		t.Fatalf("a stream cut by a timeout was not aborted")
	}
}
