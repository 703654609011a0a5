package phases_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/fsm/testhook"
	"github.com/phasegate/phasegate/phases"
)

// panickySink panics where a broken ResponseWriter wrapper might: outside
// every hook wrapper, inside the runner itself.
type panickySink struct {
	onHeader bool
	writeOK  bool
	aborted  int
	written  int
}

func (s *panickySink) WriteHeader(int, http.Header) error {
	if s.onHeader {
		s.onHeader = false
		panic("sink exploded")
	}
	return nil
}
func (s *panickySink) Write([]byte) error {
	if !s.writeOK {
		panic("sink exploded on write")
	}
	s.written++
	return nil
}
func (s *panickySink) Flush() error { return nil }
func (s *panickySink) Abort()       { s.aborted++ }

type holder struct{ released int }

func (h *holder) Name() string { return "holder" }
func (h *holder) Access(ctx context.Context, r *phases.Request) phases.Exit {
	r.Scope.Acquire(fsm.Resource{Name: "slot"}, func() { h.released++ })
	return phases.Exit{}
}

// The deferred safety net: a panic that escapes the runner still ends in
// log exactly once and done exactly once, with every binding released.
func TestPanicEscapingTheRunnerStillReachesDone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sink    *panickySink
		panics  int // recovered and reported
		aborted int
	}{
		// The client gets a whole 500.
		{"in WriteHeader", &panickySink{onHeader: true, writeOK: true}, 1, 0},
		// The 500's body panics too: the response is aborted, once.
		{"in WriteHeader, then in Write", &panickySink{onHeader: true}, 2, 1},
		// Headers are out: the response is aborted, once.
		{"in Write after the header", &panickySink{}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &holder{}
			logs, recovered := 0, 0
			var steps []fsm.Step
			var sum phases.Summary
			c, err := phases.NewChain(phases.Options{Hooks: phases.Hooks{
				Entered:   func(_ *phases.Request, s fsm.Step) { steps = append(steps, s) },
				Recovered: func(*phases.Request, fsm.State, string, any) { recovered++ },
				Finished:  func(_ context.Context, s *phases.Summary) { logs++; sum = *s; sum.Trace = nil },
			}}, h, static{})
			if err != nil {
				t.Fatal(err)
			}
			c.Serve(context.Background(), httptest.NewRequest("GET", "/", nil), tc.sink)
			if logs != 1 || h.released != 1 || recovered != tc.panics {
				t.Fatalf("log ran %d times, binding released %d times, %d panics recovered, want %d", logs, h.released, recovered, tc.panics)
			}
			if tc.sink.aborted != tc.aborted {
				t.Fatalf("the response was aborted %d times, want %d", tc.sink.aborted, tc.aborted)
			}
			if last := steps[len(steps)-1]; last.To != fsm.StateDone {
				t.Fatalf("the request ended in %s", last.To)
			}
			if sum.Cause != phases.CausePanic {
				t.Fatalf("cause %s, want panic", sum.Cause)
			}
		})
	}
}

// refuser ends the body with an exit before anything is sent.
type refuser struct{}

func (refuser) Name() string { return "refuser" }
func (refuser) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	return phases.End(phases.Error(403, "refused", "no"))
}

// A sink that panics while an exit's response is being written: the exit
// was never taken, the panic ended the request, and the log says so.
func TestPanicWritingAnExitIsNotLoggedAsTheExit(t *testing.T) {
	var sum phases.Summary
	c, err := phases.NewChain(phases.Options{Hooks: phases.Hooks{
		Finished: func(_ context.Context, s *phases.Summary) { sum = *s; sum.Trace = append([]fsm.Step(nil), s.Trace...) },
	}}, refuser{}, static{})
	if err != nil {
		t.Fatal(err)
	}
	sink := &panickySink{onHeader: true, writeOK: true}
	c.Serve(context.Background(), httptest.NewRequest("GET", "/", nil), sink)
	if sum.Cause != phases.CausePanic || sum.ExitPhase != "" || sum.ExitPlugin != "" || sum.Status != 500 {
		t.Fatalf("logged cause %s, exit %q/%q, status %d; want panic, no exit, 500", sum.Cause, sum.ExitPhase, sum.ExitPlugin, sum.Status)
	}
	if got := fsm.Path(sum.Trace); got != "access>upstream>header_filter>body_filter>log" {
		t.Fatalf("path %s", got)
	}
}

// wedger wedges the request's machine from its access hook.
type wedger struct{ ok bool }

func (w *wedger) Name() string { return "wedger" }
func (w *wedger) Access(ctx context.Context, r *phases.Request) phases.Exit {
	w.ok = testhook.WedgeMachine(r.Scope)
	return phases.Exit{}
}

// A machine stuck mid-request is the safety net's own
// path: the client gets a 500, the log runs once with cause panic, and
// every binding is released as the machine is forced to done.
func TestWedgedMachineFailsLikeAPanic(t *testing.T) {
	w, h := &wedger{}, &holder{}
	logs := 0
	var sum phases.Summary
	c, err := phases.NewChain(phases.Options{Hooks: phases.Hooks{
		Finished: func(_ context.Context, s *phases.Summary) { logs++; sum = *s; sum.Trace = nil },
	}}, h, w, static{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if !w.ok {
		t.Fatal("the machine could not be wedged")
	}
	if rec.Code != 500 || logs != 1 || sum.Cause != phases.CausePanic || sum.Status != 500 || h.released != 1 {
		t.Fatalf("client got %d, log ran %d times with cause %q status %d, binding released %d times", rec.Code, logs, sum.Cause, sum.Status, h.released)
	}
	if !errors.Is(sum.Err, fsm.ErrStuck) {
		t.Fatalf("the log's error is %v, want fsm.ErrStuck", sum.Err)
	}
}
