package phases

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// deadlineWriter records the write deadlines an http.ResponseController
// sets on it.
type deadlineWriter struct {
	*httptest.ResponseRecorder
	deadlines []time.Time
}

func (w *deadlineWriter) SetWriteDeadline(t time.Time) error {
	w.deadlines = append(w.deadlines, t)
	return nil
}

// Writes within a millisecond of a send deadline being set keep it; a
// later write gets a fresh one. Every write has at least the send timeout
// less a millisecond before its deadline.
func TestSendDeadlineReuse(t *testing.T) {
	const send = time.Second
	w := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
	s := &httpSink{w: w, rc: http.NewResponseController(w), send: send}
	check := func(when string) {
		t.Helper()
		last := w.deadlines[len(w.deadlines)-1]
		if left := time.Until(last); left < send-maxDeadlineReuse-50*time.Millisecond {
			t.Fatalf("%s: the write has %v before its deadline, want about %v", when, left, send)
		}
	}
	if err := s.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = s.Write([]byte("b"))
	_ = s.Flush()
	quick := time.Since(start) < maxDeadlineReuse
	if quick && len(w.deadlines) != 1 {
		t.Fatalf("writes within %v of the deadline's setting set %d deadlines, want 1", maxDeadlineReuse, len(w.deadlines))
	}
	check("a write right after another")
	n := len(w.deadlines)
	time.Sleep(2 * maxDeadlineReuse)
	_ = s.Write([]byte("c"))
	if len(w.deadlines) != n+1 {
		t.Fatalf("a write %v after the deadline was set did not set a new one", 2*maxDeadlineReuse)
	}
	check("a later write")
	if w.Body.String() != "abc" {
		t.Fatalf("body %q", w.Body.String())
	}
}

// With a send timeout under 64 ms, a deadline is reused for at most a 64th
// of it.
func TestSendDeadlineReuseShortTimeout(t *testing.T) {
	const send = 32 * time.Millisecond
	w := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
	s := &httpSink{w: w, rc: http.NewResponseController(w), send: send}
	_ = s.Write([]byte("a"))
	time.Sleep(send / 32)
	_ = s.Write([]byte("b"))
	if len(w.deadlines) != 2 {
		t.Fatalf("%d deadlines: a write %v after the last was set kept it, with a send timeout of %v", len(w.deadlines), send/32, send)
	}
}
