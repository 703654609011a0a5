package aimoderation_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/internal/plugintest"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aimoderation"
	"github.com/phasegate/phasegate/pluginsdk"
)

// bodyUpstream answers a non-streamed 200 with body.
type bodyUpstream struct{ body string }

func (u *bodyUpstream) Name() string { return "upstream" }
func (u *bodyUpstream) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	return &phases.Response{
		Status: http.StatusOK,
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   phases.BytesBody([]byte(u.body)),
	}, nil
}

// completionOf is a chat.completion with the given raw choices.
func completionOf(choices ...string) string {
	return `{"id":"chatcmpl-up","object":"chat.completion","created":1,"model":"gpt-upstream","choices":[` + strings.Join(choices, ",") + `]}`
}

// chunkOf is a chat.completion.chunk with the given raw choices.
func chunkOf(choices ...string) string {
	return `{"id":"chatcmpl-up","object":"chat.completion.chunk","created":1,"model":"gpt-upstream","choices":[` + strings.Join(choices, ",") + `]}`
}

// choice is a raw choice of index i whose field (message or delta) is the
// raw object m.
func choice(i int, field, m string) string {
	return fmt.Sprintf(`{"index":%d,%q:%s,"finish_reason":null}`, i, field, m)
}

// content is a raw message or delta carrying content s.
func content(s string) string {
	b, _ := json.Marshal(map[string]string{"content": s})
	return string(b)
}

// toolArgs is a raw delta carrying a fragment of the arguments of tool call
// i.
func toolArgs(i int, args string) string {
	b, _ := json.Marshal(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]string{"arguments": args}}}})
	return string(b)
}

// refusedAt checks that the client of a stream of events got the first n
// events byte for byte, then a refusal chunk and [DONE].
func refusedAt(t *testing.T, res response, events []string, n int) {
	t.Helper()
	rest, ok := strings.CutPrefix(res.body, wire(events[:n]...))
	if res.code != 200 || !ok {
		t.Fatalf("got %d %q, want the first %d events first", res.code, res.body, n)
	}
	evs := splitEvents(t, rest)
	if len(evs) != 2 || evs[1] != "[DONE]" {
		t.Fatalf("after %d events: %q, want a refusal chunk and [DONE]", n, rest)
	}
	checkChunkRefusal(t, evs[0], denyMsg, upstreamModel, nil)
}

// streamOf serves events through the plugin with cfg.
func streamOf(t *testing.T, cfg aimoderation.Config, events []string) response {
	t.Helper()
	return do(handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), &streamUpstream{events: events}), plugintest.ChatBody(clientModel, true, user("hi")))
}

// exactConfig checks each event (the cache size is the pattern's reach:
// nothing may be sent unchecked), so that tests know which one is cut.
func exactConfig() aimoderation.Config {
	cfg := responseConfig(aimoderation.ModeRealtime)
	cfg.StreamCheckCacheSize = 4
	return cfg
}

// Text from two choices is never joined: "ki" ending one and "ll" starting
// the other are not "kill".
func TestResponseChoicesSeparately(t *testing.T) {
	cfg := exactConfig()
	t.Run("non-stream", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			body    string
			refused bool
		}{
			{"match across choices", completionOf(choice(0, "message", content("Do not ki")), choice(1, "message", content("ll it, stop it."))), false},
			{"match within a choice", completionOf(choice(0, "message", content("Fine.")), choice(1, "message", content("I will kill it."))), true},
			{"tool call arguments", completionOf(choice(0, "message", `{"content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"sh","arguments":"{\"cmd\":\"kill -9 1\"}"}}]}`)), true},
			{"arguments of two tool calls", completionOf(choice(0, "message", `{"tool_calls":[{"function":{"arguments":"ki"}},{"function":{"arguments":"ll"}}]}`)), false},
			{"refusal", completionOf(choice(0, "message", `{"content":null,"refusal":"I will not kill."}`)), true},
			{"reasoning", completionOf(choice(0, "message", `{"content":"ok","reasoning_content":"They want to kill it."}`)), true},
			{"content beside Content", completionOf(choice(0, "message", `{"content":"ok","Content":"fine"}`)), true},
			{"CONTENT alone", completionOf(choice(0, "message", `{"CONTENT":"kill it"}`)), true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				up := &bodyUpstream{body: tc.body}
				res := do(handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, pluginsdk.Env{}))(t), up), plugintest.ChatBody(clientModel, false, user("hi")))
				if tc.refused {
					if res.code != 400 {
						t.Fatalf("got %d %s, want the refusal", res.code, res.body)
					}
					checkCompletionRefusal(t, res.body, denyMsg, upstreamModel, nil)
				} else if res.code != 200 || res.body != tc.body {
					t.Fatalf("got %d %s, want the response unchanged", res.code, res.body)
				}
			})
		}
	})

	t.Run("stream", func(t *testing.T) {
		start := chunkOf(choice(0, "delta", `{"role":"assistant","content":""}`), choice(1, "delta", `{"role":"assistant","content":""}`))
		across := []string{start,
			chunkOf(choice(0, "delta", content("Do not ki"))),
			chunkOf(choice(1, "delta", content("ll it now"))),
			chunkOf(choice(0, "delta", content(", stop it."))),
			finishEvent(), "[DONE]"}
		if res := streamOf(t, cfg, across); res.code != 200 || res.body != wire(across...) {
			t.Fatalf("a match across choices: got %d %q, want the stream unchanged", res.code, res.body)
		}
		within := []string{start,
			chunkOf(choice(1, "delta", content("I will ki"))),
			chunkOf(choice(0, "delta", content("Stop"))),
			chunkOf(choice(1, "delta", content("ll it"))),
			chunkOf(choice(0, "delta", content(" it."))),
			finishEvent(), "[DONE]"}
		refusedAt(t, streamOf(t, cfg, within), within, 3)
	})
}

func TestResponseToolCallArgumentsStreamed(t *testing.T) {
	cfg := exactConfig()
	first := chunkOf(choice(0, "delta", `{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"sh","arguments":""}}]}`))
	split := []string{first,
		chunkOf(choice(0, "delta", toolArgs(0, `{"cmd":"ki`))),
		chunkOf(choice(0, "delta", toolArgs(0, `ll -9 1"}`))),
		finishEvent(), "[DONE]"}
	refusedAt(t, streamOf(t, cfg, split), split, 2)

	two := []string{first,
		chunkOf(choice(0, "delta", toolArgs(0, `{"a":"ki`))),
		chunkOf(choice(0, "delta", toolArgs(1, `ll"}`))),
		chunkOf(choice(0, "delta", toolArgs(0, `"}`))),
		finishEvent(), "[DONE]"}
	if res := streamOf(t, cfg, two); res.code != 200 || res.body != wire(two...) {
		t.Fatalf("two tool calls: got %d %q, want the stream unchanged", res.code, res.body)
	}
}

func TestResponseRefusalStreamed(t *testing.T) {
	cfg := exactConfig()
	events := []string{roleEvent(),
		chunkOf(choice(0, "delta", `{"refusal":"I won't help you ki"}`)),
		chunkOf(choice(0, "delta", `{"refusal":"ll anyone."}`)),
		finishEvent(), "[DONE]"}
	refusedAt(t, streamOf(t, cfg, events), events, 2)
}

// delivered returns the content a client read from a stream, up to the
// refusal if there is one.
func delivered(t *testing.T, body string) (text string, refused bool) {
	t.Helper()
	for _, ev := range splitEvents(t, body) {
		var c struct {
			Choices []struct{ Delta struct{ Content string } }
		}
		if ev == "[DONE]" || json.Unmarshal([]byte(ev), &c) != nil || len(c.Choices) == 0 {
			continue
		}
		if c.Choices[0].Delta.Content == denyMsg {
			return text, true
		}
		text += c.Choices[0].Delta.Content
	}
	return text, false
}

// pieces cuts s into pieces of n bytes.
func pieces(s string, n int) []string {
	var out []string
	for len(s) > n {
		out, s = append(out, s[:n]), s[n:]
	}
	return append(out, s)
}

// In realtime mode, the text delivered past the start of a denied match is
// within stream_check_cache_size (at most the match itself when the match
// is longer), with or without word breaks.
func TestRealtimeBound(t *testing.T) {
	const cache = 24
	every := []int{1, 3, 7, 64}
	cases := []struct {
		name    string
		pattern string
		text    string
		match   string // "" when the text must pass
		sizes   []int  // of the events
	}{
		{"no word breaks", `(?i)kill`, strings.Repeat("a", 300) + "KILL" + strings.Repeat("b", 300), "KILL", every},
		{"one long word", `(?i)\bkill`, "x " + "kill" + strings.Repeat("z", 500), "kill", every},
		{"unbounded pattern, match within the cache size", `secret[a-z ]*code`, strings.Repeat("w ", 100) + "secret launch code" + strings.Repeat(" w", 100), "secret launch code", every},
		{"bounded pattern longer than the cache size", `secret[a-z ]{0,40}code`, strings.Repeat("w ", 100) + "secret launch and firing code" + strings.Repeat(" w", 100), "secret launch and firing code", every},
		// The documented limit: a match of an unbounded pattern longer than
		// stream_check_cache_size + 1 characters is in no window when the
		// events are small.
		{"unbounded pattern, match longer than the cache size", `secret[a-z ]*code`, "secret launch and firing code", "", []int{1}},
	}
	for _, tc := range cases {
		for _, size := range tc.sizes {
			t.Run(fmt.Sprintf("%s/events of %d", tc.name, size), func(t *testing.T) {
				cfg := responseConfig(aimoderation.ModeRealtime)
				cfg.DenyPatterns, cfg.StreamCheckCacheSize = []string{tc.pattern}, cache
				events := stream(nil, pieces(tc.text, size)...)
				res := streamOf(t, cfg, events)
				got, refused := delivered(t, res.body)
				if tc.match == "" {
					if refused || res.body != wire(events...) {
						t.Fatalf("got %q, want the stream unchanged", res.body)
					}
					return
				}
				start := strings.Index(tc.text, tc.match)
				if !refused || !strings.HasPrefix(tc.text, got) {
					t.Fatalf("refused: %v after %q", refused, got)
				}
				if past := len(got) - start; past > max(cache, len(tc.match)) {
					t.Fatalf("%d bytes past the start of the match reached the client (%q), want at most %d", past, got[max(start, 0):], max(cache, len(tc.match)))
				}
			})
		}
	}
}

// The endpoint, in realtime mode, gets each text (one input per choice)
// once stream_check_cache_size new characters have come, from up to 64
// characters before what it saw, and the rest at the end.
func TestEndpointRealtimeInputs(t *testing.T) {
	var mu sync.Mutex
	var calls [][]string
	mock := mockllm.New(mockllm.Options{ModerationWords: []string{"bomb"}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var req struct{ Input []string }
		_ = json.Unmarshal(b, &req)
		mu.Lock()
		calls = append(calls, req.Input)
		mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		mock.ServeHTTP(w, r)
	}))
	defer srv.Close()
	cfg := endpointConfig(srv.URL + "/v1/moderations")
	cfg.CheckRequest, cfg.CheckResponse, cfg.StreamCheckCacheSize = false, true, 8
	events := []string{
		chunkOf(choice(0, "delta", content("Hello there, ")), choice(1, "delta", content("Hi"))),
		chunkOf(choice(0, "delta", content("friend."))),
		chunkOf(choice(1, "delta", content(" you, all."))),
		chunkOf(choice(0, "delta", content(" Bye"))),
		"[DONE]",
	}
	res := do(handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, testEnv(t)))(t), &streamUpstream{events: events}), plugintest.ChatBody(clientModel, true, user("hi")))
	if res.code != 200 || res.body != wire(events...) {
		t.Fatalf("got %d %q", res.code, res.body)
	}
	want := [][]string{
		{"Hello there, "},
		{"Hi you, all."},
		{"Hello there, friend. Bye"},
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("the endpoint got %q, want %q", calls, want)
	}
}

// A response a client may read in two ways, or too large to moderate text by
// text, is flagged without a check.
func TestResponseFlaggedWithoutCheck(t *testing.T) {
	cfg := exactConfig()
	events := []string{roleEvent(),
		chunkOf(choice(0, "delta", content("Fine."))),
		chunkOf(choice(0, "delta", `{"content":" All","content":" good."}`)),
		finishEvent(), "[DONE]"}
	refusedAt(t, streamOf(t, cfg, events), events, 2)

	var calls []string
	for i := range 1025 {
		calls = append(calls, fmt.Sprintf(`{"function":{"arguments":"%d"}}`, i))
	}
	many := completionOf(choice(0, "message", `{"tool_calls":[`+strings.Join(calls, ",")+`]}`))
	logs := &logBuffer{}
	env := pluginsdk.Env{Logger: zerolog.New(logs)}
	res := do(handler(t, fakeProxy{}, plugintest.Must(aimoderation.New(cfg, env))(t), &bodyUpstream{body: many}), plugintest.ChatBody(clientModel, false, user("hi")))
	if res.code != 400 || !strings.Contains(logs.String(), "too many choices and tool calls") {
		t.Fatalf("got %d %.200s, log %q; want the refusal and a warning", res.code, res.body, logs.String())
	}
	checkCompletionRefusal(t, res.body, denyMsg, upstreamModel, nil)
}
