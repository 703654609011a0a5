package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
)

const consumerKey = "sk-consumer-alice-0123"

// A consumer's key, in the header or the query, reaches no upstream, plain
// or AI, unless the route opts in with hide_credentials: false.
func TestCredentialsStayHome(t *testing.T) {
	plain := newUpstream(t)
	ai := providertest.NewUpstream(t, nil)
	tg := newTestGateway(t, fmt.Sprintf(`
consumers:
  - { username: alice, key: %[1]s }
routes:
  - id: plain
    uri: /api/*
    plugins: { key-auth: {} }
    upstream: { nodes: { %[2]q: 1 } }
  - id: forwarding
    uri: /fwd/*
    plugins: { key-auth: { hide_credentials: false } }
    upstream: { nodes: { %[2]q: 1 } }
  - id: chat
    uri: /v1/chat/completions
    plugins:
      key-auth: {}
      ai-proxy: { provider: openai-compatible, endpoint: %[3]q }
`, consumerKey, plain.node(), ai.URL))

	// The plain upstream echoes the key header and the query it got.
	seenByPlain := func(path string, header bool) (string, string) {
		req, _ := http.NewRequest("GET", tg.url(path), nil)
		if header {
			req.Header.Set("apikey", consumerKey)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		var got struct{ Apikey, Query string }
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		return got.Apikey, got.Query
	}
	if key, q := seenByPlain("/api/x?a=1", true); key != "" || q != "a=1" {
		t.Errorf("default route, key in header: the upstream got apikey %q, query %q", key, q)
	}
	if key, q := seenByPlain("/api/x?apikey="+consumerKey+"&a=1", false); key != "" || q != "a=1" {
		t.Errorf("default route, key in query: the upstream got apikey %q, query %q", key, q)
	}
	if key, _ := seenByPlain("/fwd/x", true); key != consumerKey {
		t.Errorf("hide_credentials: false, key in header: the upstream got %q", key)
	}
	if _, q := seenByPlain("/fwd/x?apikey="+consumerKey, false); q != "apikey="+consumerKey {
		t.Errorf("hide_credentials: false, key in query: the upstream got query %q", q)
	}

	for _, viaQuery := range []bool{false, true} {
		url, hdr := tg.url("/v1/chat/completions?x=1"), map[string]string{"apikey": consumerKey}
		if viaQuery {
			url, hdr = tg.url("/v1/chat/completions?apikey="+consumerKey+"&x=1"), nil
		}
		if resp, body := chat(t, url, false, hdr); resp.StatusCode != 200 {
			t.Fatalf("AI route: %d %s", resp.StatusCode, body)
		}
		got := ai.Last(t)
		if got.Header.Get("Apikey") != "" || strings.Contains(got.Query, consumerKey) || got.Query != "x=1" {
			t.Errorf("AI route (key in query: %v): the upstream got header %v, query %q", viaQuery, got.Header, got.Query)
		}
	}
}

// ai-proxy drops the provider's Set-Cookie from every kind of answer; a
// plain route, a transparent proxy, passes it on.
func TestAIProviderCookiesDropped(t *testing.T) {
	cookie := func(next http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Set-Cookie", "__cf_bm=provider-session; Path=/; HttpOnly")
			w.Header().Add("Set-Cookie", "account=gateway-org")
			next(w, r)
		}
	}
	var stream bool
	var status int
	ai := providertest.NewUpstream(t, cookie(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case status != 200:
			providertest.Reply(status, "application/json", `{"error":{"message":"slow down","type":"rate_limit_error"}}`)(w, r)
		case stream:
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n")
		default:
			providertest.Reply(200, "application/json", providertest.Completion)(w, r)
		}
	}))
	plainCookie := httptestServer(t, cookie(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	tg := newTestGateway(t, fmt.Sprintf(`
routes:
  - id: chat
    uri: /v1/chat/completions
    plugins: { ai-proxy: { provider: openai-compatible, endpoint: %q } }
  - id: multi
    uri: /multi
    plugins:
      ai-proxy-multi:
        instances: [ { name: only, provider: openai-compatible, endpoint: %[1]q } ]
  - id: plain
    uri: /plain
    upstream: { nodes: { %q: 1 } }
`, ai.URL, strings.TrimPrefix(plainCookie, "http://")))
	for _, c := range []struct {
		name   string
		path   string
		stream bool
		status int
	}{
		{"completion", "/v1/chat/completions", false, 200},
		{"stream", "/v1/chat/completions", true, 200},
		{"error status", "/v1/chat/completions", false, 429},
		{"ai-proxy-multi", "/multi", false, 200},
	} {
		stream, status = c.stream, c.status
		resp, body := chat(t, tg.url(c.path), c.stream, nil)
		if resp.StatusCode != c.status {
			t.Fatalf("%s: status %d: %s", c.name, resp.StatusCode, body)
		}
		if v := resp.Header.Values("Set-Cookie"); len(v) != 0 {
			t.Errorf("%s: the client got the provider's cookies %q", c.name, v)
		}
	}
	resp, err := http.Get(tg.url("/plain"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(resp.Header.Values("Set-Cookie")) != 2 {
		t.Errorf("a plain route lost the upstream's cookies: %v", resp.Header)
	}
	tg.waitGaugesZero(t, metrics.NameLLMActive, metrics.NameHTTPActive)
}
