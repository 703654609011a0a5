package phases_test

import (
	"context"
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
	for _, p := range c.Plugins() {
		got = append(got, p.Name())
	}
	if want := "a b alpha static zeta low"; strings.Join(got, " ") != want {
		t.Fatalf("order %q, want %q", strings.Join(got, " "), want)
	}
	if c.UpstreamName() != "static" {
		t.Fatalf("upstream %q", c.UpstreamName())
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
}

func (s *recordingSink) WriteHeader(status int, h http.Header) error {
	s.status, s.header = status, h.Clone()
	return nil
}
func (s *recordingSink) Write(p []byte) error { s.body.Write(p); return nil }
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
		body   string
		status int
	}{{"12345", 200}, {"123456", 413}} {
		br := &bodyReader{}
		c, _ := phases.NewChain(phases.Options{MaxRequestBodyBytes: 5}, br, static{})
		sink := &recordingSink{}
		req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		req.ContentLength = -1 // make the limit come from reading, not the header
		c.Serve(context.Background(), req, sink)
		if sink.status != tc.status {
			t.Errorf("body %q: status %d, want %d", tc.body, sink.status, tc.status)
		}
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
			sum, path = *s, s.Request.Path() // a Summary is valid only during log
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
		c.Serve(context.Background(), httptest.NewRequest("GET", "/", nil), phases.NewHTTPSink(rec))
		if rec.Code != http.StatusBadGateway || sum.Cause != phases.CauseUpstreamError || sum.ExitPlugin != "odd" || !closed {
			t.Errorf("status %d: client got %d, cause %q, exit plugin %q, body closed %v", status, rec.Code, sum.Cause, sum.ExitPlugin, closed)
		}
	}
}
