package requestid_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/internal/plugintest"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
	"github.com/phasegate/phasegate/plugins/requestid"
	"github.com/phasegate/phasegate/pluginsdk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// echo is a test upstream that answers with what it received.
type echo struct{}

type received struct {
	Header http.Header `json:"header"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
}

func (echo) Name() string { return "echo" }
func (echo) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	b, err := json.Marshal(received{Header: r.Header, Path: r.URL.Path, Query: r.URL.RawQuery})
	if err != nil {
		return nil, err
	}
	return &phases.Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: phases.BytesBody(b)}, nil
}

// denyAccess exits 403 in access, after request-id.
type denyAccess struct{}

func (denyAccess) Name() string  { return "deny-access" }
func (denyAccess) Priority() int { return 1000 }
func (denyAccess) Access(ctx context.Context, r *phases.Request) phases.Exit {
	return phases.Error(http.StatusForbidden, "forbidden", "denied")
}

// denyBody ends the upstream's response in body_filter.
type denyBody struct{}

func (denyBody) Name() string { return "deny-body" }
func (denyBody) BodyFilter(ctx context.Context, c *phases.BodyChunk) phases.BodyResult {
	return phases.End(phases.Error(http.StatusUnprocessableEntity, "moderation", "blocked"))
}

// reader records the request id as a later access hook and a log hook see it.
type reader struct{ access, log string }

func (p *reader) Name() string { return "reader" }
func (p *reader) Access(ctx context.Context, r *phases.Request) phases.Exit {
	p.access = requestid.From(r.Values)
	return phases.Exit{}
}
func (p *reader) Log(ctx context.Context, s *phases.Summary) { p.log = requestid.From(s.Values) }

// serve runs req through a chain of plugins the way the gateway does, and
// returns the response and, if the echo upstream answered, what it received.
func serve(t *testing.T, req *http.Request, plugins ...phases.Plugin) (*httptest.ResponseRecorder, *received) {
	t.Helper()
	chain, err := phases.NewChain(phases.Options{Route: "test"}, plugins...)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("response aborted: %v", v)
			}
		}()
		chain.ServeHTTP(rec, req)
	}()
	var got received
	if rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &got) == nil && got.Header != nil {
		return rec, &got
	}
	return rec, nil
}

func get(id ...string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/v1/models", nil)
	for _, v := range id {
		req.Header.Add("X-Request-Id", v)
	}
	return req
}

func TestGeneratesUUIDv4(t *testing.T) {
	p := plugintest.Must(requestid.New(requestid.DefaultConfig()))(t)
	seen := map[string]bool{}
	for range 3 {
		rec, up := serve(t, get(), p, echo{})
		id := rec.Header().Get("X-Request-Id")
		if !uuidV4.MatchString(id) {
			t.Fatalf("generated id %q is not a UUIDv4", id)
		}
		if up == nil || !reflect.DeepEqual(up.Header.Values("X-Request-Id"), []string{id}) {
			t.Fatalf("upstream got %v, want [%s]", up, id)
		}
		if seen[id] {
			t.Fatalf("id %q generated twice", id)
		}
		seen[id] = true
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := requestid.NewID()
		if !uuidV4.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		if !requestid.Valid(id, requestid.MinMaxLength) {
			t.Fatalf("a generated id %q is not a valid incoming id", id)
		}
		seen[id] = true
	}
}

func TestKeepsAcceptableIncomingID(t *testing.T) {
	var visible strings.Builder
	for c := byte(0x21); c <= 0x7e; c++ {
		visible.WriteByte(c)
	}
	for name, id := range map[string]string{
		"short":           "a",
		"uuid":            "0b7c9a56-1f5e-4d2a-9c3b-8e6f1a2b3c4d",
		"every visible":   visible.String(),
		"exactly the max": strings.Repeat("x", requestid.DefaultMaxLength),
	} {
		t.Run(name, func(t *testing.T) {
			rec, up := serve(t, get(id), plugintest.Must(requestid.New(requestid.DefaultConfig()))(t), echo{})
			if got := rec.Header().Get("X-Request-Id"); got != id {
				t.Errorf("response id %q, want %q", got, id)
			}
			if up == nil || up.Header.Get("X-Request-Id") != id {
				t.Errorf("upstream got %+v, want id %q", up, id)
			}
		})
	}
}

func TestReplacesUnacceptableIncomingID(t *testing.T) {
	for name, id := range map[string]string{
		"too long":      strings.Repeat("x", requestid.DefaultMaxLength+1),
		"empty":         "",
		"space":         "abc def",
		"tab":           "abc\tdef",
		"newline":       "abc\ninjected=1",
		"carriage ret":  "abc\r\n",
		"control":       "abc\x01",
		"nul":           "\x00",
		"del":           "abc\x7f",
		"non-ascii":     "abc\u00e9",
		"invalid utf-8": "abc\xff",
	} {
		t.Run(name, func(t *testing.T) {
			rec, up := serve(t, get(id), plugintest.Must(requestid.New(requestid.DefaultConfig()))(t), echo{})
			got := rec.Header().Get("X-Request-Id")
			if !uuidV4.MatchString(got) {
				t.Fatalf("id %q was not replaced by a fresh one: got %q", id, got)
			}
			if up == nil || !reflect.DeepEqual(up.Header.Values("X-Request-Id"), []string{got}) {
				t.Fatalf("upstream got %+v, want only %q", up, got)
			}
		})
	}
}

func TestMaxLength(t *testing.T) {
	cfg := requestid.DefaultConfig()
	cfg.MaxLength = 40
	p := plugintest.Must(requestid.New(cfg))(t)
	ok, long := strings.Repeat("a", 40), strings.Repeat("a", 41)
	if rec, _ := serve(t, get(ok), p, echo{}); rec.Header().Get("X-Request-Id") != ok {
		t.Errorf("a 40-byte id was replaced under max_length 40")
	}
	if rec, _ := serve(t, get(long), p, echo{}); !uuidV4.MatchString(rec.Header().Get("X-Request-Id")) {
		t.Errorf("a 41-byte id was kept under max_length 40")
	}
}

// A client sending the header twice gets the first value, and the upstream
// sees exactly one.
func TestSeveralIncomingValues(t *testing.T) {
	rec, up := serve(t, get("first", "second"), plugintest.Must(requestid.New(requestid.DefaultConfig()))(t), echo{})
	if rec.Header().Get("X-Request-Id") != "first" {
		t.Errorf("response id %q, want first", rec.Header().Get("X-Request-Id"))
	}
	if up == nil || !reflect.DeepEqual(up.Header.Values("X-Request-Id"), []string{"first"}) {
		t.Errorf("upstream got %+v, want only [first]", up)
	}
}

func TestCustomHeaderName(t *testing.T) {
	cfg := requestid.DefaultConfig()
	cfg.HeaderName = "x-correlation-id"
	req := get()
	req.Header.Set("X-Correlation-Id", "corr-1")
	rec, up := serve(t, req, plugintest.Must(requestid.New(cfg))(t), echo{})
	if rec.Header().Get("X-Correlation-Id") != "corr-1" || rec.Header().Get("X-Request-Id") != "" {
		t.Errorf("response header %v", rec.Header())
	}
	if up == nil || up.Header.Get("X-Correlation-Id") != "corr-1" {
		t.Errorf("upstream got %+v", up)
	}
}

// The id decorates responses made by exits that later plugins decide, in
// access and in body_filter.
func TestIDOnLaterExits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		other  phases.Plugin
		status int
		body   string
	}{
		{"access exit", denyAccess{}, http.StatusForbidden, `"denied"`},
		{"body_filter exit", denyBody{}, http.StatusUnprocessableEntity, `"blocked"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd := &reader{}
			rec, _ := serve(t, get("trace-7"), plugintest.Must(requestid.New(requestid.DefaultConfig()))(t), tc.other, rd, echo{})
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Fatalf("got %d %s, want %d with %s", rec.Code, rec.Body, tc.status, tc.body)
			}
			if got := rec.Header().Get("X-Request-Id"); got != "trace-7" {
				t.Errorf("exit response has id %q, want trace-7", got)
			}
			if rd.log != "trace-7" {
				t.Errorf("the log hook saw id %q, want trace-7", rd.log)
			}
		})
	}
}

func TestIncludeInResponseFalse(t *testing.T) {
	cfg := requestid.DefaultConfig()
	cfg.IncludeInResponse = false
	rd := &reader{}
	rec, up := serve(t, get(), plugintest.Must(requestid.New(cfg))(t), rd, echo{})
	if h := rec.Header().Get("X-Request-Id"); h != "" {
		t.Errorf("response carries id %q with include_in_response false", h)
	}
	if up == nil || !uuidV4.MatchString(up.Header.Get("X-Request-Id")) || up.Header.Get("X-Request-Id") != rd.log {
		t.Errorf("upstream got %+v, log saw %q", up, rd.log)
	}
}

// From gives later plugins and the log the same id the client and the
// upstream got.
func TestFrom(t *testing.T) {
	var empty phases.Values
	if got := requestid.From(&empty); got != "" {
		t.Errorf("From(empty) = %q", got)
	}
	rd := &reader{}
	rec, up := serve(t, get(), plugintest.Must(requestid.New(requestid.DefaultConfig()))(t), rd, echo{})
	id := rec.Header().Get("X-Request-Id")
	if rd.access != id || rd.log != id || up == nil || up.Header.Get("X-Request-Id") != id {
		t.Errorf("response %q, access %q, log %q, upstream %+v", id, rd.access, rd.log, up)
	}
}

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		id   string
		max  int
		want bool
	}{
		{"a", 1, true},
		{"ab", 1, false},
		{"", 10, false},
		{"~!", 10, true},
		{"a b", 10, false},
		{"a\x7f", 10, false},
		{"a\x20", 10, false},
	} {
		if got := requestid.Valid(tc.id, tc.max); got != tc.want {
			t.Errorf("Valid(%q, %d) = %v, want %v", tc.id, tc.max, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*requestid.Config)
		want   []pluginsdk.FieldError
	}{
		{"defaults", func(*requestid.Config) {}, nil},
		{"other header", func(c *requestid.Config) { c.HeaderName = "X-Trace-Id" }, nil},
		{"bounds", func(c *requestid.Config) { c.MaxLength = requestid.MinMaxLength }, nil},
		{"upper bound", func(c *requestid.Config) { c.MaxLength = requestid.MaxMaxLength }, nil},
		{"no header", func(c *requestid.Config) { c.HeaderName = "" },
			[]pluginsdk.FieldError{{Field: "header_name", Msg: "must not be empty"}}},
		{"bad header", func(c *requestid.Config) { c.HeaderName = "X Request:Id" },
			[]pluginsdk.FieldError{{Field: "header_name", Msg: `"X Request:Id" is not a valid HTTP header name`}}},
		{"too short", func(c *requestid.Config) { c.MaxLength = 35 },
			[]pluginsdk.FieldError{{Field: "max_length", Msg: "must be between 36 (the length of a generated id) and 1024"}}},
		{"too long", func(c *requestid.Config) { c.MaxLength = 1025 },
			[]pluginsdk.FieldError{{Field: "max_length", Msg: "must be between 36 (the length of a generated id) and 1024"}}},
		{"zero config", func(c *requestid.Config) { *c = requestid.Config{} },
			[]pluginsdk.FieldError{{Field: "header_name", Msg: "must not be empty"}, {Field: "max_length", Msg: "must be between 36 (the length of a generated id) and 1024"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := requestid.DefaultConfig()
			tc.modify(&cfg)
			if got := cfg.Validate(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Validate() = %v, want %v", got, tc.want)
			}
			_, err := requestid.New(cfg)
			if (err != nil) != (tc.want != nil) {
				t.Errorf("New() error = %v, want an error: %v", err, tc.want != nil)
			}
		})
	}
}

func TestSpec(t *testing.T) {
	if requestid.Spec.Name != "request-id" {
		t.Errorf("Spec.Name = %q", requestid.Spec.Name)
	}
	cfg, ok := requestid.Spec.Config().(*requestid.Config)
	if !ok || *cfg != requestid.DefaultConfig() {
		t.Fatalf("Spec.Config() = %#v", requestid.Spec.Config())
	}
	if requestid.DefaultConfig() != (requestid.Config{HeaderName: "X-Request-Id", MaxLength: 128, IncludeInResponse: true}) {
		t.Errorf("DefaultConfig() = %+v", requestid.DefaultConfig())
	}
	p, err := requestid.Spec.New(cfg, pluginsdk.Env{})
	if err != nil || p.Name() != "request-id" || p.(phases.Prioritized).Priority() != 12000 {
		t.Fatalf("Spec.New = %v, %v", p, err)
	}
	if _, err := requestid.Spec.New(&requestid.Config{}, pluginsdk.Env{}); err == nil || !strings.Contains(err.Error(), "header_name") {
		t.Errorf("Spec.New accepted an invalid config: %v", err)
	}
	if _, err := requestid.Spec.New(struct{}{}, pluginsdk.Env{}); err == nil {
		t.Errorf("Spec.New accepted a config of the wrong type")
	}
}

// incoming draws the X-Request-Id a client sends: none, acceptable, too
// long, empty or with a forbidden byte.
func incoming(t *rapid.T) (string, bool) {
	switch rapid.IntRange(0, 4).Draw(t, "incoming id kind") {
	case 0:
		return "", false
	case 1:
		return rapid.StringOfN(rapid.RuneFrom(nil, &unicode.RangeTable{R16: []unicode.Range16{{Lo: 0x21, Hi: 0x7e, Stride: 1}}}), 1, requestid.DefaultMaxLength, -1).Draw(t, "id"), true
	case 2:
		return strings.Repeat("y", rapid.IntRange(requestid.DefaultMaxLength+1, 2*requestid.DefaultMaxLength).Draw(t, "length")), true
	case 3:
		return "", true
	default:
		bad := rapid.SampledFrom([]string{" ", "\t", "\x01", "\x7f", "\u00e9", "\r\n"}).Draw(t, "bad byte")
		return "id" + bad + "x", true
	}
}

// logged records the id the log saw on each path.
type logged struct{ id *string }

func (logged) Name() string { return "logged" }
func (l logged) Log(ctx context.Context, s *phases.Summary) {
	*l.id = requestid.From(s.Values)
}

// Over random paths (other plugins exiting, panicking, mutating the request,
// the upstream failing, the client leaving): the lifecycle rules hold, and
// whenever request-id ran, the log and every response the client got carry
// one acceptable id, the client's when it was acceptable.
func TestPropertyRequestID(t *testing.T) {
	var sent string
	var hasHeader bool
	var seen string
	phasetest.Check(t, phasetest.Config{
		Plugins: func(*phasetest.Env) []phases.Plugin {
			seen = ""
			return []phases.Plugin{plugintest.Must(requestid.New(requestid.DefaultConfig()))(t), logged{&seen}}
		},
		Request: func(rt *rapid.T) *http.Request {
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":"m1"}`))
			req.Header.Set("Content-Type", "application/json")
			sent, hasHeader = incoming(rt)
			if hasHeader {
				req.Header["X-Request-Id"] = []string{sent}
			}
			return req
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			journal := strings.Join(r.Journal, "\n")
			ran := strings.Index(journal, "\n  access request-id")
			got := r.Header.Get("X-Request-Id")
			if ran < 0 {
				if seen != "" || got != "" {
					t.Fatalf("request-id did not run, yet the log saw %q and the client %q", seen, got)
				}
				return
			}
			if !requestid.Valid(seen, requestid.DefaultMaxLength) {
				t.Fatalf("the log saw an unacceptable id %q", seen)
			}
			if r.Header != nil && got != seen {
				t.Fatalf("the client got id %q, the log saw %q", got, seen)
			}
			// Scripted plugins before request-id may have rewritten the
			// header: each appends "~mutated" to every value.
			expect := sent
			if n := strings.Count(journal[:ran], "mutates the request"); n > 0 {
				expect += strings.Repeat("~mutated", n)
			}
			if hasHeader && requestid.Valid(expect, requestid.DefaultMaxLength) {
				if seen != expect {
					t.Fatalf("the acceptable id %q became %q", expect, seen)
				}
			} else if !uuidV4.MatchString(seen) {
				t.Fatalf("id %q (client sent %q) was replaced by %q, not a fresh UUID", expect, sent, seen)
			}
		},
	})
}
