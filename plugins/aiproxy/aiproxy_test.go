package aiproxy_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aiproxy"
	"github.com/phasegate/phasegate/plugins/keyauth"
	"github.com/phasegate/phasegate/pluginsdk"
)

// A non-streamed completion passes through with its usage; options.model
// overrides the client's and is the model label; the metrics are those of
// one chat request.
func TestNonStreamPassesThrough(t *testing.T) {
	m := providertest.StartMock(t)
	cfg := config(mockURL(m))
	cfg.Options = map[string]any{"model": "gpt-override"}
	f := serve(t, cfg)

	resp := f.Post(t, providertest.Chat("client-model", false), nil)
	o := f.Wait(t)
	if resp.Status != http.StatusOK || o.Cause != phases.CauseCompleted {
		t.Fatalf("status %d cause %s (%v): %s", resp.Status, o.Cause, o.Err, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	var got struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
		Usage struct {
			Prompt     int `json:"prompt_tokens"`
			Completion int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatalf("%v: %s", err, resp.Body)
	}
	if got.Model != "gpt-override" || got.Choices[0].Message.Content != mockllm.DefaultCompletionText {
		t.Errorf("the upstream answered %+v", got)
	}
	want := llm.Info{
		Model: "gpt-override", Instance: aiproxy.Name, Attempts: 1,
		UsageKnown: true, PromptTokens: got.Usage.Prompt, CompletionTokens: got.Usage.Completion,
		ClientProtocol: llm.OpenAIChat, ProviderProtocol: llm.OpenAIChat,
	}
	if o.LLM != want {
		t.Errorf("LLMInfo = %+v, want %+v", o.LLM, want)
	}
	if got.Usage.Prompt != 5 || got.Usage.Completion != 6 {
		t.Errorf("usage %+v, want 5 and 6", got.Usage)
	}

	k := key("gpt-override", metrics.RequestTypeChat)
	if v := f.counts(t, namePrompt)[k]; v != 5 {
		t.Errorf("prompt tokens %v, want 5 (%v)", v, f.counts(t, namePrompt))
	}
	if v := f.counts(t, nameCompletion)[k]; v != 6 {
		t.Errorf("completion tokens %v, want 6", v)
	}
	if v := f.counts(t, nameDuration)[k]; v != 1 {
		t.Errorf("duration observations %v, want 1", v)
	}
	if n := testutil.CollectAndCount(f.env.Metrics.LLMTimeToFirstToken); n != 0 {
		t.Errorf("%d TTFT series for a non-streamed request", n)
	}
	if v, ok := f.counts(t, nameActive)[k]; !ok || v != 0 {
		t.Errorf("active series %v (present %v), want 0", v, ok)
	}
	providertest.AssertNoneActive(t, f.reg)
}

// The upstream request: options merged into the client's body, model
// overridden, include_usage forced for streams, auth replacing the
// client's credentials, no Accept-Encoding, no hop-by-hop headers, the
// client's other headers and query forwarded.
func TestUpstreamRequest(t *testing.T) {
	up := providertest.NewUpstream(t, nil)
	cfg := config(up.URL + "?api-version=1")
	cfg.Options = map[string]any{"model": "gpt-4o-mini", "temperature": 0.5}
	cfg.Auth = aiproxy.Auth{Header: map[string]string{"Authorization": "Bearer upstream-key", "X-Api-Key": "k2"}, Query: map[string]string{"key": "q-secret"}}
	f := serve(t, cfg)

	req := f.Request(t, `{"model":"client","messages":[{"role":"user","content":"hi"}],"temperature":1,"user":"u1"}`, map[string]string{
		"Authorization":   "Bearer client-key",
		"X-Api-Key":       "client-k2",
		"Accept-Encoding": "gzip, br",
		"Connection":      "X-Hop",
		"X-Hop":           "1",
		"X-Trace":         "abc",
		"Content-Type":    "application/json; charset=utf-8",
	})
	req.URL.RawQuery = "key=client-secret&foo=bar&api-version=2"
	resp := f.Do(t, req)
	f.Wait(t)
	if resp.Status != http.StatusOK || string(resp.Body) != providertest.Completion {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	got := up.Last(t)
	if want := `{"messages":[{"role":"user","content":"hi"}],"user":"u1","model":"gpt-4o-mini","temperature":0.5}`; string(got.Body) != want {
		t.Errorf("body\n got %s\nwant %s", got.Body, want)
	}
	h := got.Header
	for name, want := range map[string]string{
		"Authorization":   "Bearer upstream-key",
		"X-Api-Key":       "k2",
		"Accept-Encoding": "",
		"X-Hop":           "",
		"Connection":      "",
		"X-Trace":         "abc",
		"Content-Type":    "application/json; charset=utf-8",
	} {
		if v := h.Get(name); v != want {
			t.Errorf("upstream header %s = %q, want %q", name, v, want)
		}
	}
	if vs := h.Values("Authorization"); len(vs) != 1 {
		t.Errorf("Authorization sent %d times: %q", len(vs), vs)
	}
	if want := "api-version=1&foo=bar&key=q-secret"; got.Query != want {
		t.Errorf("query %q, want %q", got.Query, want)
	}

	// A stream gets include_usage, keeping the client's other stream options.
	f.Post(t, `{"model":"c","messages":[],"stream":true,"stream_options":{"x":1}}`, nil)
	f.Wait(t)
	if want := `{"messages":[],"stream":true,"model":"gpt-4o-mini","temperature":0.5,"stream_options":{"include_usage":true,"x":1}}`; string(up.Last(t).Body) != want {
		t.Errorf("stream body\n got %s\nwant %s", up.Last(t).Body, want)
	}
}

// Without auth configured the client's Authorization reaches the upstream.
func TestClientAuthorizationWithoutAuth(t *testing.T) {
	up := providertest.NewUpstream(t, nil)
	f := serve(t, config(up.URL))
	f.Post(t, providertest.Chat("m", false), map[string]string{"Authorization": "Bearer mine"})
	f.Wait(t)
	if v := up.Last(t).Header.Get("Authorization"); v != "Bearer mine" {
		t.Errorf("Authorization %q", v)
	}
}

// Upstream error statuses reach the client with their bodies as they are;
// they are not observed as durations.
func TestUpstreamErrorsPassThrough(t *testing.T) {
	m := providertest.StartMock(t)
	f := serve(t, config(mockURL(m)))
	for _, tc := range []struct {
		status int
		body   string
		ct     string
	}{
		{401, `{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}`, "application/json"},
		{429, `{"error":{"message":"slow down","type":"rate_limit"}}`, "application/json"},
		{500, "upstream exploded", "text/plain"},
	} {
		resp := f.Post(t, providertest.Chat("m", false), map[string]string{mockllm.HeaderStatus: itoa(tc.status), mockllm.HeaderErrorBody: tc.body})
		o := f.Wait(t)
		if resp.Status != tc.status || string(resp.Body) != tc.body || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ct) {
			t.Errorf("%d: got %d %q (%s)", tc.status, resp.Status, resp.Body, resp.Header.Get("Content-Type"))
		}
		if o.Cause != phases.CauseCompleted || o.LLM.UsageKnown {
			t.Errorf("%d: cause %s, LLMInfo %+v", tc.status, o.Cause, o.LLM)
		}
		// A streamed request answered with an error gets it as is too.
		resp = f.Post(t, providertest.Chat("m", true), map[string]string{mockllm.HeaderStatus: itoa(tc.status), mockllm.HeaderErrorBody: tc.body})
		f.Wait(t)
		if resp.Status != tc.status || string(resp.Body) != tc.body {
			t.Errorf("%d stream: got %d %q", tc.status, resp.Status, resp.Body)
		}
	}
	if n := testutil.CollectAndCount(f.env.Metrics.LLMDuration); n != 0 {
		t.Errorf("%d duration series for error statuses", n)
	}
	if n := testutil.CollectAndCount(f.env.Metrics.LLMPromptTokens); n != 0 {
		t.Errorf("%d token series without usage", n)
	}
	if got := f.counts(t, nameActive); len(got) != 2 || got[key("m", metrics.RequestTypeChat)] != 0 || got[key("m", metrics.RequestTypeStream)] != 0 {
		t.Errorf("active series %v", got)
	}
}

// serveLimited serves ai-proxy with max_request_body_bytes plugin on a
// route whose limit is route.
func serveLimited(t *testing.T, plugin, route int64) (*fixture, *providertest.Upstream) {
	t.Helper()
	up := providertest.NewUpstream(t, nil)
	cfg := config(up.URL)
	cfg.MaxRequestBodyBytes = plugin
	return serveOpts(t, phases.Options{MaxRequestBodyBytes: route}, cfg), up
}

// userChat is a chat request whose user message is n bytes long.
func userChat(n int) string {
	return `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", n) + `"}]}`
}

// max_request_body_bytes raises the route's limit as well as lowering it
// (TestValidation): the plugin's setting wins.
func TestBodyLimitAboveTheRoute(t *testing.T) {
	f, _ := serveLimited(t, 4000, 1000)
	if resp := f.Post(t, userChat(2000), nil); resp.Status != 200 {
		t.Fatalf("a body above the route's limit, below the plugin's: %d %s", resp.Status, resp.Body)
	}
	f.Wait(t)
	if resp := f.Post(t, userChat(4000), nil); resp.Status != 413 {
		t.Fatalf("a body above the plugin's limit: %d %s", resp.Status, resp.Body)
	}
	f.Wait(t)
}

// The access phase's validation: 400s and 413s as OpenAI-shaped errors, no
// upstream call, no LLM series.
func TestValidation(t *testing.T) {
	f, up := serveLimited(t, 200, 1000)
	big := userChat(300)
	for _, tc := range []struct {
		name, ct, body string
		status         int
		msg            string
	}{
		{"text/plain", "text/plain", providertest.Chat("m", false), 400, "Content-Type must be application/json"},
		{"no content type", "-", providertest.Chat("m", false), 400, "Content-Type must be application/json"},
		{"empty body", "application/json", "", 400, "request body is empty"},
		{"blank body", "application/json", "  \n", 400, "request body is empty"},
		{"malformed", "application/json", `{"model":`, 400, "request body is not valid JSON: unexpected end of JSON input"},
		{"not an object", "application/json", `[1]`, 400, "request body must be a JSON object"},
		{"bad type", "application/json", `{"model":1}`, 400, "model"},
		{"no model", "application/json", `{"messages":[]}`, 400, "you must provide a model parameter"},
		{"over the plugin's limit, below the route's", "application/json", big, 413, "request body too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := f.Request(t, tc.body, nil)
			if tc.ct == "-" {
				req.Header.Del("Content-Type")
			} else {
				req.Header.Set("Content-Type", tc.ct)
			}
			resp := f.Do(t, req)
			o := f.Wait(t)
			var e struct {
				Error struct {
					Message string `json:"message"`
					Type    string `json:"type"`
					Code    int    `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(resp.Body, &e); err != nil {
				t.Fatalf("%v: %s", err, resp.Body)
			}
			if resp.Status != tc.status || e.Error.Code != tc.status || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, tc.msg) {
				t.Errorf("got %d %s, want %d %q", resp.Status, resp.Body, tc.status, tc.msg)
			}
			if o.ExitPlugin != aiproxy.Name || o.ExitPhase != "access" {
				t.Errorf("exit %s/%s", o.ExitPhase, o.ExitPlugin)
			}
		})
	}
	// A JSON Content-Type with parameters is fine, and options.model makes
	// a model in the body optional.
	if resp := f.Post(t, providertest.Chat("m", false), map[string]string{"Content-Type": "Application/JSON; charset=utf-8"}); resp.Status != 200 {
		t.Errorf("application/json with parameters: %d %s", resp.Status, resp.Body)
	}
	f.Wait(t)
	if up.Hits() != 1 {
		t.Errorf("the upstream got %d requests, want 1", up.Hits())
	}

	cfg := config(up.URL)
	cfg.Options = map[string]any{"model": "forced"}
	f2 := serve(t, cfg)
	if resp := f2.Post(t, `{"messages":[]}`, nil); resp.Status != 200 {
		t.Errorf("no client model with options.model: %d %s", resp.Status, resp.Body)
	}
	if o := f2.Wait(t); o.LLM.Model != "forced" {
		t.Errorf("model %q", o.LLM.Model)
	}
}

// Requests rejected in access make no LLM series at all.
func TestNoSeriesWithoutAttempt(t *testing.T) {
	up := providertest.NewUpstream(t, nil)
	f := serve(t, config(up.URL))
	f.Post(t, "{", nil)
	f.Wait(t)
	m := f.env.Metrics
	if n := testutil.CollectAndCount(m.LLMActive) + testutil.CollectAndCount(m.LLMDuration) +
		testutil.CollectAndCount(m.LLMTimeToFirstToken) + testutil.CollectAndCount(m.LLMPromptTokens) +
		testutil.CollectAndCount(m.LLMCompletionTokens); n != 0 {
		t.Errorf("%d LLM series after a request rejected in access", n)
	}
}

// The model label is cut to 128 bytes; LLMInfo keeps the whole model.
func TestModelLabelIsCut(t *testing.T) {
	m := providertest.StartMock(t)
	f := serve(t, config(mockURL(m)))
	long := strings.Repeat("m", 100) + strings.Repeat("é", 40) // 180 bytes
	resp := f.Post(t, providertest.Chat(long, false), nil)
	o := f.Wait(t)
	if resp.Status != 200 || o.LLM.Model != long {
		t.Fatalf("%d %s; model %q", resp.Status, resp.Body, o.LLM.Model)
	}
	cut := metrics.Model(long)
	if len(cut) > 128 || len(cut) < 127 {
		t.Fatalf("cut to %d bytes", len(cut))
	}
	k := key(cut, metrics.RequestTypeChat)
	for _, name := range []string{nameActive, nameDuration, namePrompt, nameCompletion} {
		got := f.counts(t, name)
		if _, ok := got[k]; !ok || len(got) != 1 {
			t.Errorf("%s: series %v, want the one with the cut model", name, keys(got))
		}
	}
}

func keys(m map[string]float64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// key-auth hiding its credential: the upstream never sees the gateway's
// key, only ai-proxy's own auth.
func TestKeyAuthCredentialNotForwarded(t *testing.T) {
	up := providertest.NewUpstream(t, nil)
	env, _ := providertest.NewEnv(t)
	cfg := config(up.URL)
	cfg.Auth = aiproxy.Auth{Header: map[string]string{"Authorization": "Bearer upstream"}}
	ka := keyauth.DefaultConfig()
	ka.HideCredentials = true
	auth, err := keyauth.New(ka, []pluginsdk.ConsumerConfig{{Username: "alice", Key: "gw-key"}})
	if err != nil {
		t.Fatal(err)
	}
	g := providertest.Serve(t, phases.Options{}, newPlugin(t, cfg, env), auth)
	req := g.Request(t, providertest.Chat("m", false), map[string]string{"apikey": "gw-key"})
	req.URL.RawQuery = "apikey=gw-key&x=1"
	if resp := g.Do(t, req); resp.Status != 200 {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	g.Wait(t)
	got := up.Last(t)
	if got.Header.Get("Apikey") != "" || strings.Contains(got.Query, "gw-key") || got.Header.Get("Authorization") != "Bearer upstream" {
		t.Errorf("the upstream got header %v, query %q", got.Header, got.Query)
	}
}
