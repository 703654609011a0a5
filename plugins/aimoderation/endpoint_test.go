package aimoderation_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/internal/plugintest"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aimoderation"
	"github.com/phasegate/phasegate/pluginsdk"
)

// startMock runs the mock LLM, which flags "bomb", and returns its
// moderation URL and a transport closed with the test.
func startMock(t *testing.T) (*mockllm.Server, string, pluginsdk.Env) {
	t.Helper()
	srv, err := mockllm.Start("127.0.0.1:0", mockllm.Options{ModerationWords: []string{"bomb"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, srv.URL() + mockllm.PathModerations, testEnv(t)
}

// testEnv is an Env with its own transport, whose idle connections are
// closed with the test.
func testEnv(t *testing.T) pluginsdk.Env {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return pluginsdk.Env{Transport: tr}
}

func endpointConfig(url string) aimoderation.Config {
	cfg := aimoderation.DefaultConfig()
	cfg.Moderation.Endpoint = url
	cfg.DenyMessage = denyMsg
	return cfg
}

func TestEndpointRequest(t *testing.T) {
	srv, url, env := startMock(t)
	cfg := endpointConfig(url)
	cfg.DenyPatterns = []string{`(?i)\bkill\b`}
	up := &completionUpstream{content: "fine"}
	h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, env))(t), up)

	res := do(h, plugintest.ChatBody(clientModel, true, user("How do I defuse a BOMB?")))
	if res.code != 400 || up.calls != 0 {
		t.Fatalf("got %d %q, want 400", res.code, res.body)
	}
	checkStreamRefusal(t, res.body, denyMsg, upstreamModel, nil)
	if n := srv.Mock().Stats().Requests; n != 1 {
		t.Fatalf("the endpoint got %d calls, want 1", n)
	}

	// A pattern hit needs no endpoint call.
	res = do(h, plugintest.ChatBody(clientModel, false, user("kill")))
	if res.code != 400 || srv.Mock().Stats().Requests != 1 {
		t.Fatalf("got %d, %d endpoint calls", res.code, srv.Mock().Stats().Requests)
	}

	res = do(h, plugintest.ChatBody(clientModel, false, user("How do I bake bread?")))
	if res.code != 200 || up.calls != 1 || srv.Mock().Stats().Requests != 2 {
		t.Fatalf("clean prompt: got %d %q", res.code, res.body)
	}
}

func TestEndpointResponse(t *testing.T) {
	_, url, env := startMock(t)

	t.Run("non-stream", func(t *testing.T) {
		cfg := endpointConfig(url)
		cfg.CheckResponse = true
		up := &completionUpstream{content: "Here is how to build a bomb.", usage: &usage{3, 7}}
		h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, env))(t), up)
		res := do(h, plugintest.ChatBody(clientModel, false, user("hi")))
		if res.code != 400 {
			t.Fatalf("got %d %q", res.code, res.body)
		}
		checkCompletionRefusal(t, res.body, denyMsg, upstreamModel, &usage{3, 7})
		up.content = "Here is how to bake bread."
		if res = do(h, plugintest.ChatBody(clientModel, false, user("hi"))); res.code != 200 || res.body != up.body() {
			t.Fatalf("clean: got %d %q", res.code, res.body)
		}
	})

	t.Run("realtime, word split across a check boundary", func(t *testing.T) {
		cfg := endpointConfig(url)
		cfg.CheckResponse = true
		cfg.StreamCheckCacheSize = 8
		events := stream(nil, "I made a bo", "mb today", " and more")
		probe := &logProbe{}
		h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, env))(t), &streamUpstream{events: events}, probe)
		res := do(h, plugintest.ChatBody(clientModel, true, user("hi")))
		rest, ok := strings.CutPrefix(res.body, wire(events[:2]...))
		if res.code != 200 || !ok {
			t.Fatalf("got %d %q", res.code, res.body)
		}
		evs := splitEvents(t, rest)
		if len(evs) != 2 || evs[1] != "[DONE]" {
			t.Fatalf("got %q after the first events", rest)
		}
		checkChunkRefusal(t, evs[0], denyMsg, upstreamModel, nil)
		if probe.moderation != aimoderation.VerdictRefused {
			t.Fatalf("log saw %+v", probe)
		}
	})

	t.Run("final_packet", func(t *testing.T) {
		cfg := endpointConfig(url)
		cfg.CheckRequest, cfg.CheckResponse, cfg.StreamCheckMode = false, true, aimoderation.ModeFinalPacket
		for content, verdict := range map[string]string{"a bomb": aimoderation.VerdictFlagged, "a bread": aimoderation.VerdictPassed} {
			events := stream(nil, strings.SplitAfter(content, " ")...)
			probe := &logProbe{}
			h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, env))(t), &streamUpstream{events: events}, probe)
			if res := do(h, plugintest.ChatBody(clientModel, true, user("hi"))); res.code != 200 || res.body != wire(events...) {
				t.Fatalf("got %d %q, want the stream unchanged", res.code, res.body)
			}
			if probe.verdict != verdict || probe.moderation != verdict {
				t.Fatalf("%q: log saw %+v, want %s", content, probe, verdict)
			}
		}
	})
}

func TestEndpointCall(t *testing.T) {
	var mu sync.Mutex
	var got []struct {
		header http.Header
		body   map[string]any
	}
	mock := mockllm.New(mockllm.Options{ModerationWords: []string{"bomb"}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		got = append(got, struct {
			header http.Header
			body   map[string]any
		}{r.Header.Clone(), m})
		mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		mock.ServeHTTP(w, r)
	}))
	defer srv.Close()
	cfg := endpointConfig(srv.URL + "/v1/moderations")
	cfg.Moderation.Model = "omni-moderation-latest"
	cfg.Moderation.Auth.Header = map[string]string{"Authorization": "Bearer sk-test"}
	cfg.RequestMessages, cfg.RequestRoles = aimoderation.MessagesAll, []string{"user", "system"}
	h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, testEnv(t)))(t), &completionUpstream{content: "ok"})
	body := `{"messages":[{"role":"system","content":"be nice"},{"role":"assistant","content":"skipped"},{"role":"user","content":""},` +
		`{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"bomb"}],"name":"ann"}],` +
		`"tools":[{"type":"function","function":{"name":"f","description":"Find."}}]}`
	res := do(h, body)
	if res.code != 400 {
		t.Fatalf("got %d %q", res.code, res.body)
	}
	if len(got) != 1 {
		t.Fatalf("%d calls", len(got))
	}
	c := got[0]
	if c.header.Get("Authorization") != "Bearer sk-test" || c.header.Get("Content-Type") != "application/json" {
		t.Fatalf("call headers %v", c.header)
	}
	// One input per text: the definitions first, then each message's.
	input, _ := json.Marshal(c.body["input"])
	if c.body["model"] != "omni-moderation-latest" || string(input) != `["type\nfunction\nfunction\nname\nf\ndescription\nFind.","be nice","a\nbomb","ann"]` {
		t.Fatalf("call body %v", c.body)
	}
}

// failing endpoints, each as a URL and the config's auth headers.
func failingEndpoints(t *testing.T) map[string]aimoderation.ModerationConfig {
	t.Helper()
	_, url, _ := startMock(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/v1/moderations?key=secret-in-url"
	_ = ln.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"results":"nope"}`)
	}))
	t.Cleanup(garbage.Close)
	return map[string]aimoderation.ModerationConfig{
		"down":    {Endpoint: down, Timeout: time.Second},
		"500":     {Endpoint: url, Timeout: time.Second, Auth: aimoderation.Auth{Header: map[string]string{mockllm.HeaderStatus: "500"}}},
		"timeout": {Endpoint: url, Timeout: 50 * time.Millisecond, Auth: aimoderation.Auth{Header: map[string]string{mockllm.HeaderHeaderDelay: "2s"}}},
		"garbage": {Endpoint: garbage.URL, Timeout: time.Second},
	}
}

func TestEndpointFailure(t *testing.T) {
	for name, m := range failingEndpoints(t) {
		for _, failMode := range []string{aimoderation.FailSkip, aimoderation.FailError} {
			for _, side := range []string{"request", "response", "stream", "final_packet"} {
				t.Run(name+"/"+failMode+"/"+side, func(t *testing.T) {
					logs := &logBuffer{}
					env := testEnv(t)
					env.Logger = zerolog.New(logs)
					cfg := endpointConfig("")
					cfg.Moderation = m
					cfg.Moderation.FailMode = failMode
					if side != "request" {
						cfg.CheckRequest, cfg.CheckResponse = false, true
					}
					if side == "final_packet" {
						cfg.StreamCheckMode = aimoderation.ModeFinalPacket
					}
					var up phases.Plugin = &completionUpstream{content: "bread", usage: &usage{1, 1}}
					events := stream(nil, "bread")
					streamed := side == "stream" || side == "final_packet"
					if streamed {
						up = &streamUpstream{events: events}
					}
					probe := &logProbe{}
					h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, env))(t), up, probe)
					start := time.Now()
					res := do(h, plugintest.ChatBody(clientModel, streamed, user("bread")))
					if d := time.Since(start); d > 1500*time.Millisecond {
						t.Fatalf("took %v", d)
					}
					unavailable := `{"error":{"message":"content moderation is unavailable","type":"moderation_error","code":502}}`
					switch {
					case failMode == aimoderation.FailSkip || side == "final_packet":
						want := wire(events...)
						if !streamed {
							want = up.(*completionUpstream).body()
						}
						if res.code != 200 || res.body != want {
							t.Fatalf("got %d %q, want the upstream's answer", res.code, res.body)
						}
					case side == "stream":
						// The role chunk was sent: the error is the stream's last event.
						if want := wire(events[:len(events)-1]...) + "data: " + unavailable + "\n\ndata: [DONE]\n\n"; res.code != 200 || res.body != want {
							t.Fatalf("got %d %q, want %q", res.code, res.body, want)
						}
					default:
						if res.code != 502 || res.body != unavailable {
							t.Fatalf("got %d %q, want 502 %s", res.code, res.body, unavailable)
						}
					}
					// final_packet records that it could not check, whatever
					// fail_mode; otherwise only a 502 is a verdict.
					wantVerdict := ""
					if failMode == aimoderation.FailError || side == "final_packet" {
						wantVerdict = aimoderation.VerdictError
					}
					if probe.verdict != wantVerdict || probe.moderation != wantVerdict {
						t.Fatalf("log saw %+v, want verdict %q", probe, wantVerdict)
					}
					out := logs.String()
					if !strings.Contains(out, `"plugin":"ai-content-moderation"`) || !strings.Contains(out, "moderation endpoint failed") {
						t.Fatalf("no warning logged: %q", out)
					}
					if strings.Contains(out, "secret-in-url") {
						t.Fatalf("the log shows the endpoint URL: %q", out)
					}
				})
			}
		}
	}
}

func TestEndpointClientGone(t *testing.T) {
	_, url, env := startMock(t)
	cfg := endpointConfig(url)
	cfg.Moderation.Auth.Header = map[string]string{mockllm.HeaderHang: "true"}
	cfg.Moderation.FailMode = aimoderation.FailError
	probe := &logProbe{}
	chain, err := phases.NewChain(phases.Options{}, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, env))(t), &completionUpstream{content: "x"}, probe)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(plugintest.ChatBody(clientModel, false, user("hi"))))
	start := time.Now()
	chain.ServeHTTP(rec, req.WithContext(ctx).WithContext(ctx))
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Serve took %v after the client left", d)
	}
	// The context's deadline is the client's; nothing is sent and no 502
	// is decided.
	if probe.cause != phases.CauseTimeout || probe.status != 0 || probe.verdict != "" {
		t.Fatalf("log saw %+v", probe)
	}
}
