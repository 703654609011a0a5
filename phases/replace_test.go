package phases_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/phases"
)

// eventsUpstream streams one event per chunk.
type eventsUpstream []string

func (eventsUpstream) Name() string { return "sse" }
func (u eventsUpstream) Upstream(context.Context, *phases.Request) (*phases.Response, error) {
	return &phases.Response{Status: 200, SSE: true, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: &sseBody{events: u}}, nil
}

// eventRewriter replaces each event by what replace returns for its data.
type eventRewriter struct {
	replace func(data string) (string, bool)
}

func (eventRewriter) Name() string  { return "a-eventRewriter" }
func (eventRewriter) Priority() int { return 10 }
func (w eventRewriter) BodyFilter(_ context.Context, c *phases.BodyChunk) phases.BodyResult {
	if out, ok := w.replace(string(c.Event)); ok {
		if out == "" {
			return phases.Replace(nil)
		}
		return phases.Replace([]byte(out))
	}
	return phases.BodyResult{}
}

// eventReader notes the Data and Event of every call.
type eventReader struct{ calls *[][2]string }

func (eventReader) Name() string { return "b-eventReader" }
func (r eventReader) BodyFilter(_ context.Context, c *phases.BodyChunk) phases.BodyResult {
	if len(c.Data) > 0 {
		*r.calls = append(*r.calls, [2]string{string(c.Data), string(c.Event)})
	}
	return phases.BodyResult{}
}

// A filter after one that replaced an event sees what the client will
// get: no event when the chunk was held back, the new event's data when
// it was rewritten, and each event on its own, one call each, when it
// became several.
func TestLaterFiltersSeeTheReplacement(t *testing.T) {
	var calls [][2]string
	c, err := phases.NewChain(phases.Options{},
		eventRewriter{func(d string) (string, bool) {
			switch d {
			case "held":
				return "", true
			case "one":
				return "data: ONE\n\n", true
			case "two":
				return "data: 2a\n\nevent: x\ndata: 2b\n\n", true
			}
			return "", false
		}},
		eventReader{&calls}, eventsUpstream{"held", "one", "two", "kept"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	want := [][2]string{
		{"data: ONE\n\n", "ONE"},
		{"data: 2a\n\n", "2a"},
		{"event: x\ndata: 2b\n\n", "2b"},
		{"data: kept\n\n", "kept"},
	}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("the eventReader saw %q,\nwant %q", calls, want)
	}
	if got := rec.Body.String(); got != "data: ONE\n\ndata: 2a\n\nevent: x\ndata: 2b\n\ndata: kept\n\n" {
		t.Errorf("the client got %q", got)
	}
	if strings.Contains(rec.Body.String(), "held") {
		t.Error("the held event reached the client")
	}
}

// eosFlusher holds every event back and writes them all, as two events
// each, at the end of the body, as a buffering filter does.
type eosFlusher struct{ held *[]string }

func (eosFlusher) Name() string  { return "a-flusher" }
func (eosFlusher) Priority() int { return 10 }
func (f eosFlusher) BodyFilter(_ context.Context, c *phases.BodyChunk) phases.BodyResult {
	if len(c.Event) > 0 {
		*f.held = append(*f.held, string(c.Event))
	}
	if !c.EOS {
		return phases.Replace(nil)
	}
	var out strings.Builder
	for _, d := range *f.held {
		out.WriteString("data: " + d + "\n\ndata: " + d + "!\n\n")
	}
	return phases.Replace([]byte(out.String()))
}

// eosCounter notes the events it sees and the calls that carry the end.
type eosCounter struct{ events, ends *[]string }

func (eosCounter) Name() string { return "b-counter" }
func (c eosCounter) BodyFilter(_ context.Context, b *phases.BodyChunk) phases.BodyResult {
	if len(b.Event) > 0 {
		*c.events = append(*c.events, string(b.Event))
	}
	if b.EOS {
		*c.ends = append(*c.ends, string(b.Event))
	}
	return phases.BodyResult{}
}

// A buffer written out at the end of the body reaches the next filter as
// its events, one call each, and the end of the body comes once, with the
// last of them.
func TestAReplacementAtTheEndEndsOnce(t *testing.T) {
	var held, events, ends []string
	c, err := phases.NewChain(phases.Options{}, eosFlusher{&held}, eosCounter{&events, &ends}, eventsUpstream{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if want := []string{"a", "a!", "b", "b!"}; !reflect.DeepEqual(events, want) {
		t.Errorf("the counter saw %q, want %q", events, want)
	}
	if !reflect.DeepEqual(ends, []string{"b!"}) {
		t.Errorf("the end of the body came with %q, want once, with the last event", ends)
	}
	if got := rec.Body.String(); got != "data: a\n\ndata: a!\n\ndata: b\n\ndata: b!\n\n" {
		t.Errorf("the client got %q", got)
	}
}

// exitOn ends the response at the event whose data is at.
type exitOn struct{ at string }

func (exitOn) Name() string { return "b-exit" }
func (e exitOn) BodyFilter(_ context.Context, c *phases.BodyChunk) phases.BodyResult {
	if string(c.Event) == e.at {
		return phases.End(phases.Error(http.StatusBadGateway, "server_error", "cut at "+e.at))
	}
	return phases.BodyResult{}
}

// logOnce notes every summary the log phase gets.
type logOnce struct{ seen *[]phases.Summary }

func (logOnce) Name() string                               { return "c-log" }
func (l logOnce) Log(_ context.Context, s *phases.Summary) { *l.seen = append(*l.seen, *s) }

// An exit on the second of the events a replacement became ends the
// response there, by the exit, on the way through log to done once: the
// first event was not sent apart from it, and nothing after it is.
func TestAnExitInsideASplitReplacementEndsOnce(t *testing.T) {
	var seen []phases.Summary
	c, err := phases.NewChain(phases.Options{},
		eventRewriter{func(d string) (string, bool) {
			return "data: 1a\n\ndata: 1b\n\n", d == "one"
		}},
		exitOn{"1b"}, logOnce{&seen}, eventsUpstream{"one", "two"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if len(seen) != 1 {
		t.Fatalf("the log phase ran %d times", len(seen))
	}
	s := seen[0]
	if s.Cause != phases.CauseExit || s.ExitPlugin != "b-exit" || s.ExitPhase != "body_filter" {
		t.Errorf("ended as %s by %s in %s", s.Cause, s.ExitPlugin, s.ExitPhase)
	}
	if body := rec.Body.String(); strings.Contains(body, "1a") || strings.Contains(body, "two") || !strings.Contains(body, "cut at 1b") {
		t.Errorf("the client got %q", body)
	}
}
