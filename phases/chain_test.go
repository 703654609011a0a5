package phases_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
)

type named struct {
	name string
	prio int
}

func (n named) Name() string  { return n.name }
func (n named) Priority() int { return n.prio }

type plain string

func (p plain) Name() string { return string(p) }

type static struct{}

func (static) Name() string { return "static" }
func (static) Upstream(context.Context, *phases.Request) (*phases.Response, error) {
	return &phases.Response{Status: 200, Body: phases.BytesBody([]byte("ok"))}, nil
}

func TestChainOrderIsPriorityThenName(t *testing.T) {
	c, err := phases.NewChain(phases.Options{},
		plain("zeta"), named{"b", 10}, named{"a", 10}, named{"low", -5}, plain("alpha"), static{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range phases.ChainPlugins(c) {
		got = append(got, p.Name())
	}
	if want := "a b alpha static zeta low"; strings.Join(got, " ") != want {
		t.Fatalf("order %q, want %q", strings.Join(got, " "), want)
	}
	// Equal priorities go by name, whatever the order given.
	c1, _ := phases.NewChain(phases.Options{}, named{"a", 10}, named{"b", 10}, static{})
	if p := phases.ChainPlugins(c1); p[0].Name() != "a" || p[1].Name() != "b" {
		t.Fatalf("order %s %s", p[0].Name(), p[1].Name())
	}
	// The same set in another order sorts the same.
	c2, _ := phases.NewChain(phases.Options{}, named{"a", 10}, plain("alpha"), named{"low", -5}, static{}, named{"b", 10}, plain("zeta"))
	var got2 []string
	for _, p := range phases.ChainPlugins(c2) {
		got2 = append(got2, p.Name())
	}
	if strings.Join(got2, " ") != strings.Join(got, " ") {
		t.Fatalf("order %q depends on the order of the plugins given, %q", strings.Join(got2, " "), strings.Join(got, " "))
	}
}

func TestNewChainRejectsBadSets(t *testing.T) {
	for name, plugins := range map[string][]phases.Plugin{
		"no upstream":    {plain("a")},
		"two upstreams":  {static{}, upstream2{}},
		"duplicate name": {plain("a"), plain("a"), static{}},
		"empty name":     {plain(""), static{}},
		"nil plugin":     {nil, static{}},
	} {
		if _, err := phases.NewChain(phases.Options{}, plugins...); err == nil {
			t.Errorf("%s: NewChain accepted it", name)
		}
	}
}

type upstream2 struct{ static }

func (upstream2) Name() string { return "other" }

// Pebble's rule: after EnsureDefaults no hook is nil, so the runner never
// checks. Reflection keeps this true as fields are added.
func TestEnsureDefaultsFillsEveryHook(t *testing.T) {
	var h phases.Hooks
	h.EnsureDefaults()
	v := reflect.ValueOf(h)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).Kind() == reflect.Func && v.Field(i).IsNil() {
			t.Errorf("Hooks.%s is nil after EnsureDefaults", v.Type().Field(i).Name)
		}
	}
}

type recordingSink struct {
	status int
	header http.Header
	body   strings.Builder
	writes int
}

func (s *recordingSink) WriteHeader(status int, h http.Header) error {
	s.status, s.header = status, h.Clone()
	return nil
}
func (s *recordingSink) Write(p []byte) error { s.writes++; s.body.Write(p); return nil }
func (s *recordingSink) Flush() error         { return nil }
func (s *recordingSink) Abort()               {}

type decorator struct{}

func (decorator) Name() string { return "decorator" }
func (decorator) Access(ctx context.Context, r *phases.Request) phases.Exit {
	r.SetResponseHeader("X-Request-Id", "abc")
	return phases.Exit{}
}

type denier struct{}

func (denier) Name() string { return "denier" }
func (denier) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	return phases.End(phases.Error(400, "denied", "no"))
}

// A decoration set in access reaches every response, including an exit
// decided after the header filters ran.
func TestDecorationsReachLateExits(t *testing.T) {
	c, err := phases.NewChain(phases.Options{}, decorator{}, denier{}, static{})
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{}
	c.Serve(context.Background(), httptest.NewRequest("GET", "/", nil), sink)
	if sink.status != 400 || sink.header.Get("X-Request-Id") != "abc" || sink.header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %v %q", sink.status, sink.header, sink.body.String())
	}
}

type bodyReader struct{ got string }

func (b *bodyReader) Name() string { return "reader" }
func (b *bodyReader) Access(ctx context.Context, r *phases.Request) phases.Exit {
	body, err := r.Body()
	if err == phases.ErrBodyTooLarge {
		return phases.Error(413, "invalid_request_error", "too large")
	}
	b.got = string(body)
	return phases.Exit{}
}

func TestRequestBodyLimit(t *testing.T) {
	for _, tc := range []struct {
		body     string
		declared bool // the Content-Length header says how long it is
		limit    int64
		status   int
	}{
		{"12345", false, 5, 200}, {"123456", false, 5, 413},
		{"12345", true, 5, 200}, {"123456", true, 5, 413},
		{"a small body", true, 0, 200}, // 0 is the default limit
	} {
		br := &bodyReader{}
		c, _ := phases.NewChain(phases.Options{MaxRequestBodyBytes: tc.limit}, br, static{})
		sink := &recordingSink{}
		req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		if !tc.declared {
			req.ContentLength = -1 // the limit comes from reading
		}
		c.Serve(context.Background(), req, sink)
		if sink.status != tc.status || tc.status == 200 && br.got != tc.body {
			t.Errorf("body %q (declared %v, limit %d): status %d, read %q; want %d", tc.body, tc.declared, tc.limit, sink.status, br.got, tc.status)
		}
	}
}

func TestZeroExit(t *testing.T) {
	var ex phases.Exit
	if ex.Exited() || ex.Status() != 0 || ex.Header() != nil || ex.Body() != nil || phases.ExitCause(ex) != "" {
		t.Fatal("the zero Exit is not \"continue\"")
	}
}

type stepRecorder struct{ steps []fsm.Step }

func TestHooksSeeEveryStep(t *testing.T) {
	rec := &stepRecorder{}
	var sum phases.Summary
	var path string
	c, _ := phases.NewChain(phases.Options{Route: "r1", Hooks: phases.Hooks{
		Entered: func(_ *phases.Request, s fsm.Step) { rec.steps = append(rec.steps, s) },
		Finished: func(_ context.Context, s *phases.Summary) {
			sum, path = *s, s.Request.Path // a Summary is valid only during log
		},
	}}, static{})
	c.Serve(context.Background(), httptest.NewRequest("GET", "/x", nil), &recordingSink{})
	if got := fsm.Path(rec.steps); got != "access>upstream>header_filter>body_filter>log>done" {
		t.Fatalf("path %q", got)
	}
	if sum.Route != "r1" || sum.Status != 200 || sum.Cause != phases.CauseCompleted || sum.BytesSent != 2 || path != "/x" {
		t.Fatalf("summary %+v", sum)
	}
}

func TestFinalFrame(t *testing.T) {
	got := string(phases.FinalFrame([]byte("{\"a\":1}\nsecond\n")))
	want := "data: {\"a\":1}\ndata: second\n\ndata: [DONE]\n\n"
	if got != want {
		t.Fatalf("FinalFrame = %q, want %q", got, want)
	}
}

// answer is an upstream that answers with a fixed response.
type answer struct{ resp phases.Response }

func (a *answer) Name() string { return "answer" }
func (a *answer) Upstream(context.Context, *phases.Request) (*phases.Response, error) {
	r := a.resp
	return &r, nil
}

// brokenBody yields a chunk together with a reset.
type brokenBody struct{}

func (brokenBody) Next() (phases.Chunk, error) {
	return phases.Chunk{Data: []byte("partial")}, errors.New("connection reset")
}
func (brokenBody) Close() error { return nil }

type emptyExit struct{}

func (emptyExit) Name() string { return "empty" }
func (emptyExit) Access(ctx context.Context, r *phases.Request) phases.Exit {
	return phases.Reply(204, nil, nil)
}

type emptyBodyExit struct{}

func (emptyBodyExit) Name() string { return "empty-body-exit" }
func (emptyBodyExit) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	return phases.End(phases.Reply(204, nil, nil))
}

type passer struct{}

func (passer) Name() string { return "passer" }
func (passer) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	return phases.BodyResult{}
}

// What reaches the client of an upstream's answer: its header (and its
// Content-Length unless body filters may change the length), its body, and
// never the partial chunk of a body that broke.
func TestWhatTheClientGets(t *testing.T) {
	serve := func(resp phases.Response, plugins ...phases.Plugin) *recordingSink {
		t.Helper()
		c, err := phases.NewChain(phases.Options{}, append(plugins, &answer{resp})...)
		if err != nil {
			t.Fatal(err)
		}
		sink := &recordingSink{}
		c.Serve(context.Background(), httptest.NewRequest("GET", "/", nil), sink)
		return sink
	}
	h := http.Header{"X-Up": {"1"}, "Content-Length": {"2"}}
	if s := serve(phases.Response{Status: 200, Header: h.Clone(), Body: phases.BytesBody([]byte("ok"))}); s.header.Get("X-Up") != "1" || s.header.Get("Content-Length") != "2" || s.body.String() != "ok" {
		t.Errorf("plain: %d %v %q", s.status, s.header, s.body.String())
	}
	if s := serve(phases.Response{Status: 200, Header: h.Clone(), Body: phases.BytesBody([]byte("ok"))}, passer{}); s.header.Get("Content-Length") != "" || s.body.String() != "ok" {
		t.Errorf("with a body filter: %v %q", s.header, s.body.String())
	}
	if s := serve(phases.Response{Status: 200, Body: brokenBody{}}); s.status != 502 || strings.Contains(s.body.String(), "partial") {
		t.Errorf("broken body: %d %q", s.status, s.body.String())
	}
	if s := serve(phases.Response{Status: 200}, emptyExit{}); s.status != 204 || s.writes != 0 {
		t.Errorf("an empty exit: %d with %d writes", s.status, s.writes)
	}
	if s := serve(phases.Response{Status: 200, Body: phases.BytesBody([]byte("ok"))}, emptyBodyExit{}); s.status != 204 || s.writes != 0 {
		t.Errorf("an empty exit from a body filter: %d with %d writes", s.status, s.writes)
	}
}

// oddStatus is an Upstream plugin answering a status no final response may
// have; it records whether its body was closed.
type oddStatus struct {
	status int
	closed *bool
}

func (oddStatus) Name() string { return "odd" }
func (o oddStatus) Upstream(context.Context, *phases.Request) (*phases.Response, error) {
	return &phases.Response{Status: o.status, Body: closeRecorder{phases.BytesBody([]byte("x")), o.closed}}, nil
}

type closeRecorder struct {
	phases.Body
	closed *bool
}

func (c closeRecorder) Close() error { *c.closed = true; return c.Body.Close() }

// Whatever Upstream plugin answers a status outside 200–999, the client
// gets a 502 (net/http's server would panic on it), the body is closed and
// the cause is upstream_error.
func TestUpstreamStatusOutOfRangeIs502(t *testing.T) {
	for _, status := range []int{0, 99, 101, 199, 1000, -1} {
		closed := false
		var sum phases.Summary
		c, err := phases.NewChain(phases.Options{Hooks: phases.Hooks{
			Finished: func(_ context.Context, s *phases.Summary) { sum = *s },
		}}, oddStatus{status, &closed})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != http.StatusBadGateway || sum.Cause != phases.CauseUpstreamError || sum.ExitPlugin != "odd" || !closed {
			t.Errorf("status %d: client got %d, cause %q, exit plugin %q, body closed %v", status, rec.Code, sum.Cause, sum.ExitPlugin, closed)
		}
	}
}
