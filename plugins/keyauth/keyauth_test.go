package keyauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/internal/plugintest"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
	"github.com/phasegate/phasegate/plugins/keyauth"
	"github.com/phasegate/phasegate/plugins/requestid"
	"github.com/phasegate/phasegate/pluginsdk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var consumers = []pluginsdk.ConsumerConfig{
	{Username: "alice", Key: "alice-key-0123456789"},
	{Username: "bob", Key: "b"},
	{Username: "carol", Key: "carol's key with spaces & symbols=+/?"},
	{Username: "dave", Key: strings.Repeat("d", 200)},
	{Username: "erin", Key: "alice-key-0123456789x"},
}

// echo is a test upstream that answers with what it received.
type echo struct{ calls atomic.Int32 }

type received struct {
	Header http.Header `json:"header"`
	Path   string      `json:"path"`
	Query  string      `json:"query"`
}

func (e *echo) Name() string { return "echo" }
func (e *echo) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	e.calls.Add(1)
	b, err := json.Marshal(received{Header: r.Header, Path: r.URL.Path, Query: r.URL.RawQuery})
	if err != nil {
		return nil, err
	}
	return &phases.Response{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: phases.BytesBody(b)}, nil
}

// reader records the consumer as a later access hook and a log hook see it.
type reader struct{ access, log string }

func (p *reader) Name() string  { return "reader" }
func (p *reader) Priority() int { return 1000 }
func (p *reader) Access(ctx context.Context, r *phases.Request) phases.Exit {
	p.access = keyauth.ConsumerFrom(r.Values)
	return phases.Exit{}
}
func (p *reader) Log(ctx context.Context, s *phases.Summary) {
	p.log = keyauth.ConsumerFrom(s.Values)
}

func handler(t *testing.T, plugins ...phases.Plugin) http.Handler {
	t.Helper()
	return plugintest.Chain(t, phases.Options{Route: "test"}, plugins...)
}

// result is one request's outcome.
type result struct {
	status   int
	header   http.Header
	body     string
	upstream *received // nil if the upstream was not called
	consumer string    // as a later plugin saw it in access
	logged   string    // as a log hook saw it
}

// do runs req through key-auth, a reader and the echo upstream.
func do(t *testing.T, ka *keyauth.Plugin, req *http.Request) result {
	t.Helper()
	up, rd := &echo{}, &reader{}
	rec := httptest.NewRecorder()
	handler(t, ka, rd, up).ServeHTTP(rec, req)
	res := result{status: rec.Code, header: rec.Header(), body: rec.Body.String(), consumer: rd.access, logged: rd.log}
	if up.calls.Load() > 0 {
		res.upstream = &received{}
		if err := json.Unmarshal(rec.Body.Bytes(), res.upstream); err != nil {
			t.Fatalf("echo body %q: %v", rec.Body, err)
		}
	}
	return res
}

func withHeader(name, key string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{}`))
	req.Header.Set(name, key)
	return req
}

func withQuery(rawQuery string) *http.Request {
	return httptest.NewRequest(http.MethodGet, "/v1/models?"+rawQuery, nil)
}

func wantOK(t *testing.T, res result, consumer string) {
	t.Helper()
	if res.status != http.StatusOK || res.upstream == nil {
		t.Fatalf("got %d %s, want 200 from the upstream", res.status, res.body)
	}
	if res.consumer != consumer || res.logged != consumer {
		t.Errorf("later plugins saw consumer %q (access) and %q (log), want %q", res.consumer, res.logged, consumer)
	}
}

func want401(t *testing.T, res result, msg string) {
	t.Helper()
	if res.status != http.StatusUnauthorized || res.upstream != nil {
		t.Fatalf("got %d %s (upstream called: %v), want 401", res.status, res.body, res.upstream != nil)
	}
	want := `{"error":{"message":"` + msg + `","type":"invalid_request_error","code":401}}`
	if res.body != want {
		t.Errorf("body %s, want %s", res.body, want)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if wa := res.header.Get("WWW-Authenticate"); wa != `Key realm="phasegate"` {
		t.Errorf("WWW-Authenticate %q", wa)
	}
	if res.consumer != "" || res.logged != "" {
		t.Errorf("a refused request has consumer %q/%q", res.consumer, res.logged)
	}
}

// keep is key-auth's default config with hide_credentials: false, the
// route's opt-in to forward the key.
func keep() keyauth.Config {
	cfg := keyauth.DefaultConfig()
	cfg.HideCredentials = false
	return cfg
}

func TestHeaderKey(t *testing.T) {
	ka := plugintest.Must(keyauth.New(keep(), consumers))(t)
	res := do(t, ka, withHeader("apikey", "alice-key-0123456789"))
	wantOK(t, res, "alice")
	if got := res.upstream.Header.Get("Apikey"); got != "alice-key-0123456789" {
		t.Errorf("without hide_credentials the upstream got key %q", got)
	}
}

func TestQueryKey(t *testing.T) {
	ka := plugintest.Must(keyauth.New(keep(), consumers))(t)
	q := url.Values{"apikey": {consumers[2].Key}, "x": {"1"}}.Encode()
	res := do(t, ka, withQuery(q))
	wantOK(t, res, "carol")
	if res.upstream.Query != q {
		t.Errorf("without hide_credentials the upstream got query %q, want %q", res.upstream.Query, q)
	}
}

func TestCustomHeaderAndQuery(t *testing.T) {
	ka := plugintest.Must(keyauth.New(keyauth.Config{Header: "X-Api-Key", Query: "key"}, consumers))(t)
	wantOK(t, do(t, ka, withHeader("x-api-key", "b")), "bob")
	wantOK(t, do(t, ka, withQuery("key=b")), "bob")
	want401(t, do(t, ka, withHeader("apikey", "b")), keyauth.MsgMissingKey)
	want401(t, do(t, ka, withQuery("apikey=b")), keyauth.MsgMissingKey)
}

// The header is looked at first; the query parameter only when the header is
// absent or empty.
func TestHeaderBeforeQuery(t *testing.T) {
	ka := plugintest.Must(keyauth.New(keyauth.DefaultConfig(), consumers))(t)
	req := withQuery("apikey=b")
	req.Header.Set("apikey", "alice-key-0123456789")
	wantOK(t, do(t, ka, req), "alice")

	req = withQuery("apikey=b")
	req.Header.Set("apikey", "wrong")
	want401(t, do(t, ka, req), keyauth.MsgInvalidKey)

	req = withQuery("apikey=b")
	req.Header.Set("apikey", "")
	wantOK(t, do(t, ka, req), "bob")
}

func TestDisabledSources(t *testing.T) {
	headerOnly := plugintest.Must(keyauth.New(keyauth.Config{Header: "apikey"}, consumers))(t)
	wantOK(t, do(t, headerOnly, withHeader("apikey", "b")), "bob")
	want401(t, do(t, headerOnly, withQuery("apikey=b")), keyauth.MsgMissingKey)

	queryOnly := plugintest.Must(keyauth.New(keyauth.Config{Query: "apikey"}, consumers))(t)
	wantOK(t, do(t, queryOnly, withQuery("apikey=b")), "bob")
	want401(t, do(t, queryOnly, withHeader("apikey", "b")), keyauth.MsgMissingKey)
}

func TestMissingKey(t *testing.T) {
	ka := plugintest.Must(keyauth.New(keyauth.DefaultConfig(), consumers))(t)
	for name, req := range map[string]*http.Request{
		"nothing":      httptest.NewRequest(http.MethodGet, "/", nil),
		"empty header": withHeader("apikey", ""),
		"empty query":  withQuery("apikey="),
		"other param":  withQuery("apikeys=b&key=b"),
	} {
		t.Run(name, func(t *testing.T) { want401(t, do(t, ka, req), keyauth.MsgMissingKey) })
	}
}

// With request-id in front, as the gateway runs it, key-auth's 401s carry
// the request id too.
func TestWithRequestID(t *testing.T) {
	rid, err := requestid.New(requestid.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	req := withHeader("apikey", "wrong")
	req.Header.Set("X-Request-Id", "trace-9")
	rec := httptest.NewRecorder()
	handler(t, rid, plugintest.Must(keyauth.New(keyauth.DefaultConfig(), consumers))(t), &echo{}).ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("X-Request-Id") != "trace-9" {
		t.Errorf("got %d with id %q, want 401 with trace-9", rec.Code, rec.Header().Get("X-Request-Id"))
	}
}

func TestWrongKey(t *testing.T) {
	ka := plugintest.Must(keyauth.New(keyauth.DefaultConfig(), consumers))(t)
	for _, key := range []string{
		"wrong",
		"alice-key-012345678",   // a prefix of alice's
		"alice-key-01234567890", // alice's and one more byte
		"ALICE-KEY-0123456789",
		" b",
		strings.Repeat("d", 199),
		strings.Repeat("d", 201),
	} {
		t.Run(key, func(t *testing.T) {
			want401(t, do(t, ka, withHeader("apikey", key)), keyauth.MsgInvalidKey)
			want401(t, do(t, ka, withQuery(url.Values{"apikey": {key}}.Encode())), keyauth.MsgInvalidKey)
		})
	}
}

// Every consumer authenticates as itself, whatever its key's length and
// place in the list: the comparison loop has no early exit to get wrong.
func TestSeveralConsumers(t *testing.T) {
	ka := plugintest.Must(keyauth.New(keyauth.DefaultConfig(), consumers))(t)
	for _, c := range consumers {
		t.Run(c.Username, func(t *testing.T) {
			wantOK(t, do(t, ka, withHeader("apikey", c.Key)), c.Username)
			wantOK(t, do(t, ka, withQuery(url.Values{"apikey": {c.Key}}.Encode())), c.Username)
		})
	}
	// With many consumers, the first and the last one still match.
	many := make([]pluginsdk.ConsumerConfig, 64)
	for i := range many {
		many[i] = pluginsdk.ConsumerConfig{Username: fmt.Sprintf("u%02d", i), Key: fmt.Sprintf("key-%02d", i)}
	}
	ka = plugintest.Must(keyauth.New(keyauth.DefaultConfig(), many))(t)
	wantOK(t, do(t, ka, withHeader("apikey", "key-00")), "u00")
	wantOK(t, do(t, ka, withHeader("apikey", "key-63")), "u63")
	want401(t, do(t, ka, withHeader("apikey", "key-64")), keyauth.MsgInvalidKey)
}

func TestZeroConsumers(t *testing.T) {
	for _, cs := range [][]pluginsdk.ConsumerConfig{nil, {}} {
		ka := plugintest.Must(keyauth.New(keyauth.DefaultConfig(), cs))(t)
		want401(t, do(t, ka, httptest.NewRequest(http.MethodGet, "/", nil)), keyauth.MsgMissingKey)
		want401(t, do(t, ka, withHeader("apikey", "anything")), keyauth.MsgInvalidKey)
		want401(t, do(t, ka, withQuery("apikey=anything")), keyauth.MsgInvalidKey)
	}
}

// hide_credentials is the default.
func TestHideCredentials(t *testing.T) {
	ka := plugintest.Must(keyauth.New(keyauth.DefaultConfig(), consumers))(t)

	t.Run("header", func(t *testing.T) {
		req := withQuery("a=1&apikey=bogus&b=2")
		req.Header.Add("apikey", "b")
		req.Header.Add("apikey", "second")
		req.Header.Set("X-Other", "kept")
		res := do(t, ka, req)
		wantOK(t, res, "bob")
		if v, ok := res.upstream.Header["Apikey"]; ok {
			t.Errorf("the upstream got the key header %q", v)
		}
		if res.upstream.Header.Get("X-Other") != "kept" {
			t.Errorf("other headers were removed: %v", res.upstream.Header)
		}
		// The query parameter goes too: nothing that looks like a
		// credential reaches the upstream.
		if res.upstream.Query != "a=1&b=2" {
			t.Errorf("upstream query %q, want a=1&b=2", res.upstream.Query)
		}
	})
	t.Run("query", func(t *testing.T) {
		// Only apikey goes, every occurrence of it however its name is
		// encoded; the other parameters keep their order and encoding.
		raw := "z=last%20first&apikey=b&a=x+y&api%6Bey=again&apikeys=kept&m=%2F&flag&apikey"
		res := do(t, ka, withQuery(raw))
		wantOK(t, res, "bob")
		if want := "z=last%20first&a=x+y&apikeys=kept&m=%2F&flag"; res.upstream.Query != want {
			t.Errorf("upstream query %q, want %q", res.upstream.Query, want)
		}
		if res.upstream.Path != "/v1/models" {
			t.Errorf("upstream path %q", res.upstream.Path)
		}
	})
	t.Run("only parameter", func(t *testing.T) {
		res := do(t, ka, withQuery("apikey=b"))
		wantOK(t, res, "bob")
		if res.upstream.Query != "" {
			t.Errorf("upstream query %q, want none", res.upstream.Query)
		}
	})
}

// Over a real connection, with the key in the query string and the header.
func TestOverHTTP(t *testing.T) {
	cfg := keyauth.DefaultConfig()
	cfg.HideCredentials = true
	srv := httptest.NewServer(handler(t, plugintest.Must(keyauth.New(cfg, consumers))(t), &echo{}))
	defer srv.Close()
	for _, tc := range []struct {
		query, header string
		status        int
	}{
		{"?apikey=" + url.QueryEscape(consumers[2].Key) + "&stream=true", "", 200},
		{"?stream=true", consumers[0].Key, 200},
		{"?apikey=nope", "", 401},
		{"", "", 401},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/models"+tc.query, nil)
		if tc.header != "" {
			req.Header.Set("apikey", tc.header)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got received
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != tc.status || err != nil {
			t.Fatalf("%s: got %d (%v), want %d", tc.query, resp.StatusCode, err, tc.status)
		}
		if tc.status == 200 && (got.Query != "stream=true" || got.Header.Get("Apikey") != "") {
			t.Errorf("upstream got query %q and header %v", got.Query, got.Header)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  keyauth.Config
		cs   []pluginsdk.ConsumerConfig
		want []string
	}{
		{"duplicate key", keyauth.DefaultConfig(),
			[]pluginsdk.ConsumerConfig{{Username: "alice", Key: "secret-1"}, {Username: "bob", Key: "secret-2"}, {Username: "carol", Key: "secret-1"}},
			[]string{`key-auth: consumers[2] ("carol") has the same key as consumers[0] ("alice")`}},
		{"duplicate username", keyauth.DefaultConfig(),
			[]pluginsdk.ConsumerConfig{{Username: "alice", Key: "secret-1"}, {Username: "alice", Key: "secret-2"}},
			[]string{`key-auth: consumers[1]: username "alice" is also consumers[0]'s`}},
		{"empty key", keyauth.DefaultConfig(),
			[]pluginsdk.ConsumerConfig{{Username: "alice", Key: "secret-1"}, {Username: "bob", Key: ""}},
			[]string{`key-auth: consumers[1] ("bob") has an empty key`}},
		{"empty username", keyauth.DefaultConfig(),
			[]pluginsdk.ConsumerConfig{{Username: "", Key: "secret-1"}},
			[]string{`key-auth: consumers[0] has an empty username`}},
		{"invalid config", keyauth.Config{Header: "bad header"}, consumers[:1],
			[]string{`key-auth: header: "bad header" is not a valid HTTP header name`}},
		{"all at once", keyauth.Config{}, []pluginsdk.ConsumerConfig{{Username: "a", Key: "secret-1"}, {Username: "a", Key: "secret-1"}, {Username: "", Key: ""}},
			[]string{
				"key-auth: header and query are both empty: no request could carry a key",
				`key-auth: consumers[1]: username "a" is also consumers[0]'s`,
				`key-auth: consumers[1] ("a") has the same key as consumers[0] ("a")`,
				"key-auth: consumers[2] has an empty username",
				`key-auth: consumers[2] ("") has an empty key`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := keyauth.New(tc.cfg, tc.cs)
			if err == nil {
				t.Fatalf("New accepted it: %v", p)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("error:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error reveals a key: %v", err)
			}
		})
	}
}

// The plugin keeps no key: printing it shows none.
func TestKeysAreNotKept(t *testing.T) {
	ka := plugintest.Must(keyauth.New(keyauth.DefaultConfig(), consumers))(t)
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		s := fmt.Sprintf(format, ka)
		for _, c := range consumers {
			if len(c.Key) < 8 {
				continue // too short to search for
			}
			if strings.Contains(s, c.Key) || strings.Contains(s, fmt.Sprintf("%x", c.Key)) {
				t.Errorf("%s of the plugin shows %s's key", format, c.Username)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  keyauth.Config
		want []pluginsdk.FieldError
	}{
		{"defaults", keyauth.DefaultConfig(), nil},
		{"hide", keyauth.Config{Header: "apikey", Query: "apikey", HideCredentials: true}, nil},
		{"header only", keyauth.Config{Header: "X-Api-Key"}, nil},
		{"query only", keyauth.Config{Query: "key"}, nil},
		{"any query name", keyauth.Config{Query: "api key[]"}, nil},
		{"neither", keyauth.Config{HideCredentials: true},
			[]pluginsdk.FieldError{{Msg: "header and query are both empty: no request could carry a key"}}},
		{"bad header", keyauth.Config{Header: "api key", Query: "apikey"},
			[]pluginsdk.FieldError{{Field: "header", Msg: `"api key" is not a valid HTTP header name`}}},
		{"header with colon", keyauth.Config{Header: "apikey:"},
			[]pluginsdk.FieldError{{Field: "header", Msg: `"apikey:" is not a valid HTTP header name`}}},
		{"non-ascii header", keyauth.Config{Header: "clé", Query: "apikey"},
			[]pluginsdk.FieldError{{Field: "header", Msg: `"clé" is not a valid HTTP header name`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Validate(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Validate() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSpec(t *testing.T) {
	if keyauth.Spec.Name != "key-auth" {
		t.Errorf("Spec.Name = %q", keyauth.Spec.Name)
	}
	cfg, ok := keyauth.Spec.Config().(*keyauth.Config)
	if !ok || *cfg != (keyauth.Config{Header: "apikey", Query: "apikey", HideCredentials: true}) {
		t.Fatalf("Spec.Config() = %#v", keyauth.Spec.Config())
	}
	p, err := keyauth.Spec.New(cfg, pluginsdk.Env{Consumers: consumers})
	if err != nil || p.Name() != "key-auth" || p.(phases.Prioritized).Priority() != 2500 {
		t.Fatalf("Spec.New = %v, %v", p, err)
	}
	wantOK(t, do(t, p.(*keyauth.Plugin), withHeader("apikey", "b")), "bob")
	if _, err := keyauth.Spec.New(cfg, pluginsdk.Env{Consumers: []pluginsdk.ConsumerConfig{{Username: "a", Key: ""}}}); err == nil {
		t.Error("Spec.New accepted a consumer without a key")
	}
	if _, err := keyauth.Spec.New(keyauth.Config{}, pluginsdk.Env{}); err == nil {
		t.Error("Spec.New accepted a config of the wrong type")
	}
}

func TestConsumerFrom(t *testing.T) {
	var v phases.Values
	if got := keyauth.ConsumerFrom(&v); got != "" {
		t.Errorf("ConsumerFrom(empty) = %q", got)
	}
	keyauth.Consumer.Set(&v, "alice")
	if got := keyauth.ConsumerFrom(&v); got != "alice" {
		t.Errorf("ConsumerFrom = %q", got)
	}
}

// observer checks, as a later access hook and a log hook, what key-auth
// left for the rest of the chain.
type observer struct {
	reached  bool
	header   []string
	query    url.Values
	consumer string
}

func (o *observer) Name() string  { return "observer" }
func (o *observer) Priority() int { return 1 }
func (o *observer) Access(ctx context.Context, r *phases.Request) phases.Exit {
	o.reached = true
	o.header = r.Header.Values("apikey")
	o.query = r.URL.Query()
	return phases.Exit{}
}
func (o *observer) Log(ctx context.Context, s *phases.Summary) {
	o.consumer = keyauth.ConsumerFrom(s.Values)
}

type keyKind int

const (
	validKey keyKind = iota
	invalidKey
	missingKey
)

// Over random paths, with a valid, invalid or missing key in the header or
// the query: the lifecycle rules hold; no request without a consumer's key
// gets past key-auth; one with a key gets its consumer; with
// hide_credentials, nothing after key-auth sees the key; and the key never
// shows in the response nor the trace.
func TestPropertyKeyAuth(t *testing.T) {
	cfg := keyauth.DefaultConfig()
	cfg.HideCredentials = true
	var (
		obs  *observer
		kind keyKind
		key  string
		who  string
		inQ  bool
	)
	phasetest.Check(t, phasetest.Config{
		Plugins: func(*phasetest.Env) []phases.Plugin {
			obs = &observer{}
			return []phases.Plugin{plugintest.Must(keyauth.New(cfg, consumers))(t), obs}
		},
		Request: func(rt *rapid.T) *http.Request {
			kind = keyKind(rapid.IntRange(0, 2).Draw(rt, "key kind"))
			inQ = rapid.Bool().Draw(rt, "in query")
			switch kind {
			case validKey:
				c := rapid.SampledFrom(consumers).Draw(rt, "consumer")
				key, who = c.Key, c.Username
			case invalidKey:
				key = rapid.SampledFrom([]string{"wrong", "alice-key-012345678", consumers[1].Key + "x", strings.ToUpper(consumers[0].Key)}).Draw(rt, "invalid key")
				who = ""
			default:
				key, who = "", ""
			}
			q := url.Values{"x": {"1"}}
			if key != "" && inQ {
				q.Set("apikey", key)
			}
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions?"+q.Encode(), strings.NewReader(`{"model":"m1"}`))
			req.Header.Set("Content-Type", "application/json")
			if key != "" && !inQ {
				req.Header.Set("apikey", key)
			}
			return req
		},
		Check: func(t phasetest.TB, r *phasetest.Result) {
			journal := strings.Join(r.Journal, "\n")
			ran := strings.Index(journal, "\n  access key-auth")
			upstream := strings.Contains(journal, "-> upstream")
			if kind != validKey {
				if upstream || obs.reached || obs.consumer != "" {
					t.Fatalf("a request whose key is %v got past key-auth (upstream %v, later hook %v, consumer %q)", kind, upstream, obs.reached, obs.consumer)
				}
			}
			if ran >= 0 && kind == validKey {
				mutated := strings.Contains(journal[:ran], "mutates the request")
				if (!mutated || inQ) && obs.consumer != who {
					t.Fatalf("the log saw consumer %q, want %q", obs.consumer, who)
				}
			}
			if obs.consumer != "" && obs.consumer != who {
				t.Fatalf("the log saw consumer %q, want %q", obs.consumer, who)
			}
			if obs.reached {
				if len(obs.header) > 0 || obs.query.Has("apikey") || obs.query.Get("x") != "1" {
					t.Fatalf("after key-auth, the request has header %q and query %v", obs.header, obs.query)
				}
			}
			if r.Summary.ExitPlugin == keyauth.Name && r.Summary.Cause == phases.CauseExit && r.Summary.Status != http.StatusUnauthorized {
				t.Fatalf("key-auth's exit ended with status %d", r.Summary.Status)
			}
			// (Keys shorter than 8 bytes are too short to search for.)
			if len(key) >= 8 && (strings.Contains(string(r.Body), key) || strings.Contains(journal, key) || strings.Contains(fmt.Sprint(r.Header), key)) {
				t.Fatalf("the key %q shows in the response or the trace", key)
			}
		},
	})
}

func (k keyKind) String() string { return [...]string{"valid", "invalid", "missing"}[k] }
