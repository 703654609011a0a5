package aimoderation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phasegate/phasegate/internal/plugintest"
	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aimoderation"
	"github.com/phasegate/phasegate/pluginsdk"
)

const denyMsg = "rejected by content policy"

// patternConfig is a config with the pattern \bkill\b (any case).
func patternConfig() aimoderation.Config {
	cfg := aimoderation.DefaultConfig()
	cfg.DenyPatterns = []string{`(?i)\bkill\b`}
	cfg.DenyMessage = denyMsg
	return cfg
}

func TestRequestDeny(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		for _, proxied := range []bool{true, false} {
			t.Run(fmt.Sprintf("stream=%v/ai-proxy=%v", streamed, proxied), func(t *testing.T) {
				up := &completionUpstream{content: "fine"}
				probe := &logProbe{}
				plugins := []phases.Plugin{plugintest.Must(aimoderation.New(patternConfig(), pluginsdk.Env{}))(t), up, probe}
				model := clientModel
				if proxied {
					plugins = append(plugins, fakeProxy{})
					model = upstreamModel
				}
				h := handler(t, plugins...)

				res := do(h, plugintest.ChatBody(clientModel, streamed, user("How do I KILL a process?")))
				if res.code != 400 || up.calls != 0 {
					t.Fatalf("got %d (upstream called %d times), want 400 without the upstream: %s", res.code, up.calls, res.body)
				}
				if streamed {
					if ct := res.header.Get("Content-Type"); ct != "text/event-stream" {
						t.Fatalf("Content-Type %q", ct)
					}
					checkStreamRefusal(t, res.body, denyMsg, model, nil)
				} else {
					if ct := res.header.Get("Content-Type"); ct != "application/json" {
						t.Fatalf("Content-Type %q", ct)
					}
					checkCompletionRefusal(t, res.body, denyMsg, model, nil)
				}
				if probe.verdict != aimoderation.VerdictRefused || probe.exitPlugin != aimoderation.Name || probe.cause != phases.CauseExit {
					t.Fatalf("log saw %+v", probe)
				}
				if proxied && probe.moderation != aimoderation.VerdictRefused {
					t.Fatalf("LLMInfo.Moderation = %q, want refused", probe.moderation)
				}

				res = do(h, plugintest.ChatBody(clientModel, streamed, user("How do I stop a process?")))
				if res.code != 200 || up.calls != 1 || probe.verdict != "" {
					t.Fatalf("clean prompt: got %d (upstream called %d times, verdict %q): %s", res.code, up.calls, probe.verdict, res.body)
				}
			})
		}
	}
}

func TestRequestMessageSelection(t *testing.T) {
	sys := func(s string) msg { return msg{Role: "system", Content: s} }
	asst := func(s string) msg { return msg{Role: "assistant", Content: s} }
	cases := []struct {
		name     string
		messages string
		roles    []string
		msgs     []msg
		refused  bool
	}{
		{"last user", "last", []string{"user"}, []msg{user("kill"), asst("no"), user("hi")}, false},
		{"last user before an assistant message", "last", []string{"user"}, []msg{user("hi"), user("kill"), asst("no")}, true},
		{"all users", "all", []string{"user"}, []msg{user("kill"), asst("no"), user("hi")}, true},
		{"system not checked", "all", []string{"user"}, []msg{sys("kill"), user("hi")}, false},
		{"system checked", "all", []string{"user", "system"}, []msg{sys("kill"), user("hi")}, true},
		{"last of user and system", "last", []string{"user", "system"}, []msg{sys("kill"), user("hi")}, false},
		{"any role, last", "last", []string{"*"}, []msg{user("hi"), asst("kill")}, true},
		{"any role, last only", "last", []string{"*"}, []msg{asst("kill"), user("hi")}, false},
		{"any role, all", "all", []string{"*"}, []msg{asst("kill"), user("hi")}, true},
		{"no messages", "all", []string{"*"}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := patternConfig()
			cfg.RequestMessages, cfg.RequestRoles = tc.messages, tc.roles
			up := &completionUpstream{content: "fine"}
			res := do(handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), up), plugintest.ChatBody(clientModel, false, tc.msgs...))
			if refused := res.code == 400; refused != tc.refused {
				t.Fatalf("got %d %s, want refused: %v", res.code, res.body, tc.refused)
			}
		})
	}
}

// TestRequestEveryTextPlace puts the denied word in each place of a body
// where text reaches the model.
func TestRequestEveryTextPlace(t *testing.T) {
	cases := []struct {
		name    string
		roles   []string
		body    string
		refused bool
	}{
		{"clean", []string{"*"}, `{"messages":[{"role":"user","content":"hi","name":"ann"}],"tools":[{"type":"function","function":{"name":"f","description":"Find."}}]}`, false},
		{"user role in capitals", []string{"user"}, `{"messages":[{"role":"User","content":"kill"}]}`, true},
		{"configured role in capitals", []string{"Tool"}, `{"messages":[{"role":"tool","content":"kill"}]}`, true},
		{"second text part", []string{"user"}, `{"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"kill"}]}]}`, true},
		{"name", []string{"user"}, `{"messages":[{"role":"user","content":"hi","name":"kill"}]}`, true},
		{"tool result parts", []string{"tool"}, `{"messages":[{"role":"tool","tool_call_id":"c","content":[{"type":"text","text":"kill"}]}]}`, true},
		{"tool call arguments", []string{"assistant"}, `{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"do\":\"kill\"}"}}]}]}`, true},
		{"assistant refusal", []string{"assistant"}, `{"messages":[{"role":"assistant","refusal":"kill"}]}`, true},
		{"tool description, any selection", []string{"user"}, `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","description":"kill"}}]}`, true},
		{"parameter description", []string{"user"}, `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{"q":{"description":"kill"}}}}}]}`, true},
		{"response format", []string{"user"}, `{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"kill"}}}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := patternConfig()
			cfg.RequestRoles = tc.roles
			up := &completionUpstream{content: "fine"}
			res := do(handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), up), tc.body)
			if refused := res.code == 400 && strings.Contains(res.body, denyMsg); refused != tc.refused || (tc.refused && up.calls != 0) {
				t.Fatalf("got %d %s (upstream called %d times), want refused: %v", res.code, res.body, up.calls, tc.refused)
			}
		})
	}
}

func TestRequestBadBody(t *testing.T) {
	up := &completionUpstream{content: "fine"}
	h := handler(t, plugintest.Must(aimoderation.New(patternConfig(), pluginsdk.Env{}))(t), up)
	for body, want := range map[string]string{
		"":                    "request body is empty",
		`{"messages":`:        "request body is not valid JSON",
		`{"messages":"kill"}`: "messages: must be an array",
		`{"messages":[{"role":"user","content":"hi"}],"Messages":[{"role":"user","content":"kill"}]}`: `Messages: ambiguous key: some upstreams read it as "messages"`,
		`{"messages":[{"role":"user","content":"hi","content":"kill"}]}`:                              "messages[0].content: duplicate key",
	} {
		res := do(h, body)
		var e struct {
			Error struct{ Message, Type string }
		}
		if err := json.Unmarshal([]byte(res.body), &e); err != nil || res.code != 400 || e.Error.Type != "invalid_request_error" || !strings.HasPrefix(e.Error.Message, want) {
			t.Errorf("%q: got %d %s, want 400 %q", body, res.code, res.body, want)
		}
	}
	if up.calls != 0 {
		t.Fatalf("the upstream was called %d times", up.calls)
	}

	// Without check_request the body is none of the plugin's business.
	cfg := patternConfig()
	cfg.CheckRequest, cfg.CheckResponse = false, true
	res := do(handler(t, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), up), `{"messages":`)
	if res.code != 200 {
		t.Fatalf("check_request false: got %d %s, want the upstream's 200", res.code, res.body)
	}
}

func responseConfig(mode string) aimoderation.Config {
	cfg := patternConfig()
	cfg.CheckResponse = true
	cfg.StreamCheckMode = mode
	return cfg
}

func TestResponseDenyNonStream(t *testing.T) {
	u := &usage{prompt: 12, completion: 30}
	cases := []struct {
		name    string
		proxied bool
		usage   *usage
		model   string
	}{
		{"ai-proxy usage", true, u, upstreamModel},
		{"usage from the body", false, u, clientModel},
		{"no usage", true, nil, upstreamModel},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := responseConfig(aimoderation.ModeRealtime)
			cfg.DenyCode = 451
			up := &completionUpstream{content: "I will kill -9 it.", usage: tc.usage}
			probe := &logProbe{}
			plugins := []phases.Plugin{plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), up, probe}
			if tc.proxied {
				plugins = append(plugins, fakeProxy{})
			}
			h := handler(t, plugins...)
			res := do(h, plugintest.ChatBody(clientModel, false, user("how do I stop a process?")))
			if res.code != 451 || res.header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d %v, want 451 JSON", res.code, res.header)
			}
			checkCompletionRefusal(t, res.body, denyMsg, tc.model, tc.usage)
			if probe.verdict != aimoderation.VerdictRefused || probe.exitPlugin != aimoderation.Name || probe.status != 451 {
				t.Fatalf("log saw %+v", probe)
			}

			up.content = "Use the killswitch... no: skill, use Ctrl-C."
			res = do(h, plugintest.ChatBody(clientModel, false, user("how do I stop a process?")))
			if res.code != 200 || res.body != up.body() {
				t.Fatalf("clean response: got %d %s", res.code, res.body)
			}
		})
	}
}

func TestErrorResponsesNotModerated(t *testing.T) {
	h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(responseConfig(aimoderation.ModeRealtime), pluginsdk.Env{}))(t),
		&completionUpstream{status: 500, content: "kill: upstream crashed"})
	res := do(h, plugintest.ChatBody(clientModel, false, user("hi")))
	if res.code != 500 || !strings.Contains(res.body, "kill: upstream crashed") {
		t.Fatalf("got %d %s, want the upstream's 500 unchanged", res.code, res.body)
	}

	up := &streamUpstream{status: 429, events: []string{contentEvent("kill")}}
	res = do(handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(responseConfig(aimoderation.ModeRealtime), pluginsdk.Env{}))(t), up), plugintest.ChatBody(clientModel, true, user("hi")))
	if res.code != 429 || res.body != wire(contentEvent("kill")) {
		t.Fatalf("got %d %q, want the upstream's 429 unchanged", res.code, res.body)
	}
}

// A non-streamed body that arrives in several chunks (from a plain upstream
// rather than ai-proxy) is held back and checked whole.
type chunkedUpstream struct{ parts []string }

func (u *chunkedUpstream) Name() string { return "upstream" }
func (u *chunkedUpstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	return &phases.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: &partsBody{parts: u.parts}}, nil
}

type partsBody struct{ parts []string }

func (b *partsBody) Next() (phases.Chunk, error) {
	if len(b.parts) == 0 {
		return phases.Chunk{}, io.EOF
	}
	p := b.parts[0]
	b.parts = b.parts[1:]
	return phases.Chunk{Data: []byte(p)}, nil
}
func (b *partsBody) Close() error { return nil }

func TestResponseInSeveralChunks(t *testing.T) {
	for _, content := range []string{"I will kill it", "I will stop it"} {
		body := (&completionUpstream{content: content}).body()
		third := len(body) / 3
		h := handler(t, plugintest.Must(aimoderation.New(responseConfig(aimoderation.ModeRealtime), pluginsdk.Env{}))(t),
			&chunkedUpstream{parts: []string{body[:third], body[third : 2*third], body[2*third:]}})
		res := do(h, plugintest.ChatBody(clientModel, false, user("hi")))
		if strings.Contains(content, "kill") {
			if res.code != 400 {
				t.Fatalf("got %d %s, want 400", res.code, res.body)
			}
			checkCompletionRefusal(t, res.body, denyMsg, clientModel, nil)
			continue
		}
		if res.code != 200 || res.body != body {
			t.Fatalf("got %d %s, want %s", res.code, res.body, body)
		}
	}
}

func TestRealtimeDenyMidStream(t *testing.T) {
	cfg := responseConfig(aimoderation.ModeRealtime)
	cfg.StreamCheckCacheSize = 8
	u := &usage{prompt: 5, completion: 9}
	// Checks happen after "Hello there, " (13 new characters) and
	// "friend. " (8); after "I will ki" (9) the check leaves out the
	// partial word "ki"; with "ll you" (2+6) the next check takes in
	// "I will kill " and finds "kill" across two events: the client gets
	// the events before "ll you", which the refusal replaces.
	events := stream(u, "Hello there, ", "friend. ", "I will ki", "ll you", " now, ok", " and more.")
	up := &streamUpstream{events: events}
	probe := &logProbe{}
	h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), up, probe)
	res := do(h, plugintest.ChatBody(clientModel, true, user("hi")))
	if res.code != 200 || res.header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got %d %v, want 200 text/event-stream", res.code, res.header)
	}
	sent := wire(events[:4]...) // role, Hello there, friend., I will ki
	rest, ok := strings.CutPrefix(res.body, sent)
	if !ok {
		t.Fatalf("the client did not get the first events byte for byte:\n got %q\nwant prefix %q", res.body, sent)
	}
	evs := splitEvents(t, rest)
	if len(evs) != 2 || evs[1] != "[DONE]" {
		t.Fatalf("after the first events: %q, want a refusal chunk and [DONE]", rest)
	}
	checkChunkRefusal(t, evs[0], denyMsg, upstreamModel, nil)
	if probe.verdict != aimoderation.VerdictRefused || probe.moderation != aimoderation.VerdictRefused || probe.cause != phases.CauseExit || probe.status != 200 {
		t.Fatalf("log saw %+v", probe)
	}
	if up.closes() != 1 {
		t.Fatalf("the upstream body was closed %d times", up.closes())
	}
}

func TestRealtimeDenyAtEnd(t *testing.T) {
	// The match ends the text: only the check at [DONE], after the usage
	// chunk, knows that nothing follows it, so the refusal carries the real
	// usage and replaces the upstream's [DONE].
	u := &usage{prompt: 5, completion: 4}
	events := stream(u, "go ", "ki", "ll")
	up := &streamUpstream{events: events}
	h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(responseConfig(aimoderation.ModeRealtime), pluginsdk.Env{}))(t), up)
	res := do(h, plugintest.ChatBody(clientModel, true, user("hi")))
	sent := wire(events[:len(events)-1]...)
	rest, ok := strings.CutPrefix(res.body, sent)
	if res.code != 200 || !ok {
		t.Fatalf("got %d %q, want 200 and every event but [DONE] first", res.code, res.body)
	}
	evs := splitEvents(t, rest)
	if len(evs) != 2 || evs[1] != "[DONE]" {
		t.Fatalf("after the events: %q, want a refusal chunk and [DONE]", rest)
	}
	checkChunkRefusal(t, evs[0], denyMsg, upstreamModel, u)
}

func TestRealtimeDenyBeforeHeaders(t *testing.T) {
	cfg := responseConfig(aimoderation.ModeRealtime)
	cfg.StreamCheckCacheSize = 4
	cfg.DenyCode = 403
	// The first event carries the role and flagged content: nothing has
	// been sent when it is checked.
	first := `{"id":"chatcmpl-up","object":"chat.completion.chunk","created":1,"model":"gpt-upstream","choices":[{"index":0,"delta":{"role":"assistant","content":"kill it"},"finish_reason":null}]}`
	up := &streamUpstream{events: []string{first, contentEvent(" now"), finishEvent(), "[DONE]"}}
	probe := &logProbe{}
	h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), up, probe)
	res := do(h, plugintest.ChatBody(clientModel, true, user("hi")))
	if res.code != 403 || res.header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("got %d %v %q, want 403 text/event-stream", res.code, res.header, res.body)
	}
	checkStreamRefusal(t, res.body, denyMsg, upstreamModel, nil)
	if probe.verdict != aimoderation.VerdictRefused || probe.status != 403 || up.closes() != 1 {
		t.Fatalf("log saw %+v; upstream closed %d times", probe, up.closes())
	}
}

func TestRealtimeClean(t *testing.T) {
	cfg := responseConfig(aimoderation.ModeRealtime)
	cfg.StreamCheckCacheSize = 3
	events := stream(&usage{1, 2}, "skill ", "killer ", "Skillet")
	probe := &logProbe{}
	h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), &streamUpstream{events: events}, probe)
	res := do(h, plugintest.ChatBody(clientModel, true, user("hi")))
	if res.code != 200 || res.body != wire(events...) {
		t.Fatalf("got %d %q, want the stream unchanged", res.code, res.body)
	}
	if probe.verdict != "" || probe.moderation != "" || probe.cause != phases.CauseCompleted {
		t.Fatalf("log saw %+v", probe)
	}
}

func TestRealtimeWordCutByEvents(t *testing.T) {
	// With a check after every event, the text so far ends with a partial
	// word: "The kill" is not yet "The killer".
	cfg := responseConfig(aimoderation.ModeRealtime)
	cfg.StreamCheckCacheSize = 1
	for _, tc := range []struct {
		pieces  []string
		refused bool
	}{
		{[]string{"The kill", "er whale", " swims."}, false},
		{[]string{"The kill", "_switch"}, false},
		{[]string{"The kill", " whale"}, true},
		{[]string{"The kill", "."}, true},
		{[]string{"The kill"}, true},
	} {
		events := stream(nil, tc.pieces...)
		res := do(handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), &streamUpstream{events: events}), plugintest.ChatBody(clientModel, true, user("hi")))
		if refused := strings.Contains(res.body, denyMsg); refused != tc.refused || res.code != 200 {
			t.Errorf("%q: got %d %q, want refused: %v", tc.pieces, res.code, res.body, tc.refused)
		}
	}
}

func TestFinalPacket(t *testing.T) {
	for _, tc := range []struct {
		pieces  []string
		verdict string
	}{
		{[]string{"I will ki", "ll it"}, aimoderation.VerdictFlagged},
		{[]string{"I will stop it"}, aimoderation.VerdictPassed},
		{nil, aimoderation.VerdictPassed},
	} {
		for _, proxied := range []bool{true, false} {
			cfg := responseConfig(aimoderation.ModeFinalPacket)
			cfg.StreamCheckCacheSize = 1
			events := stream(&usage{1, 2}, tc.pieces...)
			probe := &logProbe{}
			plugins := []phases.Plugin{plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), &streamUpstream{events: events}, probe}
			if proxied {
				plugins = append(plugins, fakeProxy{})
			}
			res := do(handler(t, plugins...), plugintest.ChatBody(clientModel, true, user("hi")))
			if res.code != 200 || res.body != wire(events...) {
				t.Fatalf("%q: got %d %q, want the stream unchanged", tc.pieces, res.code, res.body)
			}
			if probe.verdict != tc.verdict || probe.cause != phases.CauseCompleted {
				t.Fatalf("%q: log saw %+v, want verdict %s", tc.pieces, probe, tc.verdict)
			}
			if proxied && probe.moderation != tc.verdict {
				t.Fatalf("%q: LLMInfo.Moderation = %q, want %s", tc.pieces, probe.moderation, tc.verdict)
			}
		}
	}
}

func TestStreamWithoutDone(t *testing.T) {
	// A stream that ends without [DONE] is checked at the end of the body;
	// the refusal is its last event.
	events := []string{roleEvent(), contentEvent("kill")}
	res := do(handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(responseConfig(aimoderation.ModeRealtime), pluginsdk.Env{}))(t), &streamUpstream{events: events}), plugintest.ChatBody(clientModel, true, user("hi")))
	rest, ok := strings.CutPrefix(res.body, wire(events...))
	if res.code != 200 || !ok {
		t.Fatalf("got %d %q", res.code, res.body)
	}
	evs := splitEvents(t, rest)
	if len(evs) != 2 || evs[1] != "[DONE]" {
		t.Fatalf("got %q after the events, want a refusal and [DONE]", rest)
	}
	checkChunkRefusal(t, evs[0], denyMsg, upstreamModel, nil)
}

func TestExitResponsesNotModerated(t *testing.T) {
	// An exit whose body would be flagged (here the refusal of the prompt,
	// whose message names the pattern) passes the body filter unchanged.
	cfg := responseConfig(aimoderation.ModeRealtime)
	cfg.DenyMessage = "we do not kill"
	res := do(handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), &completionUpstream{content: "ok"}), plugintest.ChatBody(clientModel, false, user("kill")))
	if res.code != 400 {
		t.Fatalf("got %d %s", res.code, res.body)
	}
	checkCompletionRefusal(t, res.body, "we do not kill", upstreamModel, nil)
}

// echoUpstream answers with the content of the request's X-Content header,
// streamed or not as the client asked.
type echoUpstream struct{}

func (echoUpstream) Name() string { return "upstream" }
func (echoUpstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	content := r.Header.Get("X-Content")
	info, _ := llm.InfoKey.Get(r.Values)
	if info.Stream {
		return (&streamUpstream{events: stream(&usage{1, 2}, strings.SplitAfter(content, " ")...)}).Upstream(ctx, r)
	}
	return (&completionUpstream{content: content, usage: &usage{1, 2}}).Upstream(ctx, r)
}

func TestConcurrentRequests(t *testing.T) {
	cfg := responseConfig(aimoderation.ModeRealtime)
	cfg.StreamCheckCacheSize = 6
	h := handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), echoUpstream{})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			streamed := i%2 == 0
			prompt, content := "hello", "all good here my friend"
			switch i % 5 {
			case 1:
				prompt = "please kill it"
			case 2, 3:
				content = "I will kill it right now"
			}
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(plugintest.ChatBody(clientModel, streamed, user(prompt))))
			req.Header.Set("X-Content", content)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body := rec.Body.String()
			switch {
			case i%5 == 1 && rec.Code != 400:
				errs <- fmt.Errorf("request %d: flagged prompt got %d", i, rec.Code)
			case i%5 == 2 || i%5 == 3:
				if !strings.Contains(body, denyMsg) || strings.Contains(body, "right now") {
					errs <- fmt.Errorf("request %d: flagged response got %d %q", i, rec.Code, body)
				}
			case i%5 == 0 || i%5 == 4:
				if rec.Code != 200 || strings.Contains(body, denyMsg) || !strings.Contains(body, "friend") {
					errs <- fmt.Errorf("request %d: clean request got %d %q", i, rec.Code, body)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestValidate(t *testing.T) {
	mod := func(f func(*aimoderation.Config)) aimoderation.Config {
		c := aimoderation.DefaultConfig()
		c.DenyPatterns = []string{"x"}
		f(&c)
		return c
	}
	cases := []struct {
		name string
		cfg  aimoderation.Config
		want []pluginsdk.FieldError
	}{
		{"patterns", mod(func(*aimoderation.Config) {}), nil},
		{"endpoint only", mod(func(c *aimoderation.Config) {
			c.DenyPatterns = nil
			c.Moderation.Endpoint = "http://127.0.0.1:9082/v1/moderations"
			c.Moderation.Auth.Header = map[string]string{"Authorization": "Bearer x"}
			c.Moderation.FailMode = aimoderation.FailError
		}), nil},
		{"response only, final_packet", mod(func(c *aimoderation.Config) {
			c.CheckRequest, c.CheckResponse, c.StreamCheckMode = false, true, "final_packet"
		}), nil},
		{"defaults", aimoderation.DefaultConfig(), []pluginsdk.FieldError{
			{Msg: "deny_patterns and moderation.endpoint are both empty: set at least one"},
		}},
		{"nothing to check", mod(func(c *aimoderation.Config) { c.CheckRequest = false }), []pluginsdk.FieldError{
			{Msg: "check_request and check_response are both false: nothing would be checked"},
		}},
		{"bad patterns", mod(func(c *aimoderation.Config) { c.DenyPatterns = []string{"ok", "(?i)\\bkill(", "", "a|"} }), []pluginsdk.FieldError{
			{Field: "deny_patterns[1]", Msg: "invalid RE2: error parsing regexp: missing closing ): `(?i)\\bkill(`"},
			{Field: "deny_patterns[2]", Msg: "empty pattern: it would match every text"},
			{Field: "deny_patterns[3]", Msg: `"a|" matches the empty string: it would refuse everything`},
		}},
		{"moderation", mod(func(c *aimoderation.Config) {
			c.Moderation = aimoderation.ModerationConfig{
				Endpoint: "127.0.0.1:9082/v1/moderations",
				Auth:     aimoderation.Auth{Header: map[string]string{"Bad Name": "x", "X-Ok": "a\r\nInjected: 1"}},
				FailMode: "retry",
			}
		}), []pluginsdk.FieldError{
			{Field: "moderation.endpoint", Msg: `"127.0.0.1:9082/v1/moderations" is not an absolute http or https URL`},
			{Field: "moderation.timeout", Msg: "must be positive, got 0s"},
			{Field: "moderation.fail_mode", Msg: `must be "skip" or "error", got "retry"`},
			{Field: `moderation.auth.header["Bad Name"]`, Msg: `"Bad Name" is not a valid HTTP header name`},
			{Field: "moderation.auth.header.X-Ok", Msg: "the value contains a line break or NUL"},
		}},
		{"request", mod(func(c *aimoderation.Config) { c.RequestMessages, c.RequestRoles = "first", []string{"user", ""} }), []pluginsdk.FieldError{
			{Field: "request_messages", Msg: `must be "last" or "all", got "first"`},
			{Field: "request_roles[1]", Msg: "is empty"},
		}},
		{"no roles", mod(func(c *aimoderation.Config) { c.RequestRoles = nil }), []pluginsdk.FieldError{
			{Field: "request_roles", Msg: `is empty: list the roles to check, or "*" for every role`},
		}},
		{"response", mod(func(c *aimoderation.Config) { c.StreamCheckMode, c.StreamCheckCacheSize = "batch", 0 }), []pluginsdk.FieldError{
			{Field: "stream_check_mode", Msg: `must be "realtime" or "final_packet", got "batch"`},
			{Field: "stream_check_cache_size", Msg: "must be positive, got 0"},
		}},
		{"refusal", mod(func(c *aimoderation.Config) { c.DenyCode, c.DenyMessage = 199, "" }), []pluginsdk.FieldError{
			{Field: "deny_code", Msg: "must be an HTTP status from 200 to 599, got 199"},
			{Field: "deny_message", Msg: "is empty: a refusal needs a message"},
		}},
		{"deny_code 600", mod(func(c *aimoderation.Config) { c.DenyCode = 600 }), []pluginsdk.FieldError{
			{Field: "deny_code", Msg: "must be an HTTP status from 200 to 599, got 600"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg.Validate()
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Validate() =\n%#v\nwant\n%#v", got, tc.want)
			}
			_, err := aimoderation.New(tc.cfg, pluginsdk.Env{})
			if (err != nil) != (len(tc.want) > 0) {
				t.Fatalf("New error %v, want one: %v", err, len(tc.want) > 0)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := aimoderation.DefaultConfig()
	want := aimoderation.Config{
		Moderation:           aimoderation.ModerationConfig{Timeout: 5 * time.Second, FailMode: "skip"},
		CheckRequest:         true,
		RequestMessages:      "last",
		RequestRoles:         []string{"user"},
		CheckResponse:        false,
		StreamCheckMode:      "realtime",
		StreamCheckCacheSize: 128,
		DenyCode:             400,
		DenyMessage:          "Your request was rejected by the content policy.",
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("DefaultConfig() = %#v", c)
	}
}

func TestSpec(t *testing.T) {
	s := aimoderation.Spec
	if s.Name != "ai-content-moderation" {
		t.Fatalf("Spec.Name = %q", s.Name)
	}
	cfg, ok := s.Config().(*aimoderation.Config)
	if !ok || !reflect.DeepEqual(*cfg, aimoderation.DefaultConfig()) {
		t.Fatalf("Spec.Config() = %#v, want a *Config with the defaults", s.Config())
	}
	cfg.DenyPatterns = []string{"x"}
	p, err := s.New(cfg, pluginsdk.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name() != aimoderation.Name || p.(phases.Prioritized).Priority() != 1050 {
		t.Fatalf("plugin %q priority %d", p.Name(), p.(phases.Prioritized).Priority())
	}
	if _, err := s.New(*cfg, pluginsdk.Env{}); err == nil {
		t.Fatal("Spec.New accepted a Config value instead of a pointer")
	}
	if _, err := s.New(nil, pluginsdk.Env{}); err == nil {
		t.Fatal("Spec.New accepted no config, which has nothing to check with")
	}
}
